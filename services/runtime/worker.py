"""What every AI worker process runs around its handler.

Both workers (generation, indexer) read the same settings, open the same pools, call
the provider through its circuit breakers and publish their state to Redis, share the
process's Qdrant client, consume one topic at least once with a dead-letter topic, and
serve health probes (and, on /metrics, whatever the handler counts). Only the handler
differs: each worker passes a factory that builds its handler from this context (and may
run background work while the handler lives).
On SIGTERM or SIGINT the in-flight message is drained and the group is left.
"""

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from confluent_kafka import Consumer, Message, Producer
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from services.ai.breaker import BreakerOpen
from services.ai.provider_breakers import ProviderBreakers, provider_breakers
from services.ai.qdrant import open_qdrant
from services.ai.runtime import openai_client
from services.ai.settings import AISettings
from services.analytics.emitter import EventEmitter
from services.analytics.settings import AnalyticsSettings
from services.common.health_server import Counters, health_server
from services.common.logs import configure_logging
from services.common.resources import Resources, open_resources
from services.common.settings import ServiceSettings
from services.messaging.consumer import ConsumerLoop, RetryPolicy
from services.messaging.dead_letters import Failure
from services.messaging.settings import KafkaSettings, consumer_config, producer_config

__all__ = ["WorkerContext", "WorkerHandler", "run_forever", "run_worker", "worker_settings"]

_log = structlog.get_logger("eduscale.ai.worker")


class WorkerHandler(Protocol):
    """Handles one message; says which failures are worth a retry; records dead letters."""

    async def __call__(self, message: Message) -> None:
        """Handle one message (raise to let the consumer loop retry or dead-letter)."""

    async def dead_lettered(self, message: Message, failure: Failure) -> None:
        """Record on the job that its message went to the dead-letter topic."""

    def is_transient(self, error: BaseException) -> bool:
        """Whether a retry may succeed."""
        ...


@dataclass(frozen=True)
class WorkerContext:
    """What a handler factory may use."""

    ai: AISettings
    resources: Resources
    client: AsyncOpenAI
    breakers: ProviderBreakers
    qdrant: AsyncQdrantClient
    events: EventEmitter | None = None
    """Analytics events (generation finished, document indexed); None in some tests."""
    counters: list[Counters] = field(default_factory=list)
    """Where a handler factory adds what it counts; served on the health port's /metrics."""

    def read_counters(self) -> dict[str, float]:
        """Read at scrape time, so /metrics shows live numbers."""
        return {name: value for read in self.counters for name, value in read().items()}


HandlerFactory = Callable[[WorkerContext], AbstractAsyncContextManager[WorkerHandler]]


def worker_settings(
    environ: Mapping[str, str],
) -> tuple[ServiceSettings, AISettings, KafkaSettings]:
    """Everything a worker reads at start-up (no token key: it serves no clients)."""
    return (
        ServiceSettings.from_env(environ, verifies_tokens=False),
        AISettings.from_env(environ),
        KafkaSettings.from_env(environ),
    )


async def run_worker(
    environ: Mapping[str, str],
    stop: asyncio.Event,
    *,
    name: str,
    topic: str,
    handler_factory: HandlerFactory,
) -> None:
    """Consume `topic` with the factory's handler until `stop` is set."""
    service, ai, kafka = worker_settings(environ)
    configure_logging(service.log_level, name)
    group = kafka.consumer_group or name
    health_port = int(environ.get("HEALTH_PORT", "8081"))
    emitter = EventEmitter(AnalyticsSettings.from_env(environ), kafka, client_id=f"{group}-events")
    async with (
        open_resources(service) as resources,
        open_qdrant(ai) as qdrant,
        emitter.running() as events,
    ):
        client = openai_client(ai)
        context = WorkerContext(
            ai, resources, client, provider_breakers(ai, resources.redis), qdrant, events
        )
        dlq_producer = Producer(producer_config(kafka, client_id=f"{group}-dlq"))
        try:
            async with handler_factory(context) as handler:
                loop = ConsumerLoop(
                    Consumer(consumer_config(kafka, group=group, client_id=group)),
                    dlq_producer,
                    topic,
                    handler,
                    is_transient=handler.is_transient,
                    breaker_open=BreakerOpen,
                    on_dead_letter=handler.dead_lettered,
                    stop=stop,
                    retry=RetryPolicy(
                        max_attempts=ai.max_attempts, base_delay=ai.retry_base_seconds
                    ),
                )
                running = asyncio.Event()
                async with health_server(health_port, running.is_set, context.read_counters):
                    _log.info("worker_started", group=group, topic=topic)
                    running.set()
                    await loop.run()
        finally:
            dlq_producer.flush(5)
            await client.close()
    _log.info("worker_stopped", processed=loop.processed, dead_lettered=loop.dead_lettered)


def run_forever(run: Callable[[Mapping[str, str], asyncio.Event], Awaitable[None]]) -> None:
    """Run a worker with the process environment until SIGTERM/SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stop.set)
        await run(os.environ, stop)

    asyncio.run(main())
