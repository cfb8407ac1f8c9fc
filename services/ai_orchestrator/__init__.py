"""The AI orchestrator service: generation requests and jobs, course documents, search."""
