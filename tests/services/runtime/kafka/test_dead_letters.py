"""Dead letters on the real broker: where they land, what they carry, and what a failed
dead-lettering does to the original message."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from confluent_kafka import Message, Producer
from consumer_harness import TOPIC, committed, job, produce, running_loop
from kafka_broker import PARTITIONS, Broker

from services.runtime.kafka.dead_letters import DLQ_HEADERS
from services.runtime.kafka.dlq_tool import read_dead_letters
from services.runtime.kafka.envelope import decode_generation
from services.runtime.kafka.settings import producer_config

pytestmark = pytest.mark.anyio
DLQ = f"{TOPIC}.dlq"


async def reject(message: Message) -> None:
    decode_generation(message.value())


async def test_a_dead_letter_keeps_its_partition_and_its_key(kafka_broker: Broker) -> None:
    key = b"course-9"
    hashed = zlib.crc32(key) % PARTITIONS  # where librdkafka's partitioner puts this key
    chosen = (hashed + 1) % PARTITIONS  # the producer chose another partition itself
    produce(kafka_broker, b"not json", key=key, partition=chosen)
    async with running_loop(kafka_broker.settings(), reject) as running:
        await running.until(lambda: running.loop.dead_lettered == 1)
    (record,) = read_dead_letters(kafka_broker.settings(), DLQ)
    assert record.partition == chosen  # not where the key would hash to
    assert record.key == key
    assert record.headers["dlq.original.key"] == "course-9"
    assert record.headers["dlq.original.partition"] == str(chosen)
    assert record.headers["dlq.original.offset"] == "0"
    assert set(DLQ_HEADERS) <= set(record.headers)


class QueueFullFirst(Producer):
    """A dead-letter producer whose local queue is full for its first `refusals` records."""

    refusals = 0

    def produce(self, *args: Any, **kwargs: Any) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise BufferError("Local: Queue full")
        super().produce(*args, **kwargs)


async def test_a_message_that_cannot_be_dead_lettered_is_kept_until_it_is(
    kafka_broker: Broker,
) -> None:
    settings = kafka_broker.settings()
    produce(kafka_broker, b"not json", job())  # one key: the poison comes first
    dlq_producer = QueueFullFirst(producer_config(settings, client_id="dlq"))
    dlq_producer.refusals = 2
    reads: list[bytes | None] = []

    async def handle(message: Message) -> None:
        reads.append(message.value())
        decode_generation(message.value())

    async with running_loop(settings, handle, dlq_producer=dlq_producer) as running:
        await running.until(lambda: running.loop.processed == 1)
    # Read once; its offset stays unfinished while the DLQ refuses it, and the publish is
    # tried again until the third attempt lands, once.
    assert reads == [b"not json", reads[-1]]
    assert dlq_producer.refusals == 0
    assert running.loop.dead_lettered == 1
    assert len(read_dead_letters(settings, DLQ)) == 1
    assert sum(committed(settings, "workers").values()) == 2
