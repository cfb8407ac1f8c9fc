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
from services.common.cache import Redis

__all__ = ["GenerationStatus", "generation_status"]

_log = structlog.get_logger("eduscale.ai.status")


class GenerationStatus(msgspec.Struct, kw_only=True):
    """What the UI needs to enable or disable "Generate"."""

    generation: Literal["available", "degraded"]
    reason: str | None = None
    retry_after_s: int | None = None


async def generation_status(
    settings: AISettings, cache: Redis, relay: RelayHealth, *, now: float | None = None
) -> GenerationStatus:
    """The current status, worst cause first."""
    if settings.openai_api_key is None:
        return GenerationStatus(
            generation="degraded", reason="No AI provider is configured (OPENAI_API_KEY)"
        )
    try:
        breaker = await read_breaker_state(cache, CHAT_BREAKER)
    except (redis.exceptions.RedisError, OSError) as error:
        _log.warning("breaker_state_unavailable", error=type(error).__name__)
        breaker = None
    if breaker is not None and breaker.state == "open":
        return GenerationStatus(
            generation="degraded",
            reason="The AI provider is failing; generation is paused",
            retry_after_s=max(1, math.ceil(breaker.retry_after)),
        )
    stalled = relay.stalled_for(time.monotonic() if now is None else now)
    if stalled > settings.broker_grace_seconds:
        return GenerationStatus(
            generation="degraded",
            reason="The message broker is unreachable; generation is paused",
            retry_after_s=max(1, math.ceil(settings.broker_grace_seconds / 4)),
        )
    return GenerationStatus(generation="available")
