"""SQL for generation jobs: created with their outbox message, read by owner or instructor."""

import uuid
from typing import Annotated, Any, Literal

import msgspec
import psycopg.errors
from psycopg.types.json import Jsonb

from contracts.topics import GENERATION_REQUESTED
from services.ai.outbox import enqueue
from services.runtime.database import Connection
from services.runtime.errors import Forbidden, NotFound
from services.runtime.kafka.envelope import GenerationRequested, encode
from services.runtime.tokens import Principal

__all__ = [
    "GenerationKind",
    "GenerationRequest",
    "Job",
    "JobKind",
    "create_job",
    "finish_job",
    "job_by_key",
    "load_job_for",
    "mark_job",
]

GenerationKind = Literal["quiz", "summary", "explanation"]
JobKind = Literal["quiz", "summary", "explanation", "index"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "dead_lettered"]
_COLUMNS = (
    "id, owner_id, course_id, lesson_id, document_id, kind, instructions, status, attempts,"
    " result, error"
)


class GenerationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What to generate, for which lesson."""

    course_id: uuid.UUID
    lesson_id: uuid.UUID
    kind: GenerationKind
    instructions: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Job(msgspec.Struct, kw_only=True):
    """A job as its owner sees it."""

    job_id: uuid.UUID
    status: JobStatus
    kind: JobKind
    course_id: uuid.UUID
    lesson_id: uuid.UUID | None = None
    """The lesson of a generation."""
    document_id: uuid.UUID | None = None
    """The document of an `index` job."""
    attempts: int
    result: Any | None = None
    error: str | None = None


def _job(row: dict[str, Any]) -> Job:
    return Job(
        job_id=row["id"],
        status=row["status"],
        kind=row["kind"],
        course_id=row["course_id"],
        lesson_id=row["lesson_id"],
        document_id=row["document_id"],
        attempts=row["attempts"],
        result=row["result"],
        error=row["error"],
    )


async def create_job(
    conn: Connection,
    principal: Principal,
    request: GenerationRequest,
    idempotency_key: str | None,
) -> Job:
    """Insert the job and its outbox message in one transaction.

    An idempotency key that was used before returns that job instead. A quiz is saved
    as a draft of the course, so only the course's instructor may ask for one; a summary
    or an explanation stays with whoever asked, so any signed-in user may.
    """
    if idempotency_key is not None:
        existing = await job_by_key(conn, principal, idempotency_key)
        if existing is not None:
            return existing
    cursor = await conn.execute(
        "SELECT c.owner_id FROM lessons l JOIN courses c ON c.id = l.course_id"
        " WHERE l.id = %s AND l.course_id = %s",
        (request.lesson_id, request.course_id),
    )
    lesson = await cursor.fetchone()
    if lesson is None:
        raise NotFound(f"No lesson {request.lesson_id} in course {request.course_id}")
    if request.kind == "quiz" and (
        principal.role != "instructor" or principal.user_id != lesson["owner_id"]
    ):
        raise Forbidden(
            "Only the course's instructor may generate a quiz: it becomes a draft of the course"
        )
    job_id = uuid.uuid4()
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                f"INSERT INTO ai_jobs (id, owner_id, course_id, lesson_id, kind, instructions,"  # noqa: S608
                f" idempotency_key) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                (
                    job_id,
                    principal.user_id,
                    request.course_id,
                    request.lesson_id,
                    request.kind,
                    request.instructions or "",
                    idempotency_key,
                ),
            )
            row = await cursor.fetchone()
            await enqueue(
                conn,
                GENERATION_REQUESTED.name,
                key=str(request.course_id).encode(),
                value=encode(GenerationRequested(job_id=job_id)),
            )
    except psycopg.errors.UniqueViolation:
        # The same key raced in from another request: that one won; return its job.
        existing = await job_by_key(conn, principal, idempotency_key or "")
        if existing is None:
            raise
        return existing
    assert row is not None  # noqa: S101 - RETURNING always yields the row
    return _job(row)


async def job_by_key(conn: Connection, principal: Principal, key: str) -> Job | None:
    """The job `principal` created with this Idempotency-Key, if any."""
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM ai_jobs WHERE owner_id = %s AND idempotency_key = %s",  # noqa: S608
        (principal.user_id, key),
    )
    row = await cursor.fetchone()
    return _job(row) if row is not None else None


async def load_job_for(conn: Connection, job_id: uuid.UUID, principal: Principal) -> Job:
    """The job, if `principal` owns it or owns its course; 404 otherwise."""
    cursor = await conn.execute(
        f"SELECT {', '.join('j.' + c.strip() for c in _COLUMNS.split(','))},"  # noqa: S608
        " c.owner_id AS course_owner FROM ai_jobs j JOIN courses c ON c.id = j.course_id"
        " WHERE j.id = %s",
        (job_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"No job {job_id}")
    if principal.user_id not in {row["owner_id"], row["course_owner"]}:
        raise Forbidden("Only the job's owner or the course's instructor may read it")
    return _job(row)


async def mark_job(
    conn: Connection, job_id: uuid.UUID, status: JobStatus, *, error: str | None = None
) -> None:
    """Set a job's status (and error); `running` also counts an attempt."""
    await conn.execute(
        "UPDATE ai_jobs SET status = %s, error = COALESCE(%s, error), updated_at = now(),"
        " attempts = attempts + CASE WHEN %s = 'running' THEN 1 ELSE 0 END WHERE id = %s",
        (status, error, status, job_id),
    )


async def finish_job(conn: Connection, job_id: uuid.UUID, result: Any) -> None:
    """Store the result and mark the job succeeded."""
    await conn.execute(
        "UPDATE ai_jobs SET status = 'succeeded', result = %s, error = NULL, updated_at = now()"
        " WHERE id = %s",
        (Jsonb(result), job_id),
    )
