"""`eduscale worker indexer`: the vector indexer as a process.

At start it creates the course-material collection from the layout the VectorStore
component exports (QDRANT_COLLECTION_LAYOUT), idempotently, then consumes
`document.uploaded` with the shared worker runtime. Documents are embedded at the
layout's vector size, the size the collection was created for.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from contracts.topics import DOCUMENT_UPLOADED
from services.ai.document_files import document_files
from services.ai.qdrant import course_index
from services.ai.semantic_cache import OpenAIEmbedder
from services.ai.worker_context import WorkerContext, run_worker
from services.indexer_worker.handler import IndexHandler, document_ordering_key
from services.indexer_worker.settings import IndexerWorkerSettings
from services.runtime.worker import WorkerHandler, run_forever

__all__ = ["main", "run_indexer_worker"]


@contextlib.asynccontextmanager
async def _index_handler(context: WorkerContext) -> AsyncIterator[WorkerHandler]:
    ai = context.ai
    index = course_index(context.qdrant, ai)
    await index.ensure_collection()
    yield IndexHandler(
        context.resources.databases,
        files=document_files(ai),
        index=index,
        embedder=OpenAIEmbedder(
            context.client, model=ai.embedding_model, dimensions=ai.layout["vector_size"]
        ),
        breaker=context.breakers.embeddings,
        settings=ai,
        events=context.events,
    )


async def run_indexer_worker(environ: Mapping[str, str], stop: asyncio.Event) -> None:
    """Consume `document.uploaded` until `stop` is set."""
    await run_worker(
        environ,
        stop,
        name="indexer-worker",
        topic=DOCUMENT_UPLOADED.name,
        handler_factory=_index_handler,
        ordering_key=document_ordering_key,
        settings_class=IndexerWorkerSettings,
    )


def main() -> None:
    """Run until SIGTERM/SIGINT."""
    run_forever(run_indexer_worker)
