"""Inspect and replay dead-letter topics (`eduscale dlq list|show|replay`).

Reading never joins a consumer group that commits: the inspector assigns every partition
from its low watermark to its high one. Replays go back to the original topic with the
original key and headers (without the `dlq.*` ones, plus `dlq.replayed.from`), wait for
the broker's acknowledgement, and are then recorded as offsets of the
`eduscale-dlq-replay` group, so `replay --all` replays only what was not replayed
before. Processing a replayed message is safe twice over: the workers are idempotent.
"""

from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from services.messaging.dead_letters import strip_dlq_headers
from services.messaging.settings import KafkaSettings, consumer_config, producer_config

__all__ = ["DeadLetter", "ReplayError", "read_dead_letters", "replay", "replayed_up_to"]

REPLAY_GROUP = "eduscale-dlq-replay"
_TIMEOUT = 10.0


class ReplayError(RuntimeError):
    """A replay could not be confirmed by the broker."""


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def position(self) -> str:
        """`partition:offset`, as the command line names a record."""
        return f"{self.partition}:{self.offset}"

    @property
    def original_topic(self) -> str:
        """Where the message came from (the DLQ's name without `.dlq` if no header)."""
        return self.headers.get("dlq.original.topic") or self.topic.removesuffix(".dlq")


def _consumer(settings: KafkaSettings, group: str) -> Consumer:
    config = consumer_config(settings, group=group, client_id="eduscale-dlq")
    config["enable.auto.commit"] = False
    return Consumer(config)


def read_dead_letters(settings: KafkaSettings, dlq_topic: str) -> list[DeadLetter]:
    """Every record of `dlq_topic`, in partition and offset order."""
    consumer = _consumer(settings, "eduscale-dlq-inspector")
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
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


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


def replayed_up_to(
    settings: KafkaSettings, dlq_topic: str, partitions: list[int]
) -> dict[int, int]:
    """Per partition, the first offset not yet replayed (0 when none was)."""
    consumer = _consumer(settings, REPLAY_GROUP)
    try:
        committed = consumer.committed(
            [TopicPartition(dlq_topic, p) for p in partitions], timeout=_TIMEOUT
        )
        return {tp.partition: max(tp.offset, 0) for tp in committed}
    finally:
        consumer.close()


def replay(settings: KafkaSettings, records: list[DeadLetter]) -> None:
    """Publish `records` back to their original topics and record them as replayed."""
    if not records:
        return
    producer = Producer(producer_config(settings, client_id="eduscale-dlq-replay"))
    failures: list[str] = []
    for record in records:
        headers = strip_dlq_headers(list(record.headers.items()))
        headers.append(("dlq.replayed.from", f"{record.topic}:{record.position}"))
        producer.produce(
            record.original_topic,
            key=record.key,
            value=record.value,
            headers=headers,
            on_delivery=lambda error, _m: failures.append(error.str()) if error else None,
        )
    if producer.flush(_TIMEOUT) or failures:
        raise ReplayError(f"replay not confirmed by the broker: {failures[:1] or 'timeout'}")
    consumer = _consumer(settings, REPLAY_GROUP)
    try:
        last: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            last[key] = max(last.get(key, -1), record.offset)
        consumer.commit(
            offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()
