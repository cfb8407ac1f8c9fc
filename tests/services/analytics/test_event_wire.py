"""What the emitters put on the network: the brokers are sized by these bytes."""

from __future__ import annotations

import uuid

import anyio
import anyio.lowlevel
import pytest
from kafka_broker import Broker

from services.analytics.emitter import HAND_OVER_SLICE, EventEmitter
from services.analytics.events import CourseViewed, encode_event
from services.analytics.settings import AnalyticsSettings

pytestmark = [pytest.mark.anyio, pytest.mark.server]


async def _bytes_sent(
    broker: Broker, settings: AnalyticsSettings, events: list[CourseViewed]
) -> int:
    assert broker.relay is not None
    emitter = EventEmitter(settings, broker.settings(), client_id="test")
    before = broker.relay.bytes_to_broker
    async with emitter.running():
        for event in events:
            emitter.emit(event)
        with anyio.fail_after(30):
            while emitter.stats().delivered < len(events):  # noqa: ASYNC110 - its own counter
                await anyio.sleep(0.05)
    return broker.relay.bytes_to_broker - before


async def test_events_cross_the_network_compressed_in_shared_batches(kafka_broker: Broker) -> None:
    courses = [uuid.uuid4() for _ in range(200)]
    events = [CourseViewed(user_id=uuid.uuid4(), course_id=courses[i % 200]) for i in range(400)]
    payload = sum(len(encode_event(event)) for event in events)

    sent = await _bytes_sent(kafka_broker, AnalyticsSettings(), events)
    uncompressed = await _bytes_sent(kafka_broker, AnalyticsSettings(compression="none"), events)

    assert uncompressed > payload  # everything travelled, with its framing
    assert sent < payload / 2  # by default: a few large zstd batches, not 200 small ones


async def test_a_large_hand_over_lets_the_loop_run_between_its_slices(kafka_broker: Broker) -> None:
    # A course pod emits thousands of events between hand-overs. Handed over in one run
    # (in a thread holding the GIL, as before) the requests waited behind all of it; in
    # slices on the loop, every other task runs between two slices.
    total = 10 * HAND_OVER_SLICE
    emitter = EventEmitter(AnalyticsSettings(), kafka_broker.settings(), client_id="test")
    seen: list[int] = []
    async with emitter.running():
        for _ in range(total):
            emitter.emit(CourseViewed(user_id=None, course_id=uuid.uuid4()))
        with anyio.fail_after(30):
            while emitter.stats().delivered < total:
                seen.append(emitter.stats().buffered)
                await anyio.lowlevel.checkpoint()
    between = {buffered for buffered in seen if 0 < buffered < total}
    assert len(between) >= 3  # this task ran in the middle of the hand-over, several times
    assert all((total - buffered) % HAND_OVER_SLICE == 0 for buffered in between)  # between slices
