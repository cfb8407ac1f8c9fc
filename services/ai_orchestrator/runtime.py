"""What the orchestrator runs besides HTTP: the outbox relay, and its AI-side clients.

The Kafka producer and the relay publish queued jobs; the document store, Qdrant (the
course index) and the embeddings client serve uploads, deletions and search.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread
import structlog
from confluent_kafka import Producer
from litestar import Litestar

from services.ai.document_files import DocumentFiles, document_files
from services.ai.outbox import OutboxRelay
from services.ai.outbox_metrics import measure_outbox_backlog
from services.ai.provider import openai_client
from services.ai.qdrant import course_index, open_qdrant
from services.ai.semantic_cache import OpenAIEmbedder
from services.ai.settings import AISettings
from services.indexing.vector_index import CourseIndex
from services.runtime.kafka.settings import KafkaSettings, producer_config
from services.runtime.resources import Resources

__all__ = ["AIRuntime", "ai_lifespan"]

_log = structlog.get_logger("eduscale.ai.runtime")


@dataclass(frozen=True)
class AIRuntime:
    """The orchestrator's AI settings, relay and clients."""

    settings: AISettings
    relay: OutboxRelay
    files: DocumentFiles
    index: CourseIndex
    embedder: OpenAIEmbedder | None
    """None without OPENAI_API_KEY: search is then unavailable."""


def ai_lifespan(
    ai: AISettings, kafka: KafkaSettings
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Start the relay and open the clients with the app; stop and close them with it."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        resources: Resources = app.state.resources
        producer = Producer(producer_config(kafka, client_id="ai-orchestrator"))
        relay = OutboxRelay(
            resources.databases,
            producer,
            delivery_timeout_seconds=kafka.delivery_timeout_ms / 1000,
        )
        client = openai_client(ai)
        async with open_qdrant(ai) as qdrant:
            index = course_index(qdrant, ai)
            try:
                await index.ensure_collection()
            except Exception as error:  # noqa: BLE001 - Qdrant may come later; search says 503
                _log.warning("course_index_unavailable", error=repr(error))
            embedder = (
                OpenAIEmbedder(
                    client, model=ai.embedding_model, dimensions=ai.layout["vector_size"]
                )
                if ai.openai_api_key
                else None
            )
            app.state.ai = AIRuntime(ai, relay, document_files(ai), index, embedder)
            stop = asyncio.Event()
            task = asyncio.create_task(relay.run(stop), name="outbox-relay")
            backlog = asyncio.create_task(
                measure_outbox_backlog(resources.databases, stop), name="outbox-backlog"
            )
            try:
                yield
            finally:
                stop.set()
                await task
                await backlog
                await anyio.to_thread.run_sync(lambda: producer.flush(5))
                await client.close()

    return lifespan
