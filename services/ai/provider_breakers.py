"""One circuit breaker per provider endpoint: chat completions and embeddings.

They fail apart (different models, quotas and rate limits), and they must be counted
apart: the generation worker makes an embeddings call (grounding) for every chat call,
so with a single breaker a total chat outage shows as a 50 % failure rate and never
opens a breaker whose threshold is above that. Generation's availability follows the
chat breaker (`/ai/status`); indexing and search follow the embeddings breaker. Each is
published to Redis under its own name, so every orchestrator pod sees both.
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from services.ai.breaker import BreakerSnapshot, CircuitBreaker
from services.ai.breaker_state import publish_breaker_state
from services.ai.settings import AISettings

__all__ = ["CHAT_BREAKER", "EMBEDDINGS_BREAKER", "ProviderBreakers", "provider_breakers"]

CHAT_BREAKER = "llm"
"""Redis name of the chat breaker (kept from when it was the only one)."""
EMBEDDINGS_BREAKER = "embeddings"


@dataclass(frozen=True)
class ProviderBreakers:
    """The breakers a worker calls the provider through."""

    chat: CircuitBreaker
    embeddings: CircuitBreaker


def state_ttl_seconds(settings: AISettings) -> int:
    """How long a published state lives: past a cool-down, so a dead worker is forgotten."""
    return int(max(settings.breaker_open_seconds, settings.breaker_window_seconds) * 2) + 1


def _published(name: str, settings: AISettings, redis: Redis) -> CircuitBreaker:
    async def publish(snapshot: BreakerSnapshot) -> None:
        await publish_breaker_state(redis, name, snapshot, ttl_seconds=state_ttl_seconds(settings))

    return CircuitBreaker(
        name,
        failure_rate_threshold=settings.breaker_failure_rate,
        minimum_calls=settings.breaker_minimum_calls,
        window_seconds=settings.breaker_window_seconds,
        open_seconds=settings.breaker_open_seconds,
        half_open_probes=settings.breaker_half_open_probes,
        on_change=publish,
    )


def provider_breakers(settings: AISettings, redis: Redis) -> ProviderBreakers:
    """Both breakers, configured alike, each publishing its own state."""
    return ProviderBreakers(
        chat=_published(CHAT_BREAKER, settings, redis),
        embeddings=_published(EMBEDDINGS_BREAKER, settings, redis),
    )
