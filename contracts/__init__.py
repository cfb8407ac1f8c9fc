"""What the infrastructure and the services must agree on, as plain data.

Topics (`topics`), the gateway's route table (`routes`) and its limits and CORS
(`gateway`), the course index's vector layout (`vector_layout`). The Pulumi components
and stacks create and configure from these; the services produce, consume, route and
search by the same values. Standard library only, and nothing else of the project
(an import-linter contract in pyproject.toml checks it), so either side can import it.
"""
