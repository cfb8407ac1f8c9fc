"""The consumer loop against a real Kafka-protocol broker: at least once, retries, DLQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from confluent_kafka import Message
from consumer_harness import FAST_RETRY, TOPIC, Flaky, Open, job, produce, running_loop
from kafka_broker import Broker

from services.runtime.kafka.consumer import ConsumerLoop, RetryPolicy
from services.runtime.kafka.dead_letters import Failure
from services.runtime.kafka.dlq_tool import read_dead_letters, replay
from services.runtime.kafka.envelope import (
    PoisonMessage,
    decode_generation,
)

pytestmark = pytest.mark.anyio


async def consume(
    broker: Broker,
    handler: Callable[[Message], Awaitable[None]],
    *,
    until: Callable[[ConsumerLoop], bool],
    group: str = "workers",
    retry: RetryPolicy = FAST_RETRY,
    dead: list[Failure] | None = None,
) -> ConsumerLoop:
    """Run a loop until `until(loop)` (or it ends), stop it, and raise its crash if any."""
    async with running_loop(
        broker.settings(), handler, group=group, retry=retry, dead=dead
    ) as running:
        for _ in range(600):
            if until(running.loop) or running.task.done():
                break
            await asyncio.sleep(0.05)
    running.task.result()
    return running.loop


async def test_done_messages_are_not_delivered_again(kafka_broker: Broker) -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    produce(kafka_broker, *(job(i) for i in ids))
    seen: list[uuid.UUID] = []

    async def handle(message: Message) -> None:
        seen.append(decode_generation(message.value()).job_id)

    await consume(kafka_broker, handle, until=lambda loop: loop.processed == 4)
    assert sorted(seen) == sorted(ids)
    produce(kafka_broker, job(extra := uuid.uuid4()))
    await consume(kafka_broker, handle, until=lambda loop: loop.processed == 1)
    assert seen[4:] == [extra]  # the group resumed after its committed offsets


async def test_poison_goes_to_the_dlq_at_once_with_its_story(kafka_broker: Broker) -> None:
    produce(kafka_broker, b"not json at all", key=b"course-9")
    calls = 0

    async def handle(message: Message) -> None:
        nonlocal calls
        calls += 1
        decode_generation(message.value())

    dead: list[Failure] = []
    loop = await consume(
        kafka_broker, handle, until=lambda loop: loop.dead_lettered == 1, dead=dead
    )
    assert calls == 1  # never retried
    assert dead[0].error_class == "PoisonMessage"
    (record,) = read_dead_letters(kafka_broker.settings(), f"{TOPIC}.dlq")
    assert record.key == b"course-9"
    assert record.value == b"not json at all"
    headers = record.headers
    assert headers["dlq.original.topic"] == TOPIC
    assert headers["dlq.original.offset"] == "0"
    assert record.partition == int(headers["dlq.original.partition"])  # same partition
    assert headers["dlq.error.class"] == "PoisonMessage"
    assert "not JSON" in headers["dlq.error.message"]
    assert headers["dlq.attempts"] == "1"
    assert headers["trace"] == "t-1"  # the original headers travel along
    assert headers["dlq.first.failure"] <= headers["dlq.last.failure"]
    assert loop.processed == 0


async def test_transient_failures_are_retried_then_dead_lettered(kafka_broker: Broker) -> None:
    produce(kafka_broker, job(), job())
    attempts: dict[bytes, int] = {}

    async def handle(message: Message) -> None:
        value = message.value() or b""
        attempts[value] = attempts.get(value, 0) + 1
        always_failing = next(iter(attempts)) == value
        if always_failing or attempts[value] <= 2:
            raise Flaky("provider down")

    loop = await consume(
        kafka_broker, handle, until=lambda loop: loop.processed + loop.dead_lettered == 2
    )
    first, second = attempts.values()
    assert first == 3  # max_attempts, then the DLQ
    assert second == 3  # failed twice, succeeded on the third
    assert (loop.dead_lettered, loop.processed) == (1, 1)
    (record,) = read_dead_letters(kafka_broker.settings(), f"{TOPIC}.dlq")
    assert record.headers["dlq.attempts"] == "3"
    assert record.headers["dlq.error.class"] == "Flaky"


async def test_an_open_breaker_pauses_without_burning_the_message(kafka_broker: Broker) -> None:
    produce(kafka_broker, job())
    calls = 0

    async def handle(_message: Message) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise Open(retry_after=0.05)

    loop = await consume(kafka_broker, handle, until=lambda loop: loop.processed == 1)
    assert calls == 4  # three fast refusals, then done; never dead-lettered
    assert loop.dead_lettered == 0


async def test_replay_sends_dead_letters_back_once(kafka_broker: Broker) -> None:
    produce(kafka_broker, b"{}")  # poison: no schema_version
    dead: list[Failure] = []

    async def reject(message: Message) -> None:
        decode_generation(message.value())

    await consume(kafka_broker, reject, until=lambda loop: loop.dead_lettered == 1, dead=dead)
    records = read_dead_letters(kafka_broker.settings(), f"{TOPIC}.dlq")
    replay(kafka_broker.settings(), records)
    received: list[dict[str, bytes]] = []

    async def accept(message: Message) -> None:
        received.append(dict(message.headers() or []))  # type: ignore[arg-type]

    await consume(kafka_broker, accept, until=lambda loop: loop.processed == 1)
    assert len(received) == 1
    assert received[0]["dlq.replayed.from"] == f"{TOPIC}.dlq:{records[0].position}".encode()
    assert not any(name.startswith("dlq.error") for name in received[0])


def test_unknown_versions_are_poison() -> None:
    with pytest.raises(PoisonMessage, match="schema_version 2"):
        decode_generation(b'{"schema_version": 2, "job_id": "x"}')
    with pytest.raises(PoisonMessage, match="empty"):
        decode_generation(None)
