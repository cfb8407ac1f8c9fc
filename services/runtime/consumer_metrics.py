"""What a consumer loop shows on /metrics: in-flight jobs, dead letters and lag.

In-flight jobs and dead letters are the loop's own numbers, read when Prometheus scrapes.
The lag needs the brokers (each owned partition's high watermark minus the group's
position), so it is measured every `lag_every` seconds in a thread, never inside a scrape
and never on the event loop.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import structlog
from confluent_kafka import Consumer, KafkaException

from contracts.platform_metrics import DLQ_WRITES, WORKER_JOBS_IN_FLIGHT
from services.runtime.metrics import CONSUMER_LAG, observe_at_scrape

__all__ = ["ConsumerProgress", "consumer_lag", "observing_consumer"]

_log = structlog.get_logger("eduscale.worker")


class ConsumerProgress(Protocol):
    """What a consumer (the worker loop, the analytics sink) counts for /metrics."""

    @property
    def in_flight(self) -> int:
        """Messages taken and not yet finished."""
        ...

    @property
    def dead_lettered(self) -> int:
        """Messages it has written to the dead-letter topic."""
        ...


_LAG_EVERY_SECONDS = 10.0


def consumer_lag(consumer: Consumer, timeout: float = 5.0) -> int:
    """Records behind the partition ends over the partitions `consumer` owns (blocking)."""
    lag = 0
    partitions = consumer.assignment()
    if not partitions:
        return 0
    for position in consumer.position(partitions):
        low, high = consumer.get_watermark_offsets(position, timeout=timeout)
        if position.offset >= 0:
            lag += max(high - position.offset, 0)
        else:  # nothing consumed yet here: everything up to the end is behind
            committed = consumer.committed([position], timeout=timeout)[0].offset
            lag += max(high - max(committed, low), 0)
    return lag


async def _measure_lag(consumer: Consumer, topic: str, group: str, every: float) -> None:
    gauge = CONSUMER_LAG.labels(topic, group)
    while True:
        try:
            gauge.set(await asyncio.to_thread(consumer_lag, consumer))
        except (KafkaException, RuntimeError) as error:  # closed or brokers away: next round
            _log.debug("consumer_lag_unmeasured", error=str(error))
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def observing_consumer(
    loop: ConsumerProgress,
    consumer: Consumer,
    *,
    topic: str,
    group: str,
    lag_every: float = _LAG_EVERY_SECONDS,
) -> AsyncIterator[None]:
    """Serve `loop`'s in-flight jobs, dead letters and lag on /metrics while the block runs."""
    stops = [
        observe_at_scrape(WORKER_JOBS_IN_FLIGHT, lambda: [((topic,), loop.in_flight)]),
        observe_at_scrape(DLQ_WRITES, lambda: [((topic,), loop.dead_lettered)]),
    ]
    lag = asyncio.create_task(_measure_lag(consumer, topic, group, lag_every), name="lag")
    try:
        yield
    finally:
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag
        for stop in stops:
            stop()
