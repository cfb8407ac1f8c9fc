"""The LLM circuit breaker and its shared Redis state, on a fake clock: no sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import msgspec
import openai
import pytest
import redis
import redis.asyncio
from service_harness import REDIS_URL
from structlog.testing import capture_logs

from services.ai.breaker import (
    BreakerOpen,
    BreakerSnapshot,
    CircuitBreaker,
    is_provider_failure,
)
from services.ai.breaker_state import breaker_key, publish_breaker_state, read_breaker_state

pytestmark = pytest.mark.anyio

_REQUEST = httpx2.Request("POST", "https://api.openai.test/v1/chat/completions")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    """Stands for a provider failure in tests that do not care which one."""


def status_error(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    response = httpx2.Response(status, request=_REQUEST)
    return cls(f"HTTP {status}", response=response, body=None)


def server_error() -> openai.APIStatusError:
    return status_error(openai.InternalServerError, 500)


def breaker(clock: FakeClock, **options: Any) -> CircuitBreaker:
    settings: dict[str, Any] = {
        "failure_rate_threshold": 0.5,
        "minimum_calls": 4,
        "window_seconds": 10.0,
        "open_seconds": 30.0,
        "clock": clock,
    } | options
    return CircuitBreaker("llm", **settings)


async def succeed() -> str:
    return "ok"


def failing(error: BaseException) -> Callable[[], Awaitable[str]]:
    async def operation() -> str:
        raise error

    return operation


async def fail(cb: CircuitBreaker, times: int = 1, error: BaseException | None = None) -> None:
    for _ in range(times):
        raised = error or server_error()
        with pytest.raises(type(raised)):
            await cb.call(failing(raised))


async def trip(cb: CircuitBreaker) -> None:
    await fail(cb, times=4)
    assert cb.state == "open"


class Counting:
    """An operation that records how often it ran."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        return "ok"


# --- classification ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (openai.APIConnectionError(request=_REQUEST), True),
        (openai.APITimeoutError(request=_REQUEST), True),
        (status_error(openai.RateLimitError, 429), True),
        (status_error(openai.InternalServerError, 500), True),
        (status_error(openai.InternalServerError, 503), True),
        (status_error(openai.APIStatusError, 502), True),
        (TimeoutError(), True),
        (status_error(openai.BadRequestError, 400), False),
        (status_error(openai.AuthenticationError, 401), False),
        (status_error(openai.NotFoundError, 404), False),
        (status_error(openai.UnprocessableEntityError, 422), False),
        (ValueError("bad model output"), False),
        (asyncio.CancelledError(), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_provider_failures_are_classified(error: BaseException, expected: bool) -> None:
    assert is_provider_failure(error) is expected


@pytest.mark.parametrize(
    ("argument", "value", "allowed"),
    [
        ("failure_rate_threshold", 0.0, r"\(0, 1\]"),
        ("failure_rate_threshold", 1.5, r"\(0, 1\]"),
        ("failure_rate_threshold", float("nan"), r"\(0, 1\]"),
        ("minimum_calls", 0, ">= 1"),
        ("window_seconds", 0.0, "> 0"),
        ("window_seconds", float("inf"), "> 0"),
        ("open_seconds", -1.0, "> 0"),
        ("half_open_probes", 0, ">= 1"),
    ],
)
def test_invalid_arguments_name_the_argument_and_range(
    argument: str, value: float, allowed: str
) -> None:
    with pytest.raises(ValueError, match=rf"{argument} must be .*{allowed}"):
        CircuitBreaker("llm", **{argument: value})  # type: ignore[arg-type]


def test_a_threshold_of_one_is_allowed() -> None:
    assert CircuitBreaker("llm", failure_rate_threshold=1.0).state == "closed"


# --- closed ------------------------------------------------------------------------


async def test_it_stays_closed_below_minimum_calls_even_at_a_full_failure_rate() -> None:
    cb = breaker(FakeClock())
    await fail(cb, times=3)
    assert cb.state == "closed"
    assert cb.snapshot() == BreakerSnapshot("closed", 0.0, 1.0, 3)
    await fail(cb)
    assert cb.state == "open"


async def test_it_opens_only_when_the_rate_reaches_the_threshold() -> None:
    cb = breaker(FakeClock(), failure_rate_threshold=0.6, minimum_calls=5)
    for _ in range(3):
        assert await cb.call(succeed) == "ok"
    await fail(cb, times=4)  # 4 of 7 = 0.57
    assert cb.state == "closed"
    assert cb.snapshot().failure_rate == pytest.approx(4 / 7)
    await fail(cb)  # 5 of 8 = 0.625
    assert cb.state == "open"


async def test_a_rate_exactly_at_the_threshold_opens_it() -> None:
    cb = breaker(FakeClock())
    for _ in range(2):
        assert await cb.call(succeed) == "ok"
    await fail(cb)
    assert cb.state == "closed"  # 1 of 3: below minimum_calls anyway
    await fail(cb)  # 2 of 4 = 0.5
    assert cb.state == "open"


async def test_failures_outside_the_window_do_not_count() -> None:
    clock = FakeClock()
    cb = breaker(clock)
    await fail(cb, times=3)
    clock.advance(10.0)  # exactly one window later: gone
    assert cb.snapshot().calls_in_window == 0
    await fail(cb, times=3)
    assert cb.state == "closed"
    clock.advance(5.0)
    await fail(cb)  # the second three are still in the window: 4 of 4
    assert cb.state == "open"


async def test_other_exceptions_propagate_and_are_not_counted() -> None:
    cb = breaker(FakeClock())
    with pytest.raises(ValueError, match="bad answer"):
        await cb.call(failing(ValueError("bad answer")))
    assert cb.snapshot().calls_in_window == 0


async def test_4xx_propagate_and_count_as_successes() -> None:
    cb = breaker(FakeClock(), minimum_calls=2)
    await fail(cb, times=10, error=status_error(openai.BadRequestError, 400))
    assert cb.state == "closed"
    assert cb.snapshot() == BreakerSnapshot("closed", 0.0, 0.0, 10)


@pytest.mark.parametrize(
    "error",
    [
        status_error(openai.RateLimitError, 429),
        status_error(openai.InternalServerError, 500),
        openai.APIConnectionError(request=_REQUEST),
        openai.APITimeoutError(request=_REQUEST),
        TimeoutError(),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_provider_failures_open_it(error: BaseException) -> None:
    cb = breaker(FakeClock())
    await fail(cb, times=4, error=error)
    assert cb.state == "open"


# --- open --------------------------------------------------------------------------


async def test_open_fails_fast_without_calling_the_operation() -> None:
    clock = FakeClock()
    cb = breaker(clock)
    await trip(cb)
    clock.advance(12.5)
    operation = Counting()
    with pytest.raises(BreakerOpen) as refused:
        await cb.call(operation)
    assert operation.calls == 0
    assert refused.value.retry_after == pytest.approx(17.5)
    assert refused.value.name == "llm"
    assert cb.snapshot().state == "open"
    assert cb.snapshot().retry_after == pytest.approx(17.5)


async def test_after_the_cool_down_the_next_call_is_a_probe_and_success_closes() -> None:
    clock = FakeClock()
    cb = breaker(clock, window_seconds=600.0)
    await trip(cb)
    clock.advance(30.0)
    assert cb.snapshot().retry_after == 0.0
    seen: list[str] = []

    async def probe() -> str:
        seen.append(cb.state)
        return "ok"

    assert await cb.call(probe) == "ok"
    assert seen == ["half_open"]
    assert cb.state == "closed"
    assert cb.snapshot() == BreakerSnapshot("closed", 0.0, 0.0, 0)  # the outage is forgotten
    await fail(cb, times=3)
    assert cb.state == "closed"


async def test_a_failed_probe_reopens_with_a_fresh_cool_down() -> None:
    clock = FakeClock()
    cb = breaker(clock)
    await trip(cb)
    clock.advance(31.0)
    await fail(cb, error=openai.APIConnectionError(request=_REQUEST))
    assert cb.state == "open"
    assert cb.snapshot().retry_after == pytest.approx(30.0)
    clock.advance(29.0)
    with pytest.raises(BreakerOpen) as refused:
        await cb.call(succeed)
    assert refused.value.retry_after == pytest.approx(1.0)


async def test_a_4xx_probe_closes_and_a_neutral_probe_frees_its_slot() -> None:
    clock = FakeClock()
    cb = breaker(clock)
    await trip(cb)
    clock.advance(30.0)
    with pytest.raises(ValueError, match="unusable"):
        await cb.call(failing(ValueError("unusable")))
    assert cb.state == "half_open"
    await fail(cb, error=status_error(openai.BadRequestError, 400))
    assert cb.state == "closed"


# --- half-open under concurrency ---------------------------------------------------


@pytest.mark.parametrize("probes", [1, 3])
async def test_half_open_lets_exactly_the_probes_through_under_concurrency(probes: int) -> None:
    clock = FakeClock()
    cb = breaker(clock, half_open_probes=probes)
    await trip(cb)
    clock.advance(30.0)
    release = asyncio.Event()
    running = 0

    async def probe() -> str:
        nonlocal running
        running += 1
        await release.wait()
        return "ok"

    outcomes: list[str] = []
    retry_hints: list[float] = []
    all_refused = anyio.Event()

    async def caller() -> None:
        try:
            outcomes.append(await cb.call(probe))
        except BreakerOpen as refused:
            retry_hints.append(refused.retry_after)
            if len(retry_hints) == 50 - probes:
                all_refused.set()

    async with anyio.create_task_group() as tasks:
        for _ in range(50):
            tasks.start_soon(caller)
        with anyio.fail_after(5):
            await all_refused.wait()
        assert all(hint == 1.0 for hint in retry_hints)
        assert running == probes  # the probes are in flight, everyone else was refused
        assert cb.state == "half_open"
        release.set()
    assert running == probes
    assert outcomes.count("ok") == probes
    assert cb.state == "closed"


async def test_with_several_probes_one_success_is_not_enough_and_one_failure_reopens() -> None:
    clock = FakeClock()
    cb = breaker(clock, half_open_probes=2)
    await trip(cb)
    clock.advance(30.0)
    assert await cb.call(succeed) == "ok"
    assert cb.state == "half_open"
    await fail(cb)
    assert cb.state == "open"
    assert cb.snapshot().retry_after == pytest.approx(30.0)


async def test_a_cancelled_probe_frees_its_slot() -> None:
    clock = FakeClock()
    cb = breaker(clock)
    await trip(cb)
    clock.advance(30.0)
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.ensure_future(cb.call(hang))
    await started.wait()
    with pytest.raises(BreakerOpen):
        await cb.call(succeed)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await cb.call(succeed) == "ok"
    assert cb.state == "closed"


async def test_outcomes_of_calls_admitted_before_a_transition_are_ignored() -> None:
    clock = FakeClock()
    cb = breaker(clock, window_seconds=600.0)
    release = asyncio.Event()

    async def slow_failure() -> str:
        await release.wait()
        raise server_error()

    async with anyio.create_task_group() as tasks:

        async def straggler() -> None:
            with pytest.raises(openai.InternalServerError):
                await cb.call(slow_failure)

        tasks.start_soon(straggler)
        await anyio.lowlevel.checkpoint()
        await trip(cb)
        clock.advance(30.0)
        # A probe in flight; the closed-era failure lands meanwhile and must not reopen it.
        probe_release = asyncio.Event()

        async def held_probe() -> str:
            await probe_release.wait()
            return "ok"

        tasks.start_soon(cb.call, held_probe)
        await anyio.lowlevel.checkpoint()
        assert cb.state == "half_open"
        release.set()
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        assert cb.state == "half_open"
        probe_release.set()
    assert cb.state == "closed"
    assert cb.snapshot().calls_in_window == 0


async def test_a_probe_from_an_earlier_half_open_does_not_count_in_the_next() -> None:
    clock = FakeClock()
    cb = breaker(clock, half_open_probes=2)
    await trip(cb)
    clock.advance(30.0)
    release = asyncio.Event()

    async def held() -> str:
        await release.wait()
        return "ok"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(cb.call, held)  # probe A, in flight
        await anyio.lowlevel.checkpoint()
        await fail(cb)  # probe B fails: open again
        clock.advance(30.0)
        assert await cb.call(succeed) == "ok"  # 1 of the 2 successes this half-open needs
        release.set()  # A succeeds, but it probed the previous half-open
    assert cb.state == "half_open"
    assert await cb.call(succeed) == "ok"
    assert cb.state == "closed"


# --- on_change ---------------------------------------------------------------------


async def test_on_change_receives_every_transition_in_order() -> None:
    clock = FakeClock()
    seen: list[BreakerSnapshot] = []

    async def record(snapshot: BreakerSnapshot) -> None:
        await anyio.lowlevel.checkpoint()  # a real observer awaits I/O
        seen.append(snapshot)

    cb = breaker(clock, on_change=record)
    await trip(cb)
    clock.advance(30.0)
    await fail(cb)
    clock.advance(30.0)
    assert await cb.call(succeed) == "ok"
    assert seen == [
        BreakerSnapshot("open", 30.0, 1.0, 4),
        BreakerSnapshot("half_open", 0.0, 0.0, 0),  # the tripping failures have aged out
        BreakerSnapshot("open", 30.0, 0.0, 0),
        BreakerSnapshot("half_open", 0.0, 0.0, 0),
        BreakerSnapshot("closed", 0.0, 0.0, 0),
    ]


async def test_on_change_under_concurrency_keeps_the_order() -> None:
    clock = FakeClock()
    seen: list[str] = []

    async def record(snapshot: BreakerSnapshot) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(snapshot.state)

    cb = breaker(clock, on_change=record, half_open_probes=2)

    async def attempt(operation: Callable[[], Awaitable[str]]) -> None:
        with contextlib.suppress(BreakerOpen, openai.InternalServerError):
            await cb.call(operation)

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(attempt, failing(server_error()))
    assert cb.state == "open"
    clock.advance(30.0)
    async with anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(attempt, succeed)
    assert seen == ["open", "half_open", "closed"]


async def test_transitions_queued_behind_a_slow_observer_arrive_in_order() -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    seen: list[str] = []

    async def slow(snapshot: BreakerSnapshot) -> None:
        if snapshot.state == "open":
            await gate.wait()  # Redis is slow to take the first one
        seen.append(snapshot.state)

    cb = breaker(clock, on_change=slow)
    async with anyio.create_task_group() as tasks:
        await fail(cb, times=3)
        tasks.start_soon(fail, cb)  # the fourth failure opens it and blocks in `slow`
        await anyio.lowlevel.checkpoint()
        assert cb.state == "open"
        clock.advance(30.0)
        tasks.start_soon(cb.call, succeed)  # probes: half_open queues behind "open"
        await anyio.lowlevel.checkpoint()
        assert cb.state == "half_open"
        assert seen == []
        gate.set()
    assert cb.state == "closed"
    assert seen == ["open", "half_open", "closed"]


async def test_a_failing_observer_is_logged_and_never_breaks_the_call() -> None:
    async def broken(snapshot: BreakerSnapshot) -> None:
        raise RuntimeError(f"redis down; {snapshot.state} lost")

    cb = breaker(FakeClock(), on_change=broken)
    with capture_logs() as logs:
        await trip(cb)
    assert [entry["event"] for entry in logs] == [
        "breaker_state_changed",
        "breaker_on_change_failed",
    ]
    assert logs[1]["state"] == "open"


# --- shared state in Redis ---------------------------------------------------------


@pytest.fixture
async def async_redis():
    client = redis.asyncio.Redis.from_url(REDIS_URL)  # the database redis_client flushes
    yield client
    await client.aclose()


async def test_publish_then_read_round_trips_with_a_ttl(
    redis_client, async_redis: redis.asyncio.Redis
) -> None:
    snapshot = BreakerSnapshot("closed", 0.0, 0.25, 8)
    await publish_breaker_state(async_redis, "llm", snapshot, ttl_seconds=60)
    assert 0 < redis_client.ttl("ai:breaker:llm") <= 60
    assert msgspec.json.decode(redis_client.get("ai:breaker:llm"))["state"] == "closed"
    assert await read_breaker_state(async_redis, "llm") == snapshot


async def test_open_outlives_its_cool_down_and_counts_down(
    redis_client, async_redis: redis.asyncio.Redis
) -> None:
    snapshot = BreakerSnapshot("open", 100.0, 0.9, 12)
    await publish_breaker_state(
        async_redis, "llm", snapshot, ttl_seconds=10, wall_clock=lambda: 5000.0
    )
    assert redis_client.ttl(breaker_key("llm")) > 100
    later = await read_breaker_state(async_redis, "llm", wall_clock=lambda: 5040.0)
    assert later == BreakerSnapshot("open", 60.0, 0.9, 12)
    much_later = await read_breaker_state(async_redis, "llm", wall_clock=lambda: 5200.0)
    assert much_later is not None
    assert much_later.retry_after == 0.0


async def test_missing_expired_and_garbage_read_as_none(
    redis_client, async_redis: redis.asyncio.Redis
) -> None:
    assert await read_breaker_state(async_redis, "llm") is None
    await publish_breaker_state(
        async_redis, "llm", BreakerSnapshot("open", 5.0, 1.0, 10), ttl_seconds=60
    )
    redis_client.pexpire(breaker_key("llm"), 1)
    await anyio.sleep(0.01)  # Redis expires by its own clock on access: 1 ms has long passed
    assert await read_breaker_state(async_redis, "llm") is None
    redis_client.set(breaker_key("llm"), b"not json")
    assert await read_breaker_state(async_redis, "llm") is None
    redis_client.set(breaker_key("llm"), b'{"state": "ajar", "retry_after": 1}')
    assert await read_breaker_state(async_redis, "llm") is None


async def test_publish_swallows_redis_errors_and_read_raises_them() -> None:
    down = redis.asyncio.Redis.from_url(
        "redis://127.0.0.1:1/9", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    try:
        with capture_logs() as logs:
            await publish_breaker_state(
                down, "llm", BreakerSnapshot("open", 5.0, 1.0, 10), ttl_seconds=60
            )
        assert logs[0]["event"] == "breaker_state_publish_failed"
        with pytest.raises(redis.exceptions.ConnectionError):
            await read_breaker_state(down, "llm")
    finally:
        await down.aclose()


async def test_publish_rejects_a_ttl_below_one_second(async_redis: redis.asyncio.Redis) -> None:
    with pytest.raises(ValueError, match="ttl_seconds must be >= 1"):
        await publish_breaker_state(
            async_redis, "llm", BreakerSnapshot("closed", 0.0, 0.0, 0), ttl_seconds=0
        )


async def test_the_breaker_publishes_its_transitions(
    redis_client, async_redis: redis.asyncio.Redis
) -> None:
    clock = FakeClock()

    async def publish(snapshot: BreakerSnapshot) -> None:
        await publish_breaker_state(async_redis, "llm", snapshot, ttl_seconds=5)

    cb = breaker(clock, on_change=publish)
    await trip(cb)
    shared = await read_breaker_state(async_redis, "llm")
    assert shared is not None
    assert shared.state == "open"
    assert 29.0 < shared.retry_after <= 30.0
    assert redis_client.ttl(breaker_key("llm")) >= 30
    clock.advance(30.0)
    assert await cb.call(succeed) == "ok"
    shared = await read_breaker_state(async_redis, "llm")
    assert shared is not None
    assert shared.state == "closed"
