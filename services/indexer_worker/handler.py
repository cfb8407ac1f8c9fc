"""The vector indexer's handler: one `document.uploaded` message, one document indexed.

File -> pages (pypdf) -> overlapping chunks -> embeddings in batches (through the
provider's circuit breaker) -> Qdrant, with the pages wholly stored shown on the document
after each batch.
Point ids derive from the document and the chunk's position, so a redelivery or a replay
overwrites the same points, and a re-upload's leftover chunks are removed at the end.
A message whose job is no longer the document's current one (replaced, deleted) is
skipped; so is one for a document already indexed. An unreadable file (encrypted,
corrupt, no text) is a permanent failure: the document and its job say why, and the
message goes to the dead-letter topic; it is never retried.
"""

from collections.abc import Sequence
from typing import Any

import anyio.to_thread
import structlog
from confluent_kafka import Message

from services.ai.breaker import CircuitBreaker, is_provider_failure
from services.ai.document_files import DocumentFiles
from services.ai.documents import (
    current_document,
    fail_indexing,
    finish_indexing,
    record_progress,
    start_indexing,
)
from services.ai.semantic_cache import Embedder
from services.ai.settings import AISettings
from services.analytics.emitter import EventEmitter
from services.analytics.events import DocumentIndexed, DocumentIndexedProps, stable_event_id
from services.indexing.chunking import Chunk, chunk_pages
from services.indexing.pdf import UnreadableDocument, read_pages
from services.indexing.vector_index import CourseIndex, IndexedChunk
from services.runtime.database import Databases
from services.runtime.kafka.dead_letters import Failure
from services.runtime.kafka.envelope import PoisonMessage, decode_document
from services.runtime.transient import is_transient_infrastructure

__all__ = ["IndexHandler", "MissingFile", "document_ordering_key", "pages_done"]

_log = structlog.get_logger("eduscale.indexer")


class MissingFile(UnreadableDocument):
    """The uploaded file is not in the store (removed by hand, or a broken upload)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the uploaded file is missing from storage ({key})")


_UNREADABLE: set[str] = {
    UnreadableDocument.__name__,
    MissingFile.__name__,
    *(cls.__name__ for cls in UnreadableDocument.__subclasses__()),
}
"""The error classes whose dead letter means "this file cannot be indexed"."""


def pages_done(chunks: Sequence[Chunk], stored: int, pages: int) -> int:
    """How many pages are wholly stored once the first `stored` chunks are.

    A page is done only when its last chunk is: a batch ending in the middle of a page
    leaves that page to the next one. Chunks never span pages, and pages without text have
    none, so every page before the next chunk's page is done.
    """
    if stored >= len(chunks):
        return pages
    return chunks[stored].page - 1


def document_ordering_key(message: Message) -> bytes | None:
    """Uploads of one document are indexed one after the other, never side by side.

    A replaced upload's run ends by deleting the document's chunks (it finds its job no
    longer current), which would wipe what the newer upload's run is writing beside it.
    The message key (the course) is coarser than needed: uploads of other documents of
    the course may run together. A poison message has no document: no constraint.
    """
    try:
        return decode_document(message.value()).document_id.bytes
    except PoisonMessage:
        return None


class IndexHandler:
    """Turns an upload message into an indexed document."""

    def __init__(
        self,
        databases: Databases,
        *,
        files: DocumentFiles,
        index: CourseIndex,
        embedder: Embedder,
        breaker: CircuitBreaker,
        settings: AISettings,
        events: EventEmitter | None = None,
    ) -> None:
        self._events = events
        self._databases = databases
        self._files = files
        self._index = index
        self._embedder = embedder
        self._breaker = breaker
        self._settings = settings

    def is_transient(self, error: BaseException) -> bool:
        """Provider and infrastructure trouble may pass; an unreadable file will not."""
        if isinstance(error, UnreadableDocument):
            return False
        return is_provider_failure(error) or is_transient_infrastructure(error)

    async def __call__(self, message: Message) -> None:
        """Index the message's document (raise to let the consumer loop retry or DLQ)."""
        request = decode_document(message.value())
        async with self._databases.writer() as conn:
            document = await current_document(conn, request.document_id, request.job_id)
        if document is None or document["sha256"] != request.sha256:
            _log.info("upload_superseded", document_id=str(request.document_id))
            return
        if document["status"] == "indexed":
            _log.info("document_already_indexed", document_id=str(request.document_id))
            return
        async with self._databases.writer() as conn:
            await start_indexing(conn, request.document_id, request.job_id)
        chunks, pages = await self._read(document)
        await self._embed_and_store(document, chunks, pages)
        await self._index.remove_stale(str(document["id"]), keep=len(chunks))
        async with self._databases.writer() as conn:
            still = await current_document(conn, request.document_id, request.job_id)
            if still is None:  # deleted while we worked: leave no chunks behind
                await self._index.delete_document(str(document["id"]))
                return
            await finish_indexing(conn, document["id"], request.job_id, pages, len(chunks))
        _log.info(
            "document_indexed", document_id=str(document["id"]), pages=pages, chunks=len(chunks)
        )
        if self._events is not None:
            self._events.emit(
                DocumentIndexed(
                    event_id=stable_event_id("document_indexed", request.job_id),
                    user_id=document["owner_id"],
                    course_id=document["course_id"],
                    props=DocumentIndexedProps(
                        document_id=document["id"],
                        job_id=request.job_id,
                        pages=pages,
                        chunks=len(chunks),
                    ),
                )
            )

    async def _read(self, document: dict[str, Any]) -> tuple[list[Chunk], int]:
        try:
            data = await self._files.get(document["storage_key"])
        except FileNotFoundError:
            raise MissingFile(document["storage_key"]) from None
        pages = await anyio.to_thread.run_sync(read_pages, data)
        chunks = chunk_pages(
            pages,
            max_tokens=self._settings.chunk_tokens,
            overlap_tokens=self._settings.chunk_overlap_tokens,
        )
        return chunks, len(pages)

    async def _embed_and_store(
        self, document: dict[str, Any], chunks: Sequence[Chunk], pages: int
    ) -> None:
        size = self._settings.embedding_batch
        for start in range(0, len(chunks), size):
            batch = chunks[start : start + size]
            texts = [chunk.text for chunk in batch]

            async def embed(texts: list[str] = texts) -> list[list[float]]:
                return await self._embedder.embed(texts)

            vectors = await self._breaker.call(embed)
            await self._index.upsert_chunks(
                course_id=str(document["course_id"]),
                document_id=str(document["id"]),
                chunks=[IndexedChunk(c.page, c.index, c.text) for c in batch],
                vectors=vectors,
            )
            async with self._databases.writer() as conn:
                await record_progress(
                    conn,
                    document["id"],
                    document["job_id"],
                    pages_done(chunks, start + len(batch), pages),
                    pages,
                )

    async def dead_lettered(self, message: Message, failure: Failure) -> None:
        """Say on the document and its job why it could not be indexed."""
        try:
            request = decode_document(message.value())
        except PoisonMessage:
            return  # no document can be read from it
        unreadable = failure.error_class in _UNREADABLE
        reason = failure.message if unreadable else f"{failure.error_class}: {failure.message}"
        async with self._databases.writer() as conn:
            await fail_indexing(
                conn,
                request.document_id,
                request.job_id,
                reason,
                job_status="failed" if unreadable else "dead_lettered",
            )
