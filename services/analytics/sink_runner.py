"""The sink with its consumer and dead-letter producer: in its own worker, or inside another.

`eduscale worker analytics` (`services.analytics_sink.worker`) runs `running_sink` as the
whole process. With the embedded store only one process may open its directory, and the
Course service, which reads the reports, is that process: it runs the same sink in the
background (`local_sink`).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio.to_thread
from confluent_kafka import Consumer, Producer

from contracts.topics import ANALYTICS_EVENTS
from services.analytics.settings import AnalyticsSettings
from services.analytics.sink import BatchSink
from services.analytics.store import AnalyticsStore
from services.runtime.consumer_metrics import observing_consumer
from services.runtime.kafka.settings import KafkaSettings, consumer_config, producer_config

__all__ = ["SINK_GROUP", "local_sink", "running_sink"]

SINK_GROUP = "analytics-sink"


@contextlib.asynccontextmanager
async def running_sink(
    analytics: AnalyticsSettings,
    kafka: KafkaSettings,
    store: AnalyticsStore,
    stop: asyncio.Event,
    *,
    group: str = SINK_GROUP,
) -> AsyncIterator[BatchSink]:
    """A sink over `store`, with its consumer and dead-letter producer; closed at the end."""
    dlq_producer = Producer(producer_config(kafka, client_id=f"{group}-dlq"))
    consumer = Consumer(consumer_config(kafka, group=group, client_id=group))
    sink = BatchSink(
        consumer,
        dlq_producer,
        store,
        batch_size=analytics.batch_size,
        max_wait_seconds=analytics.batch_max_wait_ms / 1000,
        stop=stop,
    )
    try:
        # Lag, events in flight and dead letters on /metrics, as the workers serve them.
        async with observing_consumer(sink, consumer, topic=ANALYTICS_EVENTS.name, group=group):
            yield sink
    finally:
        await anyio.to_thread.run_sync(lambda: dlq_producer.flush(5))


@contextlib.asynccontextmanager
async def local_sink(
    analytics: AnalyticsSettings, kafka: KafkaSettings, store: AnalyticsStore
) -> AsyncIterator[BatchSink]:
    """The sink as a background task of the block (the Course service with chDB)."""
    stop = asyncio.Event()
    group = kafka.consumer_group or SINK_GROUP
    async with running_sink(analytics, kafka, store, stop, group=group) as sink:
        task = asyncio.create_task(sink.run(), name="analytics-sink")
        try:
            yield sink
        finally:
            stop.set()
            await task
