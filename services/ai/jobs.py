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
    "take_job",
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


_TAKE = """
WITH taken AS (
    UPDATE ai_jobs SET status = 'running', updated_at = now(), attempts = attempts + 1
    WHERE id = %(id)s AND status NOT IN ('succeeded', 'failed')
    RETURNING id, owner_id, course_id, lesson_id, kind, instructions, status
)
SELECT t.*, true AS taken,
       EXISTS (SELECT 1 FROM documents d WHERE d.course_id = t.course_id) AS has_documents
FROM taken t
UNION ALL
SELECT j.id, j.owner_id, j.course_id, j.lesson_id, j.kind, j.instructions, j.status,
       false, false
FROM ai_jobs j WHERE j.id = %(id)s AND NOT EXISTS (SELECT 1 FROM taken)
"""


async def take_job(conn: Connection, job_id: uuid.UUID) -> dict[str, Any] | None:
    """Mark the job running (one more attempt) unless it is done; its row, or None if none.

    One statement instead of a read and an update: a worker with many jobs in flight
    pays a database round trip per step. The row says whether it was `taken` (False: it
    had already succeeded or failed, e.g. a redelivery) and whether its course
    `has_documents` to ground the answer in (a course without any has no passages).
    """
    cursor = await conn.execute(_TAKE, {"id": job_id})
    return await cursor.fetchone()


_FINISH = """
WITH finished AS (
    UPDATE ai_jobs SET status = 'succeeded', result = %(result)s, error = NULL,
                       updated_at = now()
    WHERE id = %(id)s
    RETURNING id, course_id, lesson_id
)
INSERT INTO quizzes (id, course_id, lesson_id, title, questions, status, source_job_id)
SELECT %(quiz_id)s, course_id, lesson_id, %(title)s, %(questions)s, 'draft', id
FROM finished WHERE %(draft)s
ON CONFLICT (source_job_id) DO NOTHING
"""


async def finish_job(
    conn: Connection, job_id: uuid.UUID, result: Any, *, draft_quiz: str | None = None
) -> None:
    """Mark the job succeeded; `draft_quiz` (a title) also drafts its questions as a quiz.

    One statement, so atomic without a transaction's extra round trips; a redelivered
    job that succeeds again keeps its first draft (keyed by `source_job_id`).
    """
    await conn.execute(
        _FINISH,
        {
            "id": job_id,
            "result": Jsonb(result),
            "quiz_id": uuid.uuid4(),
            "title": draft_quiz or "",
            "questions": Jsonb(result.get("questions") if draft_quiz else None),
            "draft": draft_quiz is not None,
        },
    )
