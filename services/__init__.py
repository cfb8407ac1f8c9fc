"""The platform's Litestar services and Kafka workers.

One package per deployable (`auth`, `course`, `ai_orchestrator`, `gateway`,
`generation_worker`, `indexer_worker`, `analytics_sink`), on domain libraries (`ai`,
`analytics`, `indexing`), on the shared runtime (`runtime`), on the top-level
`contracts` package. pyproject.toml's import-linter contracts keep it layered that way.
"""
