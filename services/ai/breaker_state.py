"""The breaker's state in Redis, so every orchestrator pod gives the same `/ai/status`.

The workers own the breakers; the orchestrator pods only read. Each worker publishes its
snapshot under `ai:breaker:{name}` on every transition. The key has a TTL so the "open"
of a worker that died is forgotten instead of pausing generation forever; while open,
the TTL outlasts the cool-down, so the state cannot vanish before a probe could replace
it. The value records when it was written (wall clock, the only clock pods share), and a
reader counts `retry_after` down from there, so a pod reading late does not promise the
full cool-down again.
"""

import math
import time
from collections.abc import Callable
from typing import Annotated

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.ai.breaker import BreakerSnapshot, BreakerState

__all__ = ["breaker_key", "publish_breaker_state", "read_breaker_state"]

_log = structlog.get_logger("eduscale.ai.breaker")

_NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class _Published(msgspec.Struct, frozen=True, kw_only=True):
    state: BreakerState
    retry_after: _NonNegative
    failure_rate: Annotated[float, msgspec.Meta(ge=0, le=1)]
    calls_in_window: Annotated[int, msgspec.Meta(ge=0)]
    published_at: _NonNegative
    """Unix seconds when written."""


def breaker_key(name: str) -> str:
    """The Redis key holding breaker `name`'s state."""
    return f"ai:breaker:{name}"


async def publish_breaker_state(
    redis: Redis,
    name: str,
    snapshot: BreakerSnapshot,
    *,
    ttl_seconds: int,
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Store `snapshot` for `ttl_seconds` (longer while open: at least past `retry_after`).

    Redis errors are logged and swallowed: this runs as the breaker's `on_change`, and
    a cache outage must not fail the provider call that caused the transition.
    """
    if ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be >= 1, got {ttl_seconds!r}")
    ttl = ttl_seconds
    if snapshot.state == "open":
        ttl = max(ttl, math.ceil(snapshot.retry_after) + 1)
    payload = msgspec.json.encode(
        _Published(
            state=snapshot.state,
            retry_after=snapshot.retry_after,
            failure_rate=snapshot.failure_rate,
            calls_in_window=snapshot.calls_in_window,
            published_at=wall_clock(),
        )
    )
    try:
        await redis.set(breaker_key(name), payload, ex=ttl)
    except (RedisError, OSError) as error:
        _log.warning(
            "breaker_state_publish_failed",
            breaker=name,
            state=snapshot.state,
            error=type(error).__name__,
        )


async def read_breaker_state(
    redis: Redis,
    name: str,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> BreakerSnapshot | None:
    """The last published snapshot, `retry_after` counted down; None if absent or unreadable.

    Redis errors propagate: whether an unknown state means "available" is the caller's
    decision.
    """
    raw = await redis.get(breaker_key(name))
    if raw is None:
        return None
    try:
        published = msgspec.json.decode(raw, type=_Published)
    except msgspec.DecodeError:  # ValidationError included
        _log.warning("breaker_state_undecodable", breaker=name)
        return None
    elapsed = max(0.0, wall_clock() - published.published_at)
    return BreakerSnapshot(
        state=published.state,
        retry_after=max(0.0, published.retry_after - elapsed),
        failure_rate=published.failure_rate,
        calls_in_window=published.calls_in_window,
    )
