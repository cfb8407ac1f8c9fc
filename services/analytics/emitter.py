"""Emitting events without ever slowing or failing the request that emits them.

`emit()` is a bounded append to an in-memory buffer on the caller's thread: no I/O, no
lock held across anything slow, no exception. A background task hands the buffer to an
idempotent Kafka producer every `ANALYTICS_FLUSH_INTERVAL_MS`, and delivery reports come
back through the producer's callbacks. Whatever cannot travel is dropped and counted,
never retried at the request's expense:

- `dropped_buffer_full`: the buffer held `ANALYTICS_BUFFER_SIZE` events already;
- `dropped_undeliverable`: the broker did not acknowledge within
  `KAFKA_DELIVERY_TIMEOUT_MS` (it is down), or shutdown ended with events still unsent
  after `ANALYTICS_SHUTDOWN_FLUSH_SECONDS`;
- `dropped_disabled`: no broker is configured (`KAFKA_BOOTSTRAP_SERVERS` unset).

The producer's own queue has the same bound. When it is full (the broker is slow or
away), the hand-over stops and the rest waits in the buffer for the next turn instead of
being dropped, so a slow moment costs nothing until both are full: a course pod at its
~10,000 events a second rides out about two seconds of a broker not acknowledging, where
dropping at the full queue gave it one. Memory stays under two buffers' worth of events
however long the broker is away. The counters are served at `/health/analytics` by
every service that emits and logged (`analytics_events_dropped`) when they grow.

The hand-over runs on the event loop, `HAND_OVER_SLICE` events at a time with the loop's other
work in between: `produce()` and `poll(0)` never block (a full producer queue raises at
once), so nothing in it needs a thread. In a worker thread it held the GIL for a whole
buffer (thousands of events at a course pod's rate) in runs the loop waited behind; in
slices the cached course read went from 0.37 to 0.39 of the bare app and its p99 from
47.7 to 36.4 ms (docs/benchmarks.md, "Hot path").
Only the shutdown's bounded `flush()` and a fatal error's new producer, which may block,
still run in a thread.

A cached course read emits `course_viewed` through `emit_view()`, which keeps only the
facts (viewer, course, the time as a float) and leaves building the event to the
hand-over, where thousands are built in a row. Built on the request path, between
uvicorn's work and the next request's, each event cost ~8 microseconds of the pod's core
(measured in the server; ~2 in a loop of its own), about a fifth of a cached read's CPU
(docs/benchmarks.md, "Hot path"). The event is the same: same kind, fields and time, and
a random id, which needs only to be unique.

Events carry no key. Nothing downstream needs a course's events in one partition (the
sink deduplicates by event id, whatever partition brought it), and without a key the
producer's sticky partitioner puts a whole hand-over into one partition's batch instead
of scattering it over all of them, one or two events each. Compressed (zstd by default,
`ANALYTICS_COMPRESSION`), such a batch is about a third of the bytes; keyed by course it
was two thirds (`python -m benchmarks --only event_wire`, docs/benchmarks.md). The
brokers are sized by those bytes.
"""

import asyncio
import collections
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import msgspec
import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from contracts.platform_metrics import ANALYTICS_EVENTS_DROPPED
from contracts.topics import ANALYTICS_EVENTS
from services.analytics.events import CourseViewed, Event, encode_event
from services.analytics.settings import AnalyticsSettings
from services.runtime.kafka.settings import KafkaSettings, producer_config
from services.runtime.metrics import observe_at_scrape

__all__ = ["HAND_OVER_SLICE", "EmitterStats", "EventEmitter"]

_log = structlog.get_logger("eduscale.analytics.emitter")
_DROP_LOG_EVERY_SECONDS = 60.0
HAND_OVER_SLICE = 256
"""Events handed over per turn of the loop: about a millisecond of work between requests."""
_View = tuple[uuid.UUID | None, uuid.UUID, float]
"""A `course_viewed` not built yet: viewer, course, `time.time()` of the view."""


class EmitterStats(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to the events this process emitted since it started."""

    enabled: bool
    """Whether a broker is configured."""
    accepted: int
    """Taken into the buffer."""
    delivered: int
    """Acknowledged by the broker."""
    dropped_buffer_full: int
    dropped_undeliverable: int
    dropped_disabled: int
    buffered: int
    """Waiting in the buffer now."""
    in_flight: int
    """Handed to the producer, not yet acknowledged."""
    buffer_size: int

    @property
    def dropped(self) -> int:
        """Every event lost, whatever the reason."""
        return self.dropped_buffer_full + self.dropped_undeliverable + self.dropped_disabled


@dataclass
class _Counters:
    accepted: int = 0
    delivered: int = 0
    dropped_buffer_full: int = 0
    dropped_undeliverable: int = 0
    dropped_disabled: int = 0


class EventEmitter:
    """The process's one way to emit analytics events (see the module docstring)."""

    def __init__(
        self,
        settings: AnalyticsSettings,
        kafka: KafkaSettings | None,
        *,
        client_id: str,
        topic: str = ANALYTICS_EVENTS.name,
    ) -> None:
        self._settings = settings
        self._kafka = kafka
        self._client_id = client_id
        self._topic = topic
        self._buffer: collections.deque[Event | _View] = collections.deque()
        self._counts = _Counters()
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._config: dict[str, Any] = {}
        self._fatal = False
        self._next_error_log = 0.0
        self._wake = asyncio.Event()
        self._last_logged_drops = 0

    @property
    def enabled(self) -> bool:
        """Whether events can leave the process at all."""
        return self._kafka is not None

    def emit(self, event: Event) -> None:
        """Buffer `event` for the broker, or drop and count it; never raises or blocks."""
        self._take(event)

    def emit_view(self, user_id: uuid.UUID | None, course_id: uuid.UUID) -> None:
        """`emit(CourseViewed(...))` for a hot read: the event is built off the request."""
        self._take((user_id, course_id, time.time()))

    def _take(self, event: Event | _View) -> None:
        if self._kafka is None:
            self._counts.dropped_disabled += 1
            return
        if len(self._buffer) >= self._settings.buffer_size:
            self._counts.dropped_buffer_full += 1
            return
        self._buffer.append(event)
        self._counts.accepted += 1
        if len(self._buffer) >= self._settings.buffer_size // 2:
            self._wake.set()  # half full: hand over now rather than at the next tick

    def stats(self) -> EmitterStats:
        """The counters, as `/health/analytics` shows them."""
        producer = self._producer
        with self._lock:
            counts = _Counters(**vars(self._counts))
        return EmitterStats(
            enabled=self.enabled,
            accepted=counts.accepted,
            delivered=counts.delivered,
            dropped_buffer_full=counts.dropped_buffer_full,
            dropped_undeliverable=counts.dropped_undeliverable,
            dropped_disabled=counts.dropped_disabled,
            buffered=len(self._buffer),
            in_flight=len(producer) if producer is not None else 0,
            buffer_size=self._settings.buffer_size,
        )

    def _drops_by_reason(self) -> list[tuple[tuple[str, ...], float]]:
        counts = self.stats()
        return [
            (("buffer_full",), counts.dropped_buffer_full),
            (("undeliverable",), counts.dropped_undeliverable),
            (("disabled",), counts.dropped_disabled),
        ]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["EventEmitter"]:
        """Run the background hand-over while the block runs; flush (bounded) at the end.

        Meanwhile the drops are served on `/metrics` (`eduscale_analytics_events_dropped`).
        """
        stop_observing = observe_at_scrape(ANALYTICS_EVENTS_DROPPED, self._drops_by_reason)
        try:
            async with self._handing_over():
                yield self
        finally:
            stop_observing()

    @contextlib.asynccontextmanager
    async def _handing_over(self) -> AsyncIterator["EventEmitter"]:
        if self._kafka is None:
            _log.info("analytics_disabled", reason="KAFKA_BOOTSTRAP_SERVERS is not set")
            yield self
            return
        config = self._config = producer_config(self._kafka, client_id=self._client_id)
        config.update(
            {
                "queue.buffering.max.messages": self._settings.buffer_size,
                "linger.ms": 50,
                "compression.type": self._settings.compression,
                "error_cb": self._on_error,
            }
        )
        self._producer = Producer(config)
        task = asyncio.create_task(self._hand_over_forever(), name="analytics-emitter")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await anyio.to_thread.run_sync(self._drain)
            self._log_drops(force=True)

    async def _hand_over_forever(self) -> None:
        interval = self._settings.flush_interval_ms / 1000
        next_log = time.monotonic() + _DROP_LOG_EVERY_SECONDS
        room = True
        while True:
            if room:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
            else:
                # A full producer gets the interval to drain: a wake-up from `emit()` (the
                # buffer half full) would only retry it once per request.
                await asyncio.sleep(interval)
            self._wake.clear()
            if self._fatal:
                await anyio.to_thread.run_sync(self._replace_producer)
            # Even when empty: it serves the delivery reports. A full producer ends the
            # turn; what is left waits in the buffer for the next.
            room = self._hand_over(HAND_OVER_SLICE)
            while room and self._buffer:
                await asyncio.sleep(0)  # the requests waiting meanwhile go first
                room = self._hand_over(HAND_OVER_SLICE)
            if time.monotonic() >= next_log:
                next_log = time.monotonic() + _DROP_LOG_EVERY_SECONDS
                self._log_drops()

    def _hand_over(self, limit: int | None = None) -> bool:
        """Move up to `limit` events (all: None) into the producer, serve delivery reports.

        False when the producer's queue was full: the event it refused is back at the
        front of the buffer, and the rest are still behind it.
        """
        if self._fatal:
            self._replace_producer()
        producer = self._producer
        assert producer is not None  # noqa: S101 - only called while running
        buffer = self._buffer
        count = len(buffer) if limit is None else min(limit, len(buffer))
        for _ in range(count):
            item = buffer.popleft()
            if isinstance(item, tuple):
                user_id, course_id, at = item
                occurred_at = datetime.fromtimestamp(at, UTC)
                event: Event = CourseViewed(
                    user_id=user_id, course_id=course_id, occurred_at=occurred_at
                )
            else:
                event = item
            try:
                producer.produce(
                    self._topic,
                    key=None,  # one batch per hand-over (module docstring)
                    value=encode_event(event),
                    on_delivery=self._on_delivery,
                )
            except BufferError:
                buffer.appendleft(event)
                producer.poll(0)
                return False
            except KafkaException:
                with self._lock:
                    self._counts.dropped_undeliverable += 1
        producer.poll(0)
        return True

    def _replace_producer(self) -> None:
        """An idempotent producer's fatal error ends it: count its queue lost, start anew."""
        old = self._producer
        self._fatal = False
        self._next_error_log = 0.0
        self._producer = Producer(self._config)
        if old is not None:
            with self._lock:
                self._counts.dropped_undeliverable += len(old)
        _log.warning("analytics_producer_replaced")

    def _drain(self) -> None:
        """Shutdown: hand over what is left and wait, bounded, for acknowledgements."""
        producer = self._producer
        assert producer is not None  # noqa: S101 - set by `running`
        deadline = time.monotonic() + self._settings.shutdown_flush_seconds
        while not self._hand_over() and time.monotonic() < deadline:
            producer.flush(min(0.1, max(0.0, deadline - time.monotonic())))  # make room
        unsent = len(self._buffer)
        self._buffer.clear()
        with self._lock:
            self._counts.dropped_undeliverable += unsent  # never reached the producer
        unsent += producer.flush(max(0.0, deadline - time.monotonic()))
        if unsent:
            # Purged messages get their delivery report (an error): counted there.
            producer.purge()
            producer.flush(0)
            _log.warning("analytics_events_unsent_at_shutdown", events=unsent)
        self._producer = None

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        with self._lock:
            if error is None:
                self._counts.delivered += 1
            else:
                self._counts.dropped_undeliverable += 1

    def _on_error(self, error: KafkaError) -> None:
        now = time.monotonic()
        if error.fatal() or now >= self._next_error_log:
            self._next_error_log = now + _DROP_LOG_EVERY_SECONDS  # a down broker repeats itself
            _log.warning("analytics_producer_error", error=error.str(), fatal=error.fatal())
        if error.fatal():
            self._fatal = True

    def _log_drops(self, *, force: bool = False) -> None:
        stats = self.stats()
        if stats.dropped != self._last_logged_drops or (force and stats.dropped):
            self._last_logged_drops = stats.dropped
            fields: dict[str, Any] = msgspec.structs.asdict(stats)
            _log.warning("analytics_events_dropped", dropped=stats.dropped, **fields)
