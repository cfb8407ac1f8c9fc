"""What the orchestrator runs besides HTTP: the Kafka producer and the outbox relay."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread
from confluent_kafka import Producer
from litestar import Litestar

from services.ai.outbox import OutboxRelay
from services.ai.settings import AISettings
from services.common.resources import Resources
from services.messaging.settings import KafkaSettings, producer_config

__all__ = ["AIRuntime", "ai_lifespan"]


@dataclass(frozen=True)
class AIRuntime:
    """The orchestrator's AI settings and its relay."""

    settings: AISettings
    relay: OutboxRelay


def ai_lifespan(
    ai: AISettings, kafka: KafkaSettings
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Start the relay with the app; stop it (and flush the producer) with the app."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        resources: Resources = app.state.resources
        producer = Producer(producer_config(kafka, client_id="ai-orchestrator"))
        relay = OutboxRelay(
            resources.databases,
            producer,
            delivery_timeout_seconds=kafka.delivery_timeout_ms / 1000,
        )
        app.state.ai = AIRuntime(ai, relay)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop), name="outbox-relay")
        try:
            yield
        finally:
            stop.set()
            await task
            await anyio.to_thread.run_sync(lambda: producer.flush(5))

    return lifespan
