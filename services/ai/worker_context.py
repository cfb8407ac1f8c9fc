"""What both AI workers (generation, indexer) open around their handler.

They read the same settings, open the same pools, call the provider through its circuit
breakers and publish their state to Redis, share the process's Qdrant client, and emit
analytics events. Only the handler differs: each worker passes a factory that builds
its handler from this context (and may run background work while the handler lives);
the consumer loop and the probes are the shared runtime's (`services.runtime.worker`).
"""

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from confluent_kafka import Message
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from services.ai.breaker import BreakerOpen
from services.ai.breaker_metrics import observe_breakers
from services.ai.provider import openai_client
from services.ai.provider_breakers import ProviderBreakers, provider_breakers
from services.ai.qdrant import open_qdrant
from services.ai.settings import AISettings
from services.ai.worker_settings import AIWorkerSettings
from services.analytics.emitter import EventEmitter
from services.runtime.kafka.consumer import RetryPolicy
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.logs import configure_logging
from services.runtime.metrics import Counters
from services.runtime.resources import DataPools, open_data_pools
from services.runtime.settings import DataSettings
from services.runtime.worker import WorkerHandler, consume

__all__ = ["HandlerFactory", "WorkerContext", "run_worker", "worker_settings"]


@dataclass(frozen=True)
class WorkerContext:
    """What a handler factory may use."""

    ai: AISettings
    resources: DataPools
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
) -> tuple[DataSettings, AISettings, KafkaSettings]:
    """The sections a worker's handler uses (no token key: it serves no clients)."""
    settings = AIWorkerSettings.from_env(environ)
    return settings.service, settings.ai, settings.kafka


async def run_worker(
    environ: Mapping[str, str],
    stop: asyncio.Event,
    *,
    name: str,
    topic: str,
    handler_factory: HandlerFactory,
    ordering_key: Callable[[Message], bytes | None] | None = None,
    settings_class: type[AIWorkerSettings] = AIWorkerSettings,
) -> None:
    """Consume `topic` with the factory's handler until `stop` is set.

    WORKER_CONCURRENCY jobs at most in flight; messages with the same `ordering_key` one
    after the other. `settings_class` is the deployable's (it reads the same sections).
    """
    settings = settings_class.from_env(environ)
    service, ai, kafka = settings.service, settings.ai, settings.kafka
    configure_logging(service.log_level, name)
    group = kafka.consumer_group or name
    health_port = settings.health.health_port
    emitter = EventEmitter(settings.analytics, kafka, client_id=f"{group}-events")
    async with (
        open_data_pools(service) as resources,
        open_qdrant(ai) as qdrant,
        emitter.running() as events,
    ):
        client = openai_client(ai)
        breakers = provider_breakers(ai, resources.redis)
        context = WorkerContext(ai, resources, client, breakers, qdrant, events)
        stop_observing = observe_breakers(breakers)
        try:
            async with handler_factory(context) as handler:
                await consume(
                    kafka,
                    group=group,
                    topic=topic,
                    handler=handler,
                    stop=stop,
                    retry=RetryPolicy(
                        max_attempts=ai.max_attempts, base_delay=ai.retry_base_seconds
                    ),
                    breaker_open=BreakerOpen,
                    health_port=health_port,
                    counters=context.read_counters,
                    concurrency=ai.worker_concurrency,
                    ordering_key=ordering_key,
                )
        finally:
            stop_observing()
            await client.close()
