"""What an operator's Prometheus reads from the analytics sink's /metrics.

`eduscale worker analytics` as it runs (in this process, on the Tansu broker and the
embedded store), its health port scraped over HTTP and parsed by Prometheus's parser.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import httpx
import pytest
from confluent_kafka import Producer
from kafka_broker import Broker, free_port
from metrics_scrape import scrape

from contracts.platform_metrics import DLQ_WRITES, KAFKA_CONSUMER_LAG
from contracts.topics import ANALYTICS_EVENTS
from services.analytics_sink.worker import run_analytics_worker
from services.runtime.kafka.settings import producer_config

pytestmark = [pytest.mark.server, pytest.mark.anyio]

TOPIC = ANALYTICS_EVENTS.name


async def test_the_sink_serves_its_lag_and_its_dead_letters(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    port, group = free_port(), "sink-metrics"
    environ = {
        **kafka_broker.environ(),
        "KAFKA_CONSUMER_GROUP": group,
        "HEALTH_PORT": str(port),
        "ANALYTICS_DATA_DIR": str(tmp_path / "analytics"),
    }
    dlq = (f"{DLQ_WRITES.name}_total", frozenset({("topic", TOPIC)}))
    lag = (KAFKA_CONSUMER_LAG.name, frozenset({("topic", TOPIC), ("consumer_group", group)}))
    stop = asyncio.Event()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_analytics_worker, environ, stop)
        with anyio.fail_after(60):
            while True:
                try:
                    before = await scrape(port)
                except httpx.TransportError:
                    await anyio.sleep(0.1)
                    continue
                if dlq in before and lag in before:
                    break
                await anyio.sleep(0.2)
        assert before[dlq] == 0

        producer = Producer(producer_config(kafka_broker.settings(), client_id="test"))
        producer.produce(TOPIC, b"not an analytics event")
        assert producer.flush(10) == 0
        with anyio.fail_after(60):
            while True:  # dead-lettered, and consumed: nothing behind
                now = await scrape(port)
                if now[dlq] == 1 and now[lag] == 0:
                    break
                await anyio.sleep(0.3)
        stop.set()
