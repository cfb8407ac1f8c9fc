"""The indexer worker's settings: everything `eduscale worker indexer` reads."""

from services.ai.worker_settings import AIWorkerSettings

__all__ = ["IndexerWorkerSettings"]


class IndexerWorkerSettings(AIWorkerSettings):
    """The AI worker's sections; it reads uploads from DOCUMENTS_BUCKET."""
