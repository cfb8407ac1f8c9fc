"""The sink: `analytics.events` into ClickHouse, in batches, at least once, no double counts.

A batch is up to `ANALYTICS_BATCH_SIZE` messages or whatever arrived within
`ANALYTICS_BATCH_MAX_WAIT_MS` of its first one. For each batch, in this order:

1. decode every message; an undecodable one is set aside for the dead-letter topic;
2. drop repeated event ids within the batch, then look the rest up in `events` (by
   primary key: course, time range, ids) and drop those already stored. This is what
   keeps the materialized daily aggregates exact: a redelivered batch (the sink died
   after its insert but before its offsets were committed) inserts nothing twice;
3. insert the remaining rows in ONE insert;
4. publish the undecodable messages to `analytics.events.dlq` (headers say why);
5. only then store the offsets (committed in the background, and synchronously on a
   revoke).

If the insert or a dead-letter publish fails, nothing is stored: the sink seeks back to
the batch's first offsets, waits (jittered backoff, up to 30 s) and does the batch again.
Only a partition's owner inserts its messages: when partitions are revoked, messages of
theirs still waiting in the batch are let go for the new owner. (A sink that lost its
partitions to a session timeout while inserting could still race the new owner; the
`events` table, a ReplacingMergeTree, collapses such a duplicate, and the README says how
to rebuild the daily view from it.)
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import msgspec
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from contracts.topics import ANALYTICS_EVENTS
from services.analytics.events import Event, QuizAttempted, decode_event
from services.analytics.schema import NO_USER
from services.analytics.store import AnalyticsStore, EventRow, StoreUnavailable
from services.runtime.kafka.consumer import RetryPolicy, commit_on_revoke
from services.runtime.kafka.dead_letters import DeadLetterError, Failure, publish_dead_letter
from services.runtime.kafka.envelope import PoisonMessage

__all__ = ["BatchSink", "row_of"]

_log = structlog.get_logger("eduscale.analytics.sink")
_POLL_SECONDS = 0.5
_DLQ_TIMEOUT_SECONDS = 10.0
_NO_USER = uuid.UUID(NO_USER)
_MS = timedelta(milliseconds=1)
_RETRY = RetryPolicy(max_delay=30.0)


def row_of(event: Event) -> EventRow:
    """The `events` row of an event (anonymous users are the nil UUID)."""
    return EventRow(
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        course_id=event.course_id,
        user_id=event.user_id or _NO_USER,
        kind=str(type(event).__struct_config__.tag),
        score=event.fraction if isinstance(event, QuizAttempted) else None,
        props=msgspec.json.encode(event.props).decode(),
        schema_version=event.schema_version,
    )


class BatchSink:
    """Consume `analytics.events` in batches into the store until `stop` is set."""

    def __init__(
        self,
        consumer: Consumer,
        dlq_producer: Producer,
        store: AnalyticsStore,
        *,
        batch_size: int,
        max_wait_seconds: float,
        stop: asyncio.Event,
        topic: str = ANALYTICS_EVENTS.name,
        retry: RetryPolicy = _RETRY,
    ) -> None:
        self._consumer = consumer
        self._producer = dlq_producer
        self._store = store
        self._batch_size = batch_size
        self._max_wait = max_wait_seconds
        self._stop = stop
        self._topic = topic
        self._retry = retry
        self._pending: list[Message] = []
        self._processing = 0
        self._failures = 0
        self.batches = 0
        self.inserted = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.running = False

    @property
    def in_flight(self) -> int:
        """Events taken from the broker and not yet stored (the batch filling or writing)."""
        return len(self._pending) + self._processing

    def healthy(self) -> bool:
        """Ready while consuming and the last batch did not fail."""
        return self.running and self._failures == 0

    async def run(self) -> None:
        """Consume, insert and store offsets batch by batch; close the consumer at the end."""
        self._consumer.subscribe(
            [self._topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )
        self.running = True
        try:
            while not self._stop.is_set():
                batch = await anyio.to_thread.run_sync(self._collect)
                if batch:
                    self._processing = len(batch)
                    try:
                        await self._process(batch)
                    finally:
                        self._processing = 0
        finally:
            self.running = False
            await anyio.to_thread.run_sync(self._consumer.close)
            _log.info(
                "sink_stopped",
                batches=self.batches,
                inserted=self.inserted,
                duplicates=self.duplicates,
                dead_lettered=self.dead_lettered,
            )

    def _collect(self) -> list[Message]:
        """Up to a batch, waiting at most the max wait after the first message (thread)."""
        self._pending = []
        deadline: float | None = None
        while len(self._pending) < self._batch_size and not self._stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            wait = _POLL_SECONDS if deadline is None else min(_POLL_SECONDS, deadline - now)
            messages = self._consumer.consume(
                num_messages=self._batch_size - len(self._pending), timeout=wait
            )
            for message in messages:
                error = message.error()
                if error is None:
                    self._pending.append(message)
                elif error.fatal():
                    raise KafkaException(error)
                elif error.code() != KafkaError._PARTITION_EOF:  # noqa: SLF001 - public constant
                    _log.warning("consumer_error", error=error.str())
            if self._pending and deadline is None:
                deadline = time.monotonic() + self._max_wait
        batch, self._pending = self._pending, []
        return batch

    async def _process(self, batch: list[Message]) -> None:
        rows: dict[uuid.UUID, EventRow] = {}
        poison: list[tuple[Message, Failure]] = []
        for message in batch:
            try:
                row = row_of(decode_event(message.value()))
            except PoisonMessage as undecodable:
                poison.append((message, Failure.of(undecodable, 1, datetime.now(UTC))))
                continue
            rows.setdefault(row.event_id, row)
        try:
            fresh = await self._not_stored(list(rows.values()))
            await self._store.insert(fresh)
            for message, failure in poison:
                await anyio.to_thread.run_sync(self._dead_letter, message, failure)
        except (StoreUnavailable, DeadLetterError) as error:
            self._failures += 1
            delay = self._retry.delay(min(self._failures, 10))
            _log.error("batch_failed", error=str(error), retry_in=round(delay, 2))
            self._rewind(batch)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            return
        self._failures = 0
        self._store_offsets(batch)
        self.batches += 1
        self.inserted += len(fresh)
        self.duplicates += len(batch) - len(poison) - len(fresh)
        self.dead_lettered += len(poison)
        for message, failure in poison:
            _log.warning(
                "dead_lettered",
                partition=message.partition(),
                offset=message.offset(),
                error=failure.message,
            )

    def _dead_letter(self, message: Message, failure: Failure) -> None:
        publish_dead_letter(self._producer, message, failure, timeout=_DLQ_TIMEOUT_SECONDS)

    async def _not_stored(self, rows: list[EventRow]) -> list[EventRow]:
        """`rows` without the event ids `events` already has (a redelivery's)."""
        if not rows:
            return []
        found = await self._store.query(
            f"SELECT toString(event_id) AS stored_id FROM {self._store.schema.events}"  # noqa: S608
            " WHERE course_id IN {courses:Array(UUID)}"
            " AND occurred_at >= {low:DateTime64(3, 'UTC')}"
            " AND occurred_at <= {high:DateTime64(3, 'UTC')}"
            " AND event_id IN {ids:Array(UUID)}",
            {
                "courses": sorted({row.course_id for row in rows}),
                "low": min(row.occurred_at for row in rows) - _MS,
                "high": max(row.occurred_at for row in rows) + _MS,
                "ids": [row.event_id for row in rows],
            },
        )
        stored = {uuid.UUID(str(item["stored_id"])) for item in found}
        return [row for row in rows if row.event_id not in stored]

    def _store_offsets(self, batch: list[Message]) -> None:
        self._consumer.store_offsets(offsets=_next_offsets(batch, max))

    def _rewind(self, batch: list[Message]) -> None:
        for position in _next_offsets(batch, min, after=False):
            with contextlib.suppress(KafkaException):  # revoked meanwhile: the owner reads it
                self._consumer.seek(position)

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        _log.info("partitions_assigned", partitions=[p.partition for p in partitions])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self._pending = [m for m in self._pending if (m.topic(), m.partition()) not in gone]
        commit_on_revoke(consumer, partitions)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self._pending = [m for m in self._pending if (m.topic(), m.partition()) not in gone]
        _log.warning("partitions_lost", partitions=[p.partition for p in partitions])


def _next_offsets(
    batch: list[Message], pick: Callable[[int, int], int], *, after: bool = True
) -> list[TopicPartition]:
    """Per partition of `batch`, the picked offset (+1 when storing what comes next)."""
    chosen: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        chosen[key] = pick(chosen.get(key, offset), offset)
    return [
        TopicPartition(topic, partition, offset + (1 if after else 0))
        for (topic, partition), offset in chosen.items()
    ]
