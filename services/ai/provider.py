"""The AI provider's client, as the orchestrator and both workers open it."""

from openai import AsyncOpenAI

from services.ai.provider_tracing import traced_http_client
from services.ai.settings import AISettings
from services.runtime.tracing import tracing_enabled

__all__ = ["openai_client"]


def openai_client(settings: AISettings) -> AsyncOpenAI:
    """The provider client: tight timeout, our own retries (outside the breaker).

    With tracing on, its requests are spans (`services.ai.provider_tracing`).
    """
    return AsyncOpenAI(
        api_key=settings.openai_api_key or "not-configured",
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_retries=settings.openai_max_retries,
        http_client=traced_http_client() if tracing_enabled() else None,
    )
