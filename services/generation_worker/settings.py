"""The generation worker's settings: everything `eduscale worker generation` reads."""

from services.ai.worker_settings import AIWorkerSettings

__all__ = ["GenerationWorkerSettings"]


class GenerationWorkerSettings(AIWorkerSettings):
    """The AI worker's sections; it keeps no documents (DOCUMENTS_BUCKET stays unset)."""
