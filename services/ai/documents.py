"""SQL for uploaded documents: queued with their indexing job, read, progressed, deleted.

An upload writes the document row, an `index` job and its outbox message in one
transaction, as generations do, so an accepted upload is never lost. Uploading a file
of the same name to the same course replaces that document: same id (so the indexer's
point ids, derived from it, overwrite the old chunks), new job. Every indexer update
names its job and touches the row only while that job is the document's current one,
so a superseded upload can never overwrite the newer one's status.
"""

import uuid
from typing import Any, Literal

import msgspec
from psycopg.types.json import Jsonb

from contracts.topics import DOCUMENT_UPLOADED
from services.ai.outbox import enqueue
from services.runtime.database import Connection
from services.runtime.errors import Forbidden, NotFound
from services.runtime.kafka.envelope import DocumentUploaded, encode
from services.runtime.tokens import Principal

__all__ = [
    "Document",
    "DocumentStatus",
    "Upload",
    "course_owner",
    "current_document",
    "delete_document",
    "detach_document",
    "fail_indexing",
    "finish_indexing",
    "load_document",
    "queue_upload",
    "record_progress",
    "start_indexing",
]

DocumentStatus = Literal["queued", "indexing", "indexed", "failed"]
_COLUMNS = (
    "id, course_id, owner_id, filename, size_bytes, sha256, storage_key, status,"
    " pages_done, pages_total, chunk_count, error, job_id"
)


class Document(msgspec.Struct, kw_only=True):
    """A document as its instructors see it."""

    document_id: uuid.UUID
    course_id: uuid.UUID
    filename: str
    size_bytes: int
    status: DocumentStatus
    pages_done: int
    pages_total: int | None
    chunk_count: int
    job_id: uuid.UUID
    error: str | None = None


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    """A checked upload, before it is queued."""

    course_id: uuid.UUID
    filename: str
    size_bytes: int
    sha256: str


def _document(row: dict[str, Any]) -> Document:
    return Document(
        document_id=row["id"],
        course_id=row["course_id"],
        filename=row["filename"],
        size_bytes=row["size_bytes"],
        status=row["status"],
        pages_done=row["pages_done"],
        pages_total=row["pages_total"],
        chunk_count=row["chunk_count"],
        job_id=row["job_id"],
        error=row["error"],
    )


async def course_owner(conn: Connection, course_id: uuid.UUID, principal: Principal) -> None:
    """Pass if `principal` is an instructor owning the course; 404 or 403 otherwise."""
    cursor = await conn.execute("SELECT owner_id FROM courses WHERE id = %s", (course_id,))
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"No course {course_id}")
    if principal.role != "instructor" or row["owner_id"] != principal.user_id:
        raise Forbidden("Only the course's instructor may manage its documents")


async def document_id_for(conn: Connection, upload: Upload) -> uuid.UUID:
    """The id of the course's document of this name, or a new one."""
    cursor = await conn.execute(
        "SELECT id FROM documents WHERE course_id = %s AND filename = %s",
        (upload.course_id, upload.filename),
    )
    row = await cursor.fetchone()
    return row["id"] if row is not None else uuid.uuid4()


async def queue_upload(
    conn: Connection,
    principal: Principal,
    upload: Upload,
    document_id: uuid.UUID,
    storage_key: str,
) -> Document:
    """Record the (new or replacing) document, its job and its message, in one transaction."""
    job_id = uuid.uuid4()
    async with conn.transaction():
        cursor = await conn.execute(
            f"INSERT INTO documents (id, course_id, owner_id, filename, size_bytes, sha256,"  # noqa: S608
            " storage_key, job_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (course_id, filename) DO UPDATE SET size_bytes = EXCLUDED.size_bytes,"
            " sha256 = EXCLUDED.sha256, storage_key = EXCLUDED.storage_key,"
            " job_id = EXCLUDED.job_id, owner_id = EXCLUDED.owner_id, status = 'queued',"
            " pages_done = 0, pages_total = NULL, error = NULL, updated_at = now()"
            f" RETURNING {_COLUMNS}",
            (
                document_id,
                upload.course_id,
                principal.user_id,
                upload.filename,
                upload.size_bytes,
                upload.sha256,
                storage_key,
                job_id,
            ),
        )
        row = await cursor.fetchone()
        assert row is not None  # noqa: S101 - RETURNING always yields the row
        await conn.execute(
            "INSERT INTO ai_jobs (id, owner_id, course_id, document_id, kind)"
            " VALUES (%s, %s, %s, %s, 'index')",
            (job_id, principal.user_id, upload.course_id, row["id"]),
        )
        await enqueue(
            conn,
            DOCUMENT_UPLOADED.name,
            key=str(upload.course_id).encode(),
            value=encode(
                DocumentUploaded(job_id=job_id, document_id=row["id"], sha256=upload.sha256)
            ),
        )
    return _document(row)


async def load_document(
    conn: Connection, document_id: uuid.UUID, principal: Principal
) -> tuple[Document, str]:
    """The document and its storage key, for its uploader or the course's instructor."""
    cursor = await conn.execute(
        f"SELECT {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))},"  # noqa: S608
        " c.owner_id AS course_owner FROM documents d JOIN courses c ON c.id = d.course_id"
        " WHERE d.id = %s",
        (document_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"No document {document_id}")
    if principal.user_id not in {row["owner_id"], row["course_owner"]}:
        raise Forbidden("Only the course's instructor may see its documents")
    return _document(row), row["storage_key"]


_BEING_DELETED = "deleted; its search chunks and file are being removed (delete it again)"


async def detach_document(conn: Connection, document_id: uuid.UUID) -> uuid.UUID:
    """Take the document from its indexing job, committed; the job id it now names.

    The new job id belongs to no job and no message. Every indexer write names the job it
    runs, so from this commit on an indexer still at work on the document changes nothing
    on it, and when it finds its job no longer current at the end it removes the chunks it
    wrote itself. The row stays until its chunks and file are gone, so a deletion that
    fails half-way can be repeated; until then it reads as failed, saying so.
    """
    detached = uuid.uuid4()
    async with conn.transaction():
        await conn.execute(
            "UPDATE documents SET job_id = %s, status = 'failed', error = %s,"
            " updated_at = now() WHERE id = %s",
            (detached, _BEING_DELETED, document_id),
        )
    return detached


async def delete_document(conn: Connection, document_id: uuid.UUID, detached: uuid.UUID) -> None:
    """Remove the row detached as `detached` (its jobs go with it).

    A re-upload under the same name in the meantime attached a new job to the row: that
    upload is newer than the deletion, so the row stays for it.
    """
    await conn.execute(
        "DELETE FROM documents WHERE id = %s AND job_id = %s", (document_id, detached)
    )


# --- the indexer's side ---------------------------------------------------------------


async def current_document(
    conn: Connection, document_id: uuid.UUID, job_id: uuid.UUID
) -> dict[str, Any] | None:
    """The document row while `job_id` is its current job; None if deleted or superseded."""
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM documents WHERE id = %s AND job_id = %s",  # noqa: S608
        (document_id, job_id),
    )
    return await cursor.fetchone()


async def start_indexing(conn: Connection, document_id: uuid.UUID, job_id: uuid.UUID) -> None:
    """Mark the document and its job running (an attempt is counted on the job)."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE documents SET status = 'indexing', updated_at = now()"
            " WHERE id = %s AND job_id = %s",
            (document_id, job_id),
        )
        await conn.execute(
            "UPDATE ai_jobs SET status = 'running', attempts = attempts + 1, updated_at = now()"
            " WHERE id = %s",
            (job_id,),
        )


async def record_progress(
    conn: Connection, document_id: uuid.UUID, job_id: uuid.UUID, pages_done: int, total: int
) -> None:
    """Pages embedded so far, for `GET /ai/documents/{id}`."""
    await conn.execute(
        "UPDATE documents SET pages_done = %s, pages_total = %s, updated_at = now()"
        " WHERE id = %s AND job_id = %s",
        (pages_done, total, document_id, job_id),
    )


async def finish_indexing(
    conn: Connection, document_id: uuid.UUID, job_id: uuid.UUID, pages: int, chunks: int
) -> None:
    """The document is searchable: record its size and close its job."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE documents SET status = 'indexed', pages_done = %s, pages_total = %s,"
            " chunk_count = %s, error = NULL, updated_at = now() WHERE id = %s AND job_id = %s",
            (pages, pages, chunks, document_id, job_id),
        )
        await conn.execute(
            "UPDATE ai_jobs SET status = 'succeeded', result = %s, error = NULL,"
            " updated_at = now() WHERE id = %s",
            (Jsonb({"pages": pages, "chunks": chunks}), job_id),
        )


async def fail_indexing(
    conn: Connection,
    document_id: uuid.UUID,
    job_id: uuid.UUID,
    reason: str,
    *,
    job_status: Literal["failed", "dead_lettered"] = "failed",
) -> None:
    """The document cannot be indexed: say why on the document and on its job."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE documents SET status = 'failed', error = %s, updated_at = now()"
            " WHERE id = %s AND job_id = %s",
            (reason, document_id, job_id),
        )
        await conn.execute(
            "UPDATE ai_jobs SET status = %s, error = %s, updated_at = now() WHERE id = %s",
            (job_status, reason, job_id),
        )
