"""Bytes on the wire per learning event, as one emitting pod sends them at peak.

The brokers are sized by the bytes written to them (`infra/capacity/data_tiers.py`), and
learning events are most of those bytes. What a batch compresses to depends on how many
events share it, so this is measured with the real `EventEmitter` (its hand-over interval,
linger and partitioning) producing at one pod's peak rate into a topic of prod's
partition count, through a relay that counts the bytes the producer sends to Tansu:

* `analytics_event_wire_bytes`: bytes sent per event with `ANALYTICS_COMPRESSION`'s
  default (zstd);
* `analytics_event_wire_bytes_uncompressed` (reference): the same stream, uncompressed.

The stream, stated here and not tuned: `RATE` events/s for `SECONDS` s, half course views,
45 % lesson reads, 5 % quiz attempts (the mix of the ClickHouse storage measurement in
docs/capacity.md), from random learners over 2,000 courses of 10 lessons. The bytes
include every request's framing, metadata calls and acknowledgements' requests: what
crosses the network, not just the payload.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.figures import Figure
from benchmarks.harness import Broker
from services.analytics.emitter import EventEmitter
from services.analytics.events import (
    CourseViewed,
    Event,
    LessonRead,
    LessonReadProps,
    QuizAttempted,
    QuizAttemptedProps,
)
from services.analytics.settings import AnalyticsSettings, Compression
from services.runtime.kafka.settings import KafkaSettings

RATE = 400
"""Events/s of one emitting pod at peak: the plan at a million users writes ~68k events/s
from ~175 Course pods (docs/capacity.md, "The USD 20,000 goal")."""
PARTITIONS = 48
"""Prod's partitions per topic (`eduscale:kafka.partitions` in Pulumi.prod.yaml)."""
SECONDS = 20
COURSES = 2_000
LESSONS_PER_COURSE = 10
COURSE_VIEWS = 0.5
"""Share of course views; lesson reads take the next `LESSON_READS`, quiz attempts the rest."""
LESSON_READS = 0.45


def _stream(count: int, seed: int) -> list[Event]:
    """The benchmark's events; the same list for both codecs."""
    draw = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    courses = [uuid.UUID(int=draw.getrandbits(128)) for _ in range(COURSES)]
    lessons = {
        course: [uuid.UUID(int=draw.getrandbits(128)) for _ in range(LESSONS_PER_COURSE)]
        for course in courses
    }
    events: list[Event] = []
    for _ in range(count):
        course, user = draw.choice(courses), uuid.UUID(int=draw.getrandbits(128))
        kind = draw.random()
        if kind < COURSE_VIEWS:
            events.append(CourseViewed(user_id=user, course_id=course))
        elif kind < COURSE_VIEWS + LESSON_READS:
            lesson = draw.choice(lessons[course])
            events.append(
                LessonRead(user_id=user, course_id=course, props=LessonReadProps(lesson_id=lesson))
            )
        else:
            total = draw.randint(3, 10)
            props = QuizAttemptedProps(
                quiz_id=uuid.uuid4(),
                attempt_id=uuid.uuid4(),
                score=draw.randint(0, total),
                total=total,
            )
            events.append(QuizAttempted(user_id=user, course_id=course, props=props))
    return events


async def _emit(kafka: KafkaSettings, topic: str, codec: Compression, events: list[Event]) -> None:
    """Emit `events` at `RATE` per second through a running emitter; all must arrive."""
    settings = AnalyticsSettings(compression=codec)
    emitter = EventEmitter(settings, kafka, client_id="bench", topic=topic)
    tick = 0.05
    per_tick = round(RATE * tick)
    async with emitter.running():
        started = time.monotonic()
        for index in range(0, len(events), per_tick):
            for event in events[index : index + per_tick]:
                emitter.emit(event)
            delay = started + (index // per_tick + 1) * tick - time.monotonic()
            await asyncio.sleep(max(delay, 0))
    stats = emitter.stats()
    if stats.delivered != len(events):
        raise RuntimeError(f"{codec}: {stats.delivered} of {len(events)} events delivered: {stats}")


def _bytes_per_event(broker: Broker, codec: Compression, events: list[Event]) -> float:
    topic = f"bench.wire.{codec}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(10)
    kafka = broker.settings(delivery_timeout_ms=30_000)
    assert broker.relay is not None  # noqa: S101 - started above
    before = broker.relay.bytes_to_broker
    asyncio.run(_emit(kafka, topic, codec, events))
    return (broker.relay.bytes_to_broker - before) / len(events)


def run(quick: bool) -> list[Figure]:
    """The same stream twice, uncompressed then as the emitter sends it by default."""
    seconds = 4 if quick else SECONDS
    events = _stream(RATE * seconds, seed=20261206)
    default: Compression = AnalyticsSettings().compression
    broker = Broker()
    broker.start()
    try:
        print(f"  {len(events):,} events at {RATE}/s, uncompressed...", file=sys.stderr)
        plain = _bytes_per_event(broker, "none", events)
        print(f"  the same, {default}...", file=sys.stderr)
        compressed = _bytes_per_event(broker, default, events)
    finally:
        broker.stop()
    shape = f"{RATE} events/s, {PARTITIONS} partitions"
    return [
        Figure(
            "analytics_event_wire_bytes_uncompressed",
            f"bytes sent per learning event, uncompressed ({shape})",
            plain,
            "B/event",
        ),
        Figure(
            "analytics_event_wire_bytes",
            f"bytes sent per learning event, {default} ({shape})",
            compressed,
            "B/event",
            reference="analytics_event_wire_bytes_uncompressed",
        ),
    ]
