"""What an operator's Prometheus reads from the generation worker's /metrics.

Real broker (Tansu), PostgreSQL, Redis and Qdrant local mode; the local OpenAI-compatible
server stands for the provider. The worker runs as `eduscale worker generation` runs it,
with its health port scraped over HTTP and parsed by Prometheus's own text parser.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from ai_platform import Platform, dead_letters_reach, running_platform
from confluent_kafka import Producer
from fake_openai import FakeOpenAI
from kafka_broker import Broker, free_port
from metrics_scrape import scrape

from contracts.platform_metrics import (
    BREAKER_STATE,
    DLQ_WRITES,
    WORKER_JOBS_IN_FLIGHT,
    BreakerState,
)
from contracts.topics import GENERATION_REQUESTED
from services.ai.provider_breakers import CHAT_BREAKER, EMBEDDINGS_BREAKER
from services.runtime.kafka.settings import producer_config

pytestmark = [pytest.mark.server, pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

TOPIC = GENERATION_REQUESTED.name


async def worker_with_health_port(platform: Platform) -> int:
    """The generation worker alone on a health port of its own (one per process)."""
    await platform.stop_indexer()
    await platform.stop_worker()
    port = free_port()
    # A group of its own, as the other worker tests: no wait for the old member's session.
    platform.environ.update(HEALTH_PORT=str(port), KAFKA_CONSUMER_GROUP="generation-metrics")
    await platform.start_worker()
    with anyio.fail_after(30):
        while True:
            try:
                await scrape(port)
            except httpx.TransportError:
                await anyio.sleep(0.1)
            else:
                return port


async def test_a_poison_message_counts_one_dlq_write(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    dlq_writes = (DLQ_WRITES.series, frozenset({"topic": TOPIC}.items()))
    in_flight = (WORKER_JOBS_IN_FLIGHT.name, frozenset({"topic": TOPIC}.items()))
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        port = await worker_with_health_port(platform)
        before = await scrape(port)
        producer = Producer(producer_config(kafka_broker.settings(), client_id="test"))
        producer.produce(TOPIC, key=b"x", value=b"\x00 not an envelope")
        assert producer.flush(10) == 0
        await dead_letters_reach(kafka_broker, f"{TOPIC}.dlq", 1)
        after = await scrape(port)
    assert before[dlq_writes] == 0
    assert after[dlq_writes] == 1
    assert after[in_flight] == 0  # the poison message is done with


async def test_the_chat_breaker_shows_open_after_the_provider_fails(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    def state(provider: str) -> tuple[str, frozenset[tuple[str, str]]]:
        return (BREAKER_STATE.name, frozenset({"provider": provider}.items()))

    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        port = await worker_with_health_port(platform)
        closed = await scrape(port)
        course_id, lesson_id = await platform.lesson()
        fake_openai.fail_next(500, times=1000, only="chat")
        await platform.request(course_id, lesson_id)
        await platform.status_becomes("degraded")
        failing = await scrape(port)
    assert closed[state(CHAT_BREAKER)] == BreakerState.CLOSED
    assert failing[state(CHAT_BREAKER)] == BreakerState.OPEN
    assert failing[state(EMBEDDINGS_BREAKER)] == BreakerState.CLOSED  # embeddings still answer
