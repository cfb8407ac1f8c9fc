"""`eduscale worker generation`: the generation worker as a process.

Opens what the handler needs (database pools, Redis, the OpenAI client behind the
breaker, Qdrant for the semantic cache), joins the consumer group, serves health probes,
and on SIGTERM or SIGINT drains the in-flight message and leaves the group.
"""

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping

import structlog
from confluent_kafka import Consumer, Producer
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from services.ai.breaker import BreakerOpen, BreakerSnapshot, CircuitBreaker
from services.ai.breaker_state import publish_breaker_state
from services.ai.generation_worker import GenerationHandler, is_transient
from services.ai.semantic_cache import OpenAIEmbedder, SemanticCache
from services.ai.settings import AISettings
from services.ai.status import BREAKER_NAME
from services.common.health_server import health_server
from services.common.logs import configure_logging
from services.common.resources import open_resources
from services.common.settings import ServiceSettings
from services.messaging.consumer import ConsumerLoop, RetryPolicy
from services.messaging.settings import KafkaSettings, consumer_config, producer_config
from services.topics import GENERATION_REQUESTED

__all__ = ["cache_collection", "qdrant_client_for", "run_generation_worker", "worker_settings"]

_log = structlog.get_logger("eduscale.ai.worker")
_PURGE_EVERY_SECONDS = 600.0


def cache_collection(settings: AISettings) -> str:
    """The semantic cache's collection, named for its embeddings.

    Vectors of two embedding models (or sizes) are not comparable, so changing either
    starts a new, empty collection instead of matching against the old vectors.
    """
    model = re.sub(r"[^a-z0-9]+", "_", settings.embedding_model.lower()).strip("_")
    return f"semantic_cache_{model}_{settings.embedding_dimensions}"


async def _purge_periodically(cache: SemanticCache, every: float) -> None:
    """Delete expired answers; lookups already ignore them, this reclaims the space."""
    while True:
        try:
            await cache.purge_expired()
        except Exception as error:  # noqa: BLE001 - Qdrant down: try again next round
            _log.warning("semantic_cache_purge_failed", error=repr(error))
        await asyncio.sleep(every)


def qdrant_client_for(settings: AISettings) -> AsyncQdrantClient:
    """A server client when QDRANT_URL is set, else embedded local mode."""
    if settings.qdrant_url:
        return AsyncQdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    return (
        AsyncQdrantClient(path=settings.qdrant_path)
        if settings.qdrant_path
        else (AsyncQdrantClient(location=":memory:"))
    )


def worker_settings(
    environ: Mapping[str, str],
) -> tuple[ServiceSettings, AISettings, KafkaSettings]:
    """Everything the worker reads at start-up (no token key: it serves no clients)."""
    return (
        ServiceSettings.from_env(environ, verifies_tokens=False),
        AISettings.from_env(environ),
        KafkaSettings.from_env(environ),
    )


async def run_generation_worker(environ: Mapping[str, str], stop: asyncio.Event) -> None:
    """Consume `generation.requested` until `stop` is set."""
    service, ai, kafka = worker_settings(environ)
    configure_logging(service.log_level, "generation-worker")
    group = kafka.consumer_group or "generation-worker"
    health_port = int(environ.get("HEALTH_PORT", "8081"))
    async with open_resources(service) as resources:
        client = AsyncOpenAI(
            api_key=ai.openai_api_key or "not-configured",
            base_url=ai.openai_base_url,
            timeout=ai.openai_timeout_seconds,
            max_retries=ai.openai_max_retries,
        )

        async def publish(snapshot: BreakerSnapshot) -> None:
            ttl = int(max(ai.breaker_open_seconds, ai.breaker_window_seconds) * 2) + 1
            await publish_breaker_state(resources.redis, BREAKER_NAME, snapshot, ttl_seconds=ttl)

        breaker = CircuitBreaker(
            BREAKER_NAME,
            failure_rate_threshold=ai.breaker_failure_rate,
            minimum_calls=ai.breaker_minimum_calls,
            window_seconds=ai.breaker_window_seconds,
            open_seconds=ai.breaker_open_seconds,
            half_open_probes=ai.breaker_half_open_probes,
            on_change=publish,
        )
        qdrant = qdrant_client_for(ai)
        cache = SemanticCache(
            qdrant,
            OpenAIEmbedder(client, model=ai.embedding_model, dimensions=ai.embedding_dimensions),
            threshold=ai.cache_threshold,
            ttl_seconds=ai.cache_ttl_seconds,
            dimensions=ai.embedding_dimensions,
            collection=cache_collection(ai),
        )
        await cache.ensure_collection()
        purge = asyncio.create_task(_purge_periodically(cache, _PURGE_EVERY_SECONDS))
        handler = GenerationHandler(resources.databases, client, breaker, cache, ai)
        consumer = Consumer(consumer_config(kafka, group=group, client_id=group))
        dlq_producer = Producer(producer_config(kafka, client_id=f"{group}-dlq"))
        loop = ConsumerLoop(
            consumer,
            dlq_producer,
            GENERATION_REQUESTED.name,
            handler,
            is_transient=is_transient,
            breaker_open=BreakerOpen,
            on_dead_letter=handler.dead_lettered,
            stop=stop,
            retry=RetryPolicy(max_attempts=ai.max_attempts, base_delay=ai.retry_base_seconds),
        )
        running = asyncio.Event()

        async def consume() -> None:
            running.set()
            await loop.run()

        async with health_server(health_port, running.is_set):
            _log.info("worker_started", group=group, topic=GENERATION_REQUESTED.name)
            try:
                await consume()
            finally:
                purge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge
                dlq_producer.flush(5)
                await qdrant.close()
                await client.close()
        _log.info("worker_stopped", processed=loop.processed, dead_lettered=loop.dead_lettered)


def main(environ: Mapping[str, str] | None = None) -> None:
    """Run until SIGTERM/SIGINT."""

    async def run() -> None:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stop.set)
        await run_generation_worker(os.environ if environ is None else environ, stop)

    asyncio.run(run())
