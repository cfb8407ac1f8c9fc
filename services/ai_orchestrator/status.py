"""Is generation available? One answer for every orchestrator pod.

Generation is degraded when no API key is configured, when the chat breaker is
open (the workers publish its state to Redis, so every pod agrees), or when the outbox
has failed to reach the broker for longer than the grace period (a short outage is
absorbed: requests are still accepted and wait in the outbox). The UI reads
`/ai/status` to disable "Generate"; `POST /ai/generations` answers 503 while degraded.
"""

import math
import time
from typing import Literal

import msgspec
import redis.exceptions
import structlog

from services.ai.breaker_state import read_breaker_state
from services.ai.outbox import RelayHealth
from services.ai.provider_breakers import CHAT_BREAKER
from services.ai.settings import AISettings
from services.runtime.cache import Redis

__all__ = ["GenerationStatus", "generation_status", "provider_paused_for"]

_log = structlog.get_logger("eduscale.ai.status")


class GenerationStatus(msgspec.Struct, kw_only=True):
    """What the UI needs to enable or disable "Generate"."""

    generation: Literal["available", "degraded"]
    reason: str | None = None
    retry_after_s: int | None = None


async def provider_paused_for(cache: Redis, breaker: str) -> int | None:
    """Seconds to wait (at least 1) while the workers' `breaker` is open, else None.

    The orchestrator calls the provider too (search embeds its query) but holds no breaker
    of its own: the workers' shared state is the best knowledge of the provider there is.
    An unreadable state counts as closed, so a Redis outage cannot take the AI down too.
    """
    try:
        state = await read_breaker_state(cache, breaker)
    except (redis.exceptions.RedisError, OSError) as error:
        _log.warning("breaker_state_unavailable", error=type(error).__name__)
        return None
    if state is None or state.state != "open":
        return None
    return max(1, math.ceil(state.retry_after))


async def generation_status(
    settings: AISettings, cache: Redis, relay: RelayHealth, *, now: float | None = None
) -> GenerationStatus:
    """The current status, worst cause first."""
    if settings.openai_api_key is None:
        return GenerationStatus(
            generation="degraded", reason="No AI provider is configured (OPENAI_API_KEY)"
        )
    paused = await provider_paused_for(cache, CHAT_BREAKER)
    if paused is not None:
        return GenerationStatus(
            generation="degraded",
            reason="The AI provider is failing; generation is paused",
            retry_after_s=paused,
        )
    stalled = relay.stalled_for(time.monotonic() if now is None else now)
    if stalled > settings.broker_grace_seconds:
        return GenerationStatus(
            generation="degraded",
            reason="The message broker is unreachable; generation is paused",
            retry_after_s=max(1, math.ceil(settings.broker_grace_seconds / 4)),
        )
    return GenerationStatus(generation="available")
