"""The AI side: orchestrator service, generation worker, breaker and semantic cache."""
