"""The consumer loop as a member of its group: long pauses and a second member joining."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from confluent_kafka import Message
from consumer_harness import Open, committed, job, produce, running_loop
from kafka_broker import TEST_SESSION_TIMEOUT_MS, Broker

pytestmark = pytest.mark.anyio

POLL_INTERVAL_MS = TEST_SESSION_TIMEOUT_MS + 500  # librdkafka wants no less than the session


async def test_a_breaker_open_longer_than_the_poll_interval_keeps_the_group(
    kafka_broker: Broker,
) -> None:
    settings = kafka_broker.settings(max_poll_interval_ms=POLL_INTERVAL_MS)
    first, second = job(), job()
    produce(kafka_broker, first, second)  # one key: one partition, in this order
    done: list[bytes | None] = []
    refusals = 0

    async def handle(message: Message) -> None:
        nonlocal refusals
        if refusals == 0:  # the provider is down for twice the poll interval
            refusals += 1
            raise Open(retry_after=2 * POLL_INTERVAL_MS / 1000)
        done.append(message.value())

    async with running_loop(settings, handle) as running:
        await running.until(lambda: len(done) >= 2)
    # Still a member after the pause: the message was done once, in order, and the
    # group's offset says so (an evicted consumer can store no offset, and its group
    # would hand the message out again).
    assert done == [first, second]
    assert running.loop.processed == 2
    assert sum(committed(settings, "workers").values()) == 2


async def test_a_member_joining_mid_stream_takes_over_without_loss_or_repeats(
    kafka_broker: Broker,
) -> None:
    settings = kafka_broker.settings()
    # With auto-commit on, librdkafka also commits the stored offsets of revoked partitions,
    # but asynchronously: the next owner may fetch before that commit lands. Turned off
    # here, the loop's synchronous commit on revoke is the only one, and must suffice.
    overrides = {"enable.auto.commit": False}
    produced: list[bytes] = []
    seen: dict[str, list[bytes]] = {"first": [], "second": []}

    def produce_round() -> None:
        for partition in range(3):
            value = job()
            produced.append(value)
            produce(kafka_broker, value, key=b"k", partition=partition)

    def handler(member: str) -> Callable[[Message], Awaitable[None]]:
        async def handle(message: Message) -> None:
            seen[member].append(message.value() or b"")

        return handle

    def all_seen() -> bool:
        return len(seen["first"]) + len(seen["second"]) >= len(produced)

    for _ in range(3):
        produce_round()
    async with running_loop(settings, handler("first"), overrides=overrides) as first:
        await first.until(all_seen)
        async with running_loop(settings, handler("second"), overrides=overrides) as second:
            for _ in range(40):  # keep the stream going until the newcomer has some of it
                produce_round()
                await second.until(all_seen)
                if seen["second"]:
                    break
            assert seen["second"], "the second member never got a partition"
            await second.finish()
        await first.until(all_seen)
    everything = Counter(seen["first"] + seen["second"])
    assert [value for value, times in everything.items() if times > 1] == []  # none repeated
    assert set(everything) == set(produced)  # none lost
