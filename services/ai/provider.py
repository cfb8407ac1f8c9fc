"""The AI provider's client, as the orchestrator and both workers open it."""

from openai import AsyncOpenAI

from services.ai.settings import AISettings

__all__ = ["openai_client"]


def openai_client(settings: AISettings) -> AsyncOpenAI:
    """The provider client: tight timeout, our own retries (outside the breaker)."""
    return AsyncOpenAI(
        api_key=settings.openai_api_key or "not-configured",
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_retries=settings.openai_max_retries,
    )
