"""The consumer loop without a broker: backoff, commit on revoke, rebalances mid-pause."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from structlog.testing import capture_logs

from services.runtime.kafka import consumer as consumer_module
from services.runtime.kafka.consumer import ConsumerLoop, RetryPolicy, commit_on_revoke

TOPIC = "generation.requested"


class TopOfRange:
    """A random source that always draws the top of the range, and says what it was asked."""

    def __init__(self) -> None:
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.ranges.append((low, high))
        return high


def test_the_backoff_ceiling_doubles_per_attempt_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = TopOfRange()
    monkeypatch.setattr(consumer_module, "random", source)
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=5.0)
    assert [policy.delay(attempt) for attempt in range(1, 8)] == [0.5, 1, 2, 4, 5, 5, 5]
    # Full jitter: each wait is drawn from zero up to that ceiling.
    assert source.ranges == [(0, 0.5), (0, 1), (0, 2), (0, 4), (0, 5), (0, 5), (0, 5)]


def test_jittered_delays_stay_in_range_and_spread_over_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer_module, "random", random.Random(8))  # noqa: S311
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=5.0)
    for attempt, ceiling in ((1, 0.5), (3, 2.0), (6, 5.0)):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        # Spread over the range, so workers that failed together do not retry together.
        assert min(delays) < ceiling / 4
        assert max(delays) > ceiling * 3 / 4
        assert len(set(delays)) == len(delays)


class FakeConsumer:
    """Records commits, with the offsets stored when each was made."""

    def __init__(self, error: KafkaError | None = None) -> None:
        self.stored: dict[tuple[str, int], int] = {}
        self.commits: list[dict[str, Any]] = []
        self._error = error

    def store_offsets(self, *, offsets: list[TopicPartition]) -> None:
        for tp in offsets:
            self.stored[(tp.topic, tp.partition)] = tp.offset

    def commit(self, *, asynchronous: bool = True, **explicit: Any) -> None:
        if self._error is not None:
            raise KafkaException(self._error)
        self.commits.append(
            {"asynchronous": asynchronous, "explicit": explicit, "stored": dict(self.stored)}
        )


def test_a_revoke_commits_the_stored_offsets_before_returning() -> None:
    consumer = FakeConsumer()
    consumer.store_offsets(offsets=[TopicPartition(TOPIC, 0, 7), TopicPartition(TOPIC, 2, 3)])
    commit_on_revoke(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)])  # type: ignore[arg-type]
    # One synchronous commit of what the loop stored: the next owner starts after it.
    assert consumer.commits == [
        {"asynchronous": False, "explicit": {}, "stored": {(TOPIC, 0): 7, (TOPIC, 2): 3}}
    ]


def test_a_revoke_with_nothing_stored_is_quiet() -> None:
    consumer = FakeConsumer(KafkaError(KafkaError._NO_OFFSET))
    with capture_logs() as logs:
        commit_on_revoke(consumer, [TopicPartition(TOPIC, 1)])  # type: ignore[arg-type]
    # The warning is what a missing offset must not raise (the info line may be filtered
    # out by the level an earlier test configured, so it is not asserted).
    assert [e for e in logs if e["event"] == "commit_on_revoke_failed"] == []


def test_a_failed_revoke_commit_is_logged_not_raised_into_librdkafka() -> None:
    consumer = FakeConsumer(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
    with capture_logs() as logs:
        commit_on_revoke(consumer, [TopicPartition(TOPIC, 1)])  # type: ignore[arg-type]
    failed = [entry for entry in logs if entry["event"] == "commit_on_revoke_failed"]
    assert len(failed) == 1
    assert "REBALANCE_IN_PROGRESS" in failed[0]["error"]


class FakeGroupConsumer:
    """A consumer over in-memory partitions whose assignment the test changes mid-pause.

    `during_pause` runs at the first poll made while a partition is paused: it stands
    for a rebalance that happens while the loop waits out an open breaker.
    """

    def __init__(self, logs: dict[int, list[bytes]], assigned: list[int]) -> None:
        self.logs = logs
        self.assigned = list(assigned)
        self.positions = dict.fromkeys(logs, 0)
        self.paused: set[int] = set()
        self.stored: dict[int, int] = {}
        self.during_pause: Callable[[], None] | None = None
        self.idle_polls = 0
        self.resumed = False
        self._callbacks: dict[str, Any] = {}

    def subscribe(self, _topics: list[str], **callbacks: Any) -> None:
        self._callbacks = callbacks

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.assigned]

    def assign_more(self, partition: int) -> None:
        self.assigned.append(partition)
        self._callbacks["on_assign"](self, [TopicPartition(TOPIC, partition)])

    def take_away(self, partition: int) -> None:
        self._callbacks["on_revoke"](self, [TopicPartition(TOPIC, partition)])
        self.assigned.remove(partition)
        self.paused.discard(partition)

    def poll(self, timeout: float) -> Message | None:
        if self.paused and self.during_pause is not None:
            happen, self.during_pause = self.during_pause, None
            happen()
        for partition in self.assigned:
            at = self.positions[partition]
            if partition not in self.paused and at < len(self.logs[partition]):
                self.positions[partition] = at + 1
                return Message(
                    topic=TOPIC, partition=partition, offset=at, value=self.logs[partition][at]
                )
        if not self.paused:
            self.idle_polls += 1
        time.sleep(min(timeout, 0.01))
        return None

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}
        self.resumed = True
        self.idle_polls = 0  # count only the polls after the pause

    def seek(self, partition: TopicPartition) -> None:
        self.positions[partition.partition] = partition.offset

    def store_offsets(self, *, offsets: list[TopicPartition]) -> None:
        for position in offsets:
            if position.partition not in self.assigned:  # as librdkafka: not storable
                raise KafkaException(KafkaError(KafkaError._STATE))
            self.stored[position.partition] = position.offset

    def commit(self, *, asynchronous: bool = True) -> None:
        del asynchronous

    def close(self) -> None:
        self.assigned = []


class Open(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("open")
        self.retry_after = retry_after


async def run_loop(
    consumer: FakeGroupConsumer,
    handler: Callable[[Message], Awaitable[None]],
    done: Callable[[ConsumerLoop], bool],
    *,
    within: float = 10,
    **options: Any,
) -> ConsumerLoop:
    stop = asyncio.Event()

    async def nothing(_message: Message, _failure: object) -> None:
        raise AssertionError("nothing is dead-lettered here")

    loop = ConsumerLoop(
        consumer,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        TOPIC,
        handler,
        is_transient=lambda _error: False,
        breaker_open=Open,
        on_dead_letter=nothing,
        stop=stop,
        **options,
    )
    task = asyncio.create_task(loop.run())
    with anyio.fail_after(within):
        while not done(loop):
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    stop.set()
    await task
    return loop


@pytest.mark.anyio
async def test_a_message_polled_while_paused_is_put_back_and_handled_once() -> None:
    consumer = FakeGroupConsumer({0: [b"m0"], 1: [b"n0"]}, assigned=[0])
    consumer.during_pause = lambda: consumer.assign_more(1)  # arrives unpaused
    handled: list[bytes | None] = []

    async def handle(message: Message) -> None:
        if not handled and message.value() == b"m0" and consumer.during_pause is not None:
            raise Open(retry_after=0.2)
        handled.append(message.value())

    await run_loop(consumer, handle, lambda loop: loop.processed == 2)
    assert handled == [b"m0", b"n0"]  # n0, polled during the pause, was not lost
    assert consumer.stored == {0: 1, 1: 1}


@pytest.mark.anyio
async def test_a_message_whose_partition_moved_during_the_pause_is_left_to_its_new_owner() -> None:
    consumer = FakeGroupConsumer({0: [b"m0"]}, assigned=[0])
    consumer.during_pause = lambda: consumer.take_away(0)
    calls = 0

    async def handle(_message: Message) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Open(retry_after=0.2)

    loop = await run_loop(
        consumer, handle, lambda _loop: consumer.resumed and consumer.idle_polls > 0
    )
    assert calls == 1  # not handled here again: its new owner does it
    assert loop.processed == 0
    assert consumer.stored == {}


class SerialisingConsumer(FakeGroupConsumer):
    """As confluent-kafka 2.16 does, one call at a time: a call made while another
    thread's call is in progress (a poll, with the rebalance callbacks it runs) waits
    for it to return. `at_poll` runs inside the next poll (a rebalance, say)."""

    def __init__(self, logs: dict[int, list[bytes]], assigned: list[int]) -> None:
        super().__init__(logs, assigned)
        self._calls = threading.RLock()
        self.at_poll: Callable[[], None] | None = None
        self.commits: list[dict[int, int]] = []

    def poll(self, timeout: float) -> Message | None:
        with self._calls:
            if self.at_poll is not None:
                happen, self.at_poll = self.at_poll, None
                happen()
            return super().poll(timeout)

    def store_offsets(self, *, offsets: list[TopicPartition]) -> None:
        with self._calls:
            super().store_offsets(offsets=offsets)

    def commit(self, *, asynchronous: bool = True) -> None:
        del asynchronous
        with self._calls:
            self.commits.append(dict(self.stored))


@pytest.mark.anyio
async def test_a_job_ending_during_the_revoke_of_its_partition_is_committed_at_once() -> None:
    # The revoke callback waits, inside a poll, for the job to end; the job ends and
    # its offset must reach the commit without a call that waits for that same poll.
    consumer = SerialisingConsumer({0: [b"m0", b"m1"]}, assigned=[0])
    handled: list[bytes | None] = []
    revoke_took: list[float] = []

    def revoke() -> None:
        began = time.monotonic()
        consumer.take_away(0)
        revoke_took.append(time.monotonic() - began)

    async def handle(message: Message) -> None:
        if message.value() == b"m0":
            consumer.at_poll = revoke  # the next poll brings the revoke, m0 still running
            await asyncio.sleep(0.3)
        handled.append(message.value())

    await run_loop(
        consumer,
        handle,
        lambda _loop: bool(consumer.commits),
        within=30,
        concurrency=2,
        revoke_grace=2.0,
    )
    assert handled == [b"m0"]  # m1 is left to the partition's next owner
    assert consumer.commits == [{0: 1}]  # the next owner starts after m0: none redone
    assert revoke_took[0] < 1.5  # m0's 0.3 s, not a wait for a timeout


@pytest.mark.anyio
async def test_a_job_that_ignores_cancellation_holds_a_revoke_no_longer_than_the_grace() -> None:
    consumer = SerialisingConsumer({0: [b"stuck"], 1: [b"n0"]}, assigned=[0])
    release = asyncio.Event()
    handled: list[bytes | None] = []
    revoke_took: list[float] = []

    def revoke_and_assign_again() -> None:
        began = time.monotonic()
        consumer.take_away(0)
        revoke_took.append(time.monotonic() - began)
        consumer.assign_more(1)
        consumer.assign_more(0)  # back to us: an offset stored by the stuck job now would
        # tell the group that "stuck" is done

    async def handle(message: Message) -> None:
        if message.value() == b"stuck":
            consumer.at_poll = revoke_and_assign_again
            while not release.is_set():
                with contextlib.suppress(asyncio.CancelledError):  # a handler deaf to cancel
                    await release.wait()
        handled.append(message.value())

    def done(loop: ConsumerLoop) -> bool:
        if b"n0" in handled:
            release.set()
        return b"stuck" in handled and loop.in_flight == 0

    grace = 0.2
    try:
        await run_loop(consumer, handle, done, within=30, concurrency=2, revoke_grace=grace)
    finally:
        release.set()  # whatever failed, the stuck job ends and the loop can stop
    assert revoke_took[0] < grace + consumer_module._REVOKE_SLACK_SECONDS + 1
    assert consumer.commits == [{}]  # nothing of partition 0 was finished when it went
    assert consumer.stored == {1: 1}  # and the stuck job, ending later, stored nothing
