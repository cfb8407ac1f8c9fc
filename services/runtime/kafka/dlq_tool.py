"""Inspect and replay dead-letter topics (`eduscale dlq list|show|replay`).

Reading never joins a consumer group: the inspector assigns every partition from its low
watermark to its high one. Replays go back to the original topic with the original key
and headers (without the `dlq.*` ones, plus `dlq.replayed.from`), and wait for the
broker's acknowledgement. Each replayed record is then marked on the dead-letter topic
itself: a marker record on the same partition whose `dlq.replay.of` header names the
replayed offset. Readers skip markers and flag the records they name, so `replay --all`
and `replay --position` never send a record twice, in any order or mix.

Why markers rather than the offsets of a replay consumer group: a committed offset
records a prefix of a partition, not a set, so replaying one record from the middle
either marks every record before it or (replayed after a later one) moves the mark back.
Commit metadata could carry the exceptions, but its size is capped and not every broker
keeps it (the test broker drops it). A marker needs no extra topic (MSK creates none on
the fly) and lives as long as the record it names: same partition, written later, same
retention.

The gap left: a replay acknowledged whose marker cannot be written is reported, and would
be offered again (as would one sent by two operators at the same moment). The workers
are idempotent, so a record processed twice does its work once.
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from services.runtime.kafka.dead_letters import strip_dlq_headers
from services.runtime.kafka.settings import KafkaSettings, consumer_config, producer_config

__all__ = ["REPLAY_MARKER", "DeadLetter", "ReplayError", "read_dead_letters", "replay"]

REPLAY_MARKER = "dlq.replay.of"
"""Header of a marker record: the offset (same partition) of the record it marks replayed."""
_REPLAYED_AT = "dlq.replayed.at"
_TIMEOUT = 10.0


class ReplayError(RuntimeError):
    """A replay was refused (already done) or not confirmed by the broker."""


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    replayed_at: str | None = None
    """When the record was replayed (ISO 8601), or None if it never was."""

    @property
    def replayed(self) -> bool:
        """Whether the record was sent back to its topic before."""
        return self.replayed_at is not None

    @property
    def position(self) -> str:
        """`partition:offset`, as the command line names a record."""
        return f"{self.partition}:{self.offset}"

    @property
    def original_topic(self) -> str:
        """Where the message came from (the DLQ's name without `.dlq` if no header)."""
        return self.headers.get("dlq.original.topic") or self.topic.removesuffix(".dlq")


def _consumer(settings: KafkaSettings) -> Consumer:
    config = consumer_config(settings, group="eduscale-dlq-inspector", client_id="eduscale-dlq")
    config["enable.auto.commit"] = False  # it assigns partitions itself and commits nothing
    return Consumer(config)


def read_dead_letters(settings: KafkaSettings, dlq_topic: str) -> list[DeadLetter]:
    """Every dead letter of `dlq_topic` (not the markers), in partition and offset order."""
    consumer = _consumer(settings)
    try:
        metadata = consumer.list_topics(dlq_topic, timeout=_TIMEOUT).topics.get(dlq_topic)
        if metadata is None or metadata.error is not None:
            raise ReplayError(f"no topic {dlq_topic} on the broker")
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(dlq_topic, partition), timeout=_TIMEOUT
            )
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(dlq_topic, partition, low))
        records: list[DeadLetter] = []
        if not starts:
            return records
        consumer.assign(starts)
        remaining = dict(ends)
        while remaining:
            message = consumer.poll(_TIMEOUT)
            if message is None:
                raise ReplayError(f"{dlq_topic}: timed out reading up to the high watermark")
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001
                    continue
                raise ReplayError(f"{dlq_topic}: {error.str()}")
            records.append(_record(message))
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset + 1 >= remaining.get(partition, 0):
                remaining.pop(partition, None)
        return _marked(records)
    finally:
        consumer.close()


def _marked(records: list[DeadLetter]) -> list[DeadLetter]:
    """The dead letters without the markers, each flagged if a marker names it."""
    replayed: dict[tuple[int, int], str] = {}
    letters: list[DeadLetter] = []
    for record in records:
        marks = record.headers.get(REPLAY_MARKER)
        if marks is None:
            letters.append(record)
        elif marks.isdigit():
            at = record.headers.get(_REPLAYED_AT, "")
            replayed.setdefault((record.partition, int(marks)), at)
    letters = [
        replace(letter, replayed_at=replayed.get((letter.partition, letter.offset)))
        for letter in letters
    ]
    return sorted(letters, key=lambda r: (r.partition, r.offset))


def _record(message: Message) -> DeadLetter:
    raw = message.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else list(raw)
    headers = {
        name: (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or ""))
        for name, value in pairs
    }
    return DeadLetter(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=headers,
    )


def replay(settings: KafkaSettings, records: list[DeadLetter]) -> None:
    """Publish each record back to its original topic, then mark it replayed.

    One record at a time, each step acknowledged before the next, so a failure leaves
    every earlier record replayed and marked, and names the one it stopped at. (One
    record per batch is also the only kind whose high watermark the test broker, Tansu,
    reports right.) Raises `ReplayError` for a record already replayed (then nothing is
    sent) or a step the broker does not confirm.
    """
    if done := [r.position for r in records if r.replayed]:
        raise ReplayError(f"already replayed, not sent again: {', '.join(done)}")
    if not records:
        return
    producer = Producer(producer_config(settings, client_id="eduscale-dlq-replay"))
    for number, record in enumerate(records):
        headers = strip_dlq_headers(list(record.headers.items()))
        headers.append(("dlq.replayed.from", f"{record.topic}:{record.position}"))
        failure = _deliver(
            producer, record.original_topic, key=record.key, value=record.value, headers=headers
        )
        if failure is not None:
            raise ReplayError(
                f"replay of {record.position} not confirmed by the broker ({failure}); "
                f"{number} message(s) replayed before it"
            )
        marker = [
            (REPLAY_MARKER, str(record.offset)),
            (_REPLAYED_AT, datetime.now(UTC).isoformat()),
        ]
        failure = _deliver(producer, record.topic, partition=record.partition, headers=marker)
        if failure is not None:
            raise ReplayError(
                f"{record.position} was replayed but not recorded as replayed ({failure}): "
                f"a later replay would offer it again"
            )


def _deliver(producer: Producer, topic: str, **record: Any) -> str | None:
    """Produce one record and wait for the broker; None, or why it was not confirmed."""
    failures: list[str] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error.str())

    try:
        producer.produce(topic, on_delivery=on_delivery, **record)
    except (BufferError, KafkaException) as error:
        return str(error)
    if producer.flush(_TIMEOUT):
        return f"no acknowledgement within {_TIMEOUT:g} s"
    return failures[0] if failures else None
