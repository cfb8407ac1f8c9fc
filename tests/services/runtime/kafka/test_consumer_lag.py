"""The consumer lag a worker reports: records behind the ends of the partitions it owns."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from consumer_harness import TOPIC, job, produce
from kafka_broker import PARTITIONS, QUIET, Broker

from services.runtime.consumer_metrics import consumer_lag

pytestmark = pytest.mark.server


def test_lag_counts_what_is_not_consumed_yet_and_falls_to_zero(kafka_broker: Broker) -> None:
    for _ in range(5):  # one batch each: Tansu (the test broker) gives a batch one offset
        produce(kafka_broker, job())
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.settings().bootstrap_servers,
            "group.id": "lag-test",
            "enable.auto.commit": False,
            "log_level": QUIET,
        }
    )
    try:
        consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        assert consumer_lag(consumer) == 5
        taken = 0
        deadline = time.monotonic() + 30
        while taken < 5 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                taken += 1
        assert taken == 5
        assert consumer_lag(consumer) == 0
    finally:
        consumer.close()
