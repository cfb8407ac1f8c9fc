"""What the emitter's hand-over does: builds views off the request, waits for a full producer."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import anyio
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from kafka_broker import Broker

from contracts.topics import ANALYTICS_EVENTS
from services.analytics.emitter import EventEmitter
from services.analytics.events import CourseViewed, decode_event
from services.analytics.settings import AnalyticsSettings

pytestmark = [pytest.mark.anyio, pytest.mark.server]


def _events_of(broker: Broker, course_id: uuid.UUID, expected: int) -> list[CourseViewed]:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    topic = consumer.list_topics(ANALYTICS_EVENTS.name, timeout=10).topics[ANALYTICS_EVENTS.name]
    consumer.assign(
        [TopicPartition(ANALYTICS_EVENTS.name, p, OFFSET_BEGINNING) for p in topic.partitions]
    )
    found: list[CourseViewed] = []
    deadline = time.monotonic() + 30
    try:
        while len(found) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            event = decode_event(message.value())
            if isinstance(event, CourseViewed) and event.course_id == course_id:
                found.append(event)
    finally:
        consumer.close()
    return found


async def test_a_view_keeps_the_time_it_happened_not_the_time_it_was_sent(
    kafka_broker: Broker,
) -> None:
    course_id, viewer = uuid.uuid4(), uuid.uuid4()
    emitter = EventEmitter(AnalyticsSettings(), kafka_broker.settings(), client_id="test")
    before = datetime.now(UTC)
    emitter.emit_view(viewer, course_id)
    emitter.emit_view(None, course_id)
    viewed = datetime.now(UTC)
    await anyio.sleep(0.5)  # the views wait in the buffer: the emitter is not running yet
    async with emitter.running():
        with anyio.fail_after(30):
            while emitter.stats().delivered < 2:  # noqa: ASYNC110 - its own counter
                await anyio.sleep(0.05)
    events = await anyio.to_thread.run_sync(_events_of, kafka_broker, course_id, 2)

    assert sorted(str(event.user_id) for event in events) == sorted([str(viewer), "None"])
    assert all(before <= event.occurred_at <= viewed for event in events)
    assert len({event.event_id for event in events}) == 2
    assert all(event.event_id.version == 4 for event in events)


async def test_a_full_producer_queue_leaves_the_rest_in_the_buffer_and_loses_nothing(
    kafka_broker: Broker,
) -> None:
    # The producer's queue holds `buffer_size` messages. With the broker not answering it
    # fills, and the next events wait in the buffer (dropped there, they were lost).
    course_id = uuid.uuid4()
    settings = AnalyticsSettings(buffer_size=100, flush_interval_ms=10)
    kafka = kafka_broker.settings(delivery_timeout_ms=60_000)
    emitter = EventEmitter(settings, kafka, client_id="test")
    async with emitter.running():
        kafka_broker.outage()
        try:
            for _ in range(3):
                for _ in range(50):
                    emitter.emit_view(None, course_id)
                await anyio.sleep(0.2)  # several hand-overs: the producer's queue fills
            stuck = emitter.stats()
        finally:
            kafka_broker.recover()
        with anyio.fail_after(60):
            while (now := emitter.stats()).delivered + now.dropped < 150:  # noqa: ASYNC110 - counters
                await anyio.sleep(0.05)
    events = await anyio.to_thread.run_sync(_events_of, kafka_broker, course_id, 150)

    assert stuck.buffered == 50
    assert stuck.dropped == 0
    assert emitter.stats().dropped == 0
    assert len(events) == 150
