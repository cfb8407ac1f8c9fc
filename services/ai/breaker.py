"""The LLM circuit breaker: stop calling a failing provider, then probe it back to health.

States and what moves between them::

    closed ──(failure rate >= threshold over the window, with >= minimum_calls)──> open
    open ──(first call after open_seconds)──> half_open
    half_open ──(half_open_probes probes all succeed)──> closed
    half_open ──(any probe fails)──> open (a fresh cool-down)

Closed counts outcomes over a rolling time window, so one bad minute trips it and a
slow trickle of errors in a busy hour does not. Open fails fast with `BreakerOpen`, never
calling the provider, so the worker pauses instead of burning retries on a dead service.
Half-open admits `half_open_probes` probes per recovery attempt, all at once at most;
every other caller fails fast until they settle. It closes only once every probe has
succeeded (with the default single probe, the first success closes), because with more
than one probe a single lucky answer proves little.

What counts (`is_provider_failure`): connection errors and timeouts, 429 and 5xx are the
provider's fault and are failures. A 4xx other than 429 is our bug, and the provider did
answer, so it counts as a success. Any other exception (a parsing error in the
operation, a cancellation) is neutral: it propagates and is not counted; a neutral
probe gives its slot back. An outcome from a call admitted before the last transition
(a closed-era call that ends after the breaker opened) is ignored: it says nothing about
the provider now.

Concurrency: the state only changes in synchronous code between awaits, so the asyncio
event loop already makes every change atomic and no lock guards it. `on_change` is the
one await: transitions queue a snapshot, and the coroutine that caused one delivers the
queue under a lock, so observers see the transitions in the order they happened.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import openai
import structlog

__all__ = [
    "BreakerOpen",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "is_provider_failure",
]

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]
_Outcome = Literal["success", "failure", "neutral"]

_SERVER_ERROR = 500
_HALF_OPEN_RETRY_SECONDS = 1.0
"""The retry hint while probes are in flight: about one LLM call, the probe's own length."""

_log = structlog.get_logger("eduscale.ai.breaker")


def is_provider_failure(exc: BaseException) -> bool:
    """Whether `exc` is the provider's fault: worth tripping the breaker and retrying later.

    Connection errors and timeouts (the SDK's and asyncio's), 429 and 5xx are. Other 4xx
    are a bug in our request, and a retry would fail the same way.
    """
    if isinstance(exc, openai.APIConnectionError | openai.RateLimitError | TimeoutError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= _SERVER_ERROR


def _outcome_of(exc: BaseException) -> _Outcome:
    if is_provider_failure(exc):
        return "failure"
    if isinstance(exc, openai.APIStatusError):
        return "success"  # the provider is up and answered; the request was wrong
    return "neutral"


class BreakerOpen(Exception):
    """Raised instead of calling the provider: the breaker is open, or no probe slot is free."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name!r} is open; retry in {retry_after:.1f}s")
        self.name = name
        """The breaker that refused the call."""
        self.retry_after = retry_after
        """Seconds until a probe may pass (an estimate while probes are in flight)."""


@dataclass(frozen=True)
class BreakerSnapshot:
    """The breaker at one moment, as observers and `/ai/status` see it.

    `failure_rate` and `calls_in_window` describe the closed-state window; while open or
    half-open they still describe the window that tripped it. `retry_after` is 0 unless
    open; open with `retry_after` 0 means the next call becomes a probe.
    """

    state: BreakerState
    retry_after: float
    failure_rate: float
    calls_in_window: int


@dataclass(frozen=True)
class _Ticket:
    epoch: int
    probe: bool


class CircuitBreaker:
    """Wraps provider calls: `await breaker.call(lambda: client.chat.completions.create(...))`.

    Args:
        name: Names the breaker in logs, errors and the shared Redis key.
        failure_rate_threshold: The failure share of the window, in (0, 1], that opens it.
        minimum_calls: Outcomes the window needs before the rate is trusted (>= 1).
        window_seconds: How far back the rolling window looks (> 0).
        open_seconds: The cool-down before the first probe (> 0).
        half_open_probes: Probes per recovery attempt, and how many must succeed (>= 1).
        clock: Monotonic seconds; injected so tests move time without sleeping.
        on_change: Awaited with a snapshot on every transition. Its errors are logged and
            never fail the call, which has already been decided by then.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_rate_threshold: float = 0.5,
        minimum_calls: int = 10,
        window_seconds: float = 30.0,
        open_seconds: float = 30.0,
        half_open_probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerSnapshot], Awaitable[None]] | None = None,
    ) -> None:
        if not 0 < failure_rate_threshold <= 1:
            raise ValueError(
                f"failure_rate_threshold must be in (0, 1], got {failure_rate_threshold!r}"
            )
        if minimum_calls < 1:
            raise ValueError(f"minimum_calls must be >= 1, got {minimum_calls!r}")
        if not (math.isfinite(window_seconds) and window_seconds > 0):
            raise ValueError(f"window_seconds must be finite and > 0, got {window_seconds!r}")
        if not (math.isfinite(open_seconds) and open_seconds > 0):
            raise ValueError(f"open_seconds must be finite and > 0, got {open_seconds!r}")
        if half_open_probes < 1:
            raise ValueError(f"half_open_probes must be >= 1, got {half_open_probes!r}")
        self.name = name
        self._threshold = failure_rate_threshold
        self._minimum_calls = minimum_calls
        self._window_seconds = window_seconds
        self._open_seconds = open_seconds
        self._probes = half_open_probes
        self._clock = clock
        self._on_change = on_change

        self._state: BreakerState = "closed"
        self._epoch = 0  # bumped on every transition; stale outcomes carry an older one
        self._window: deque[tuple[float, bool]] = deque()  # (when, failed), oldest first
        self._failures = 0  # failed entries in `_window`
        self._open_until = 0.0
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._pending: deque[BreakerSnapshot] = deque()
        self._delivering = asyncio.Lock()

    @property
    def state(self) -> str:
        """The current state; open stays open until a call arrives after the cool-down."""
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        """The state, retry hint and window statistics now."""
        now = self._clock()
        self._prune(now)
        calls = len(self._window)
        retry_after = max(0.0, self._open_until - now) if self._state == "open" else 0.0
        return BreakerSnapshot(
            state=self._state,
            retry_after=retry_after,
            failure_rate=self._failures / calls if calls else 0.0,
            calls_in_window=calls,
        )

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation` if the breaker lets it through, and count its outcome.

        Raises:
            BreakerOpen: Open, or half-open with every probe slot taken; `operation` was
                not called.
        """
        ticket = self._admit()
        try:
            await self._deliver()
            result = await operation()
        except BaseException as error:
            self._settle(ticket, _outcome_of(error))
            await self._deliver()
            raise
        self._settle(ticket, "success")
        await self._deliver()
        return result

    def _admit(self) -> _Ticket:
        now = self._clock()
        if self._state == "open":
            if now < self._open_until:
                raise BreakerOpen(self.name, self._open_until - now)
            self._transition("half_open")
        if self._state == "half_open":
            if self._probes_in_flight + self._probe_successes >= self._probes:
                raise BreakerOpen(self.name, min(_HALF_OPEN_RETRY_SECONDS, self._open_seconds))
            self._probes_in_flight += 1
            return _Ticket(self._epoch, probe=True)
        return _Ticket(self._epoch, probe=False)

    def _settle(self, ticket: _Ticket, outcome: _Outcome) -> None:
        if ticket.epoch != self._epoch:
            return  # admitted under an earlier state: says nothing about the provider now
        if ticket.probe:
            self._probes_in_flight -= 1
            if outcome == "failure":
                self._transition("open")
            elif outcome == "success":
                self._probe_successes += 1
                if self._probe_successes >= self._probes:
                    self._transition("closed")
            return
        if outcome == "neutral":
            return
        now = self._clock()
        failed = outcome == "failure"
        self._window.append((now, failed))
        self._failures += failed
        if failed:
            self._prune(now)
            calls = len(self._window)
            if calls >= self._minimum_calls and self._failures / calls >= self._threshold:
                self._transition("open")

    def _prune(self, now: float) -> None:
        horizon = now - self._window_seconds
        while self._window and self._window[0][0] <= horizon:
            _, failed = self._window.popleft()
            self._failures -= failed

    def _transition(self, state: BreakerState) -> None:
        self._state = state
        self._epoch += 1
        self._probes_in_flight = 0
        self._probe_successes = 0
        if state == "open":
            self._open_until = self._clock() + self._open_seconds
        elif state == "closed":
            self._window.clear()  # the outage's failures must not trip the recovered breaker
            self._failures = 0
        snapshot = self.snapshot()
        log = _log.warning if state == "open" else _log.info
        log(
            "breaker_state_changed",
            breaker=self.name,
            state=state,
            retry_after=round(snapshot.retry_after, 3),
            failure_rate=round(snapshot.failure_rate, 3),
            calls_in_window=snapshot.calls_in_window,
        )
        if self._on_change is not None:
            self._pending.append(snapshot)

    async def _deliver(self) -> None:
        """Hand queued snapshots to `on_change`, oldest first, one deliverer at a time."""
        if self._on_change is None or not self._pending:
            return
        async with self._delivering:
            while self._pending:
                snapshot = self._pending[0]
                try:
                    await self._on_change(snapshot)
                except Exception:  # noqa: BLE001 - an observer must never fail the call
                    _log.warning(
                        "breaker_on_change_failed",
                        breaker=self.name,
                        state=snapshot.state,
                        exc_info=True,
                    )
                # Popped only once delivered: a cancelled delivery is retried, not lost.
                self._pending.popleft()
