"""Kafka plumbing shared by the AI orchestrator and the workers."""
