"""A `ConsumerLoop` on the test broker, run as a task that the test steers and stops.

The handler and the dead-letter producer are the test's; the loop, the consumer and the
broker are real. `Flaky` is transient and `Open` stands for an open breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from kafka_broker import QUIET, Broker

from contracts.topics import GENERATION_REQUESTED
from services.runtime.kafka.consumer import ConsumerLoop, RetryPolicy
from services.runtime.kafka.dead_letters import Failure
from services.runtime.kafka.envelope import GenerationRequested, encode
from services.runtime.kafka.settings import KafkaSettings, consumer_config, producer_config

TOPIC = GENERATION_REQUESTED.name
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


class Open(Exception):
    """The breaker is open for `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("open")
        self.retry_after = retry_after


class Flaky(Exception):
    """Transient in these tests."""


def job(job_id: uuid.UUID | None = None) -> bytes:
    return encode(GenerationRequested(job_id=job_id or uuid.uuid4()))


def produce(
    broker: Broker, *values: bytes, key: bytes = b"course-1", partition: int | None = None
) -> None:
    producer = Producer(producer_config(broker.settings(), client_id="test"))
    for value in values:
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        producer.produce(TOPIC, key=key, value=value, headers=[("trace", b"t-1")], **extra)
    assert producer.flush(10) == 0


def committed(settings: KafkaSettings, group: str, topic: str = TOPIC) -> dict[int, int]:
    """The group's committed offset per partition (0 where it committed nothing)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": group, "log_level": QUIET}
    )
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        return {tp.partition: max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10)}
    finally:
        consumer.close()


_FINISH_SECONDS = 60


@dataclass
class Running:
    """A consumer loop running in a task."""

    loop: ConsumerLoop
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def until(self, done: Callable[[], bool], within: float = 30) -> None:
        """Wait for `done()`; the loop's crash, if any, is raised here."""
        with anyio.fail_after(within):
            while not done():
                if self.task.done():
                    self.task.result()
                    raise AssertionError("the consumer loop ended early")
                await asyncio.sleep(0.05)

    async def finish(self) -> None:
        """Stop the loop (it closes its consumer, committing what it stored).

        A member that closes while its group rebalances (another member just left) waits
        for the round to end before it can leave and commit. On the Tansu test broker a
        round takes seconds on a quiet machine and took over 20 s on a loaded CI run, so
        the wait is generous; a loop that never stops still fails here.
        """
        self.stop.set()
        await asyncio.wait_for(self.task, _FINISH_SECONDS)


@contextlib.asynccontextmanager
async def running_loop(
    settings: KafkaSettings,
    handler: Callable[[Message], Awaitable[None]],
    *,
    group: str = "workers",
    dlq_producer: Producer | None = None,
    dead: list[Failure] | None = None,
    retry: RetryPolicy = FAST_RETRY,
    overrides: dict[str, Any] | None = None,
    concurrency: int = 1,
    ordering_key: Callable[[Message], bytes | None] | None = None,
    revoke_grace: float = 60.0,
) -> AsyncIterator[Running]:
    """Run a loop on `TOPIC` for the block; stopped (and awaited) when it ends."""
    stop = asyncio.Event()

    async def on_dead(_message: Message, failure: Failure) -> None:
        if dead is not None:
            dead.append(failure)

    config = consumer_config(settings, group=group, client_id=group)
    config.update(overrides or {})
    loop = ConsumerLoop(
        Consumer(config),
        dlq_producer or Producer(producer_config(settings, client_id="dlq")),
        TOPIC,
        handler,
        is_transient=lambda error: isinstance(error, Flaky),
        breaker_open=Open,
        on_dead_letter=on_dead,
        stop=stop,
        retry=retry,
        concurrency=concurrency,
        ordering_key=ordering_key,
        revoke_grace=revoke_grace,
    )
    running = Running(loop, asyncio.create_task(loop.run()), stop)
    try:
        yield running
    finally:
        if not running.task.done():
            await running.finish()
