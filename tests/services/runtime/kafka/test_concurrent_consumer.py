"""The consumer loop with several jobs in flight, on a real broker: overlap and guarantees."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import anyio
import pytest
from confluent_kafka import Message
from consumer_harness import TOPIC, committed, job, produce, running_loop
from kafka_broker import Broker

from services.runtime.kafka.dead_letters import Failure
from services.runtime.kafka.dlq_tool import read_dead_letters
from services.runtime.kafka.envelope import PoisonMessage

pytestmark = pytest.mark.anyio


class InFlight:
    """Counts the handler calls running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def __exit__(self, *_exc: object) -> None:
        self.now -= 1


async def test_jobs_overlap_up_to_the_concurrency_and_all_are_committed(
    kafka_broker: Broker,
) -> None:
    settings = kafka_broker.settings()
    values = [job() for _ in range(12)]
    produce(kafka_broker, *values)  # one key: one partition
    flight, done = InFlight(), list[bytes]()

    async def handle(message: Message) -> None:
        with flight:
            await asyncio.sleep(0.3)
        done.append(message.value() or b"")

    async with running_loop(settings, handle, concurrency=4) as running:
        await running.until(lambda: len(done) == 12)
    assert flight.most == 4
    assert sorted(done) == sorted(values)
    assert sum(committed(settings, "workers").values()) == 12


async def test_a_slow_early_message_holds_back_the_stored_offset_of_its_partition(
    kafka_broker: Broker,
) -> None:
    settings = kafka_broker.settings()
    first, *rest = values = [job() for _ in range(6)]
    produce(kafka_broker, *values)
    release = asyncio.Event()
    done: list[bytes] = []

    async def handle(message: Message) -> None:
        if message.value() == first:
            await release.wait()
        done.append(message.value() or b"")

    async with running_loop(settings, handle, concurrency=3) as running:
        await running.until(lambda: len(done) == 5)
        await asyncio.sleep(2.5)  # more than the auto-commit interval
        # Five of six are done, but the first is not: a crash now must redo it, so the
        # group may not have moved past it.
        assert sum(committed(settings, "workers").values()) == 0
        release.set()
        await running.until(lambda: len(done) == 6)
    assert sorted(done) == sorted(values)
    assert set(rest) <= set(done)
    assert sum(committed(settings, "workers").values()) == 6


async def test_a_poison_message_among_concurrent_ones_goes_alone_to_the_dlq(
    kafka_broker: Broker,
) -> None:
    settings = kafka_broker.settings()
    good = [job() for _ in range(8)]
    produce(kafka_broker, *good[:4], b"not a job", *good[4:])
    done: list[bytes] = []
    dead: list[Failure] = []

    async def handle(message: Message) -> None:
        if message.value() == b"not a job":
            raise PoisonMessage("not a job")
        await asyncio.sleep(0.2)
        done.append(message.value() or b"")

    async with running_loop(settings, handle, concurrency=4, dead=dead) as running:
        await running.until(lambda: len(done) == 8 and len(dead) == 1)
    assert sorted(done) == sorted(good)
    assert [failure.error_class for failure in dead] == ["PoisonMessage"]
    records = read_dead_letters(settings, f"{TOPIC}.dlq")
    assert [record.value for record in records] == [b"not a job"]
    (record,) = records  # with its story, as a message handled alone would have it
    assert record.key == b"course-1"
    assert record.headers["dlq.original.topic"] == TOPIC
    assert record.headers["dlq.original.offset"] == "4"  # the fifth of its partition
    assert record.partition == int(record.headers["dlq.original.partition"])
    assert record.headers["dlq.error.class"] == "PoisonMessage"
    assert record.headers["dlq.attempts"] == "1"  # never retried
    assert record.headers["trace"] == "t-1"
    assert sum(committed(settings, "workers").values()) == 9


async def test_stop_drains_every_job_in_flight_and_commits_them(kafka_broker: Broker) -> None:
    settings = kafka_broker.settings()
    values = [job() for _ in range(5)]
    produce(kafka_broker, *values)
    flight, done = InFlight(), list[bytes]()

    async def handle(message: Message) -> None:
        with flight:
            await asyncio.sleep(1.5)
        done.append(message.value() or b"")

    async with running_loop(settings, handle, concurrency=8) as running:
        await running.until(lambda: flight.now == 5)
        await running.finish()  # SIGTERM: no new job; the five running ones finish
    assert sorted(done) == sorted(values)
    assert sum(committed(settings, "workers").values()) == 5


async def test_a_member_joining_mid_flight_loses_nothing(kafka_broker: Broker) -> None:
    settings = kafka_broker.settings()
    overrides = {"enable.auto.commit": False}  # the commit on revoke must suffice
    produced = [job() for _ in range(30)]
    for index, value in enumerate(produced):
        produce(kafka_broker, value, key=b"k", partition=index % 3)
    seen: dict[str, list[bytes]] = {"first": [], "second": []}

    def handler(member: str) -> Callable[[Message], Awaitable[None]]:
        async def handle(message: Message) -> None:
            await asyncio.sleep(0.4)
            seen[member].append(message.value() or b"")

        return handle

    def all_seen() -> bool:
        return set(seen["first"]) | set(seen["second"]) >= set(produced)

    async with running_loop(
        settings, handler("first"), overrides=overrides, concurrency=6
    ) as first:
        await first.until(lambda: len(seen["first"]) >= 3)
        async with running_loop(
            settings, handler("second"), overrides=overrides, concurrency=6
        ) as second:
            await second.until(all_seen, within=60)
    everything = Counter(seen["first"] + seen["second"])
    assert set(everything) == set(produced)  # none lost
    # The revoked partitions' running jobs finished before the commit: none is redone.
    assert [value for value, times in everything.items() if times > 1] == []


async def test_a_revoke_mid_flight_commits_only_up_to_the_lowest_unfinished_offset(
    kafka_broker: Broker,
) -> None:
    settings = kafka_broker.settings()
    overrides = {"enable.auto.commit": False}  # only the commit on revoke may commit
    for partition in range(3):
        for _ in range(4):
            produce(kafka_broker, job(), key=b"k", partition=partition)
    release = asyncio.Event()  # the stuck messages finish only when the test ends
    done: list[tuple[int, int]] = []
    second_saw: dict[int, list[int]] = {}

    async def first_handle(message: Message) -> None:
        if message.offset() == 1:  # the second message of every partition is stuck
            await release.wait()
        done.append((message.partition() or 0, message.offset() or 0))

    async def second_handle(message: Message) -> None:
        second_saw.setdefault(message.partition() or 0, []).append(message.offset() or 0)
        await release.wait()  # the newcomer finishes nothing: it commits nothing either

    async with running_loop(
        settings, first_handle, overrides=overrides, concurrency=8, revoke_grace=1.0
    ) as first:
        # Offsets 0, 2 and 3 of each partition are done, offset 1 is still running.
        await first.until(lambda: len(done) == 9)
        async with running_loop(
            settings, second_handle, overrides=overrides, concurrency=8
        ) as second:
            with anyio.fail_after(60):  # the first member's commit on revoke
                while True:
                    offsets = await asyncio.to_thread(committed, settings, "workers")
                    if any(offsets.values()):
                        break
                    await asyncio.sleep(0.2)
            # Committed at the stuck message, not past the ones finished after it.
            assert set(offsets.values()) <= {0, 1}, offsets
            await second.until(lambda: bool(second_saw), within=60)
            taken_over = set(second_saw)
            release.set()
    # Their new owner starts at the stuck message: nothing unfinished is skipped.
    assert {partition: offsets[partition] for partition in taken_over} == dict.fromkeys(
        taken_over, 1
    )
    assert {second_saw[partition][0] for partition in taken_over} == {1}
