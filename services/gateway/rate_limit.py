"""Per-client, per-route request counters in fixed one-minute windows, as Kong counts them.

Kong's rate-limiting plugin with `minute: N` counts the requests of one client on one
route in the current calendar minute and refuses the N+1st with 429 until the minute
ends. The local gateway is one process, so the counters live in memory (Kong keeps them
in Redis to share them between pods); only the current minute is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Decision", "MinuteWindows"]

_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass, and what the client is told about its budget."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Seconds until the window ends (the `Retry-After` of a refusal)."""


class MinuteWindows:
    """Counters keyed by (route, client) in the current minute."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._window = -1
        self._counts: dict[tuple[str, str], int] = {}

    def hit(self, route: str, client: str, limit: int) -> Decision:
        """Count one request; refused requests are not counted (as in Kong)."""
        now = self._clock()
        window = int(now // _WINDOW_SECONDS)
        if window != self._window:
            self._window = window
            self._counts.clear()
        reset = max(1, math.ceil((window + 1) * _WINDOW_SECONDS - now))
        used = self._counts.get((route, client), 0)
        if used >= limit:
            return Decision(allowed=False, limit=limit, remaining=0, reset_seconds=reset)
        self._counts[(route, client)] = used + 1
        return Decision(allowed=True, limit=limit, remaining=limit - used - 1, reset_seconds=reset)
