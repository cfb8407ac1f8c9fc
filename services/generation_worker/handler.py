"""The generation worker's handler: one `generation.requested` message, one job done.

Idempotent: a job already succeeded or failed is skipped, so a redelivery or a DLQ
replay never generates twice, and the draft quiz is keyed by its job. The lesson comes
from a replica (a miss is treated as replication lag: retried). The semantic cache is
asked first; the provider is called through the circuit breaker only on a miss. What is
transient (provider failures, a dependency's passing trouble as `services.runtime.transient`
knows it, the lesson not yet on the replica) is retried by the consumer loop; an unusable
model answer is permanent.

Grounding (an embeddings call and a vector search) is skipped for a course that has no
document: there is nothing to find, and on a worker with many jobs in flight those calls
are most of its CPU per job.
"""

import uuid
from typing import Any, Literal

import msgspec
import structlog
from confluent_kafka import Message
from openai import AsyncOpenAI

from services.ai.breaker import is_provider_failure
from services.ai.jobs import finish_job, mark_job, take_job
from services.ai.provider_breakers import ProviderBreakers
from services.ai.semantic_cache import CacheScope, Embedder, SemanticCache
from services.ai.settings import PROMPT_VERSION, AISettings
from services.analytics.emitter import EventEmitter
from services.analytics.events import (
    GenerationFinished,
    GenerationFinishedProps,
    stable_event_id,
)
from services.generation_worker.generation import (
    build_messages,
    call_model,
    lesson_hash,
    parse_answer,
    request_text,
)
from services.indexing.vector_index import CourseIndex
from services.runtime.database import Databases
from services.runtime.kafka.dead_letters import Failure
from services.runtime.kafka.envelope import PoisonMessage, decode_generation
from services.runtime.transient import is_transient_infrastructure

__all__ = ["GenerationHandler", "LessonNotReplicated", "is_transient"]

_log = structlog.get_logger("eduscale.ai.worker")
_GROUNDING_QUERY_CHARS = 4000


class LessonNotReplicated(RuntimeError):
    """The job's lesson is not on the replica yet (or was deleted); retried."""


def is_transient(error: BaseException) -> bool:
    """Whether a retry may succeed: provider failures, infrastructure trouble, replication lag."""
    return (
        is_provider_failure(error)
        or is_transient_infrastructure(error)
        or isinstance(error, LessonNotReplicated)
    )


class GenerationHandler:
    """Turns a job message into a finished job."""

    def __init__(
        self,
        databases: Databases,
        client: AsyncOpenAI,
        breakers: ProviderBreakers,
        cache: SemanticCache | None,
        settings: AISettings,
        *,
        index: CourseIndex | None = None,
        grounding: Embedder | None = None,
        events: EventEmitter | None = None,
    ) -> None:
        self._events = events
        self._index = index
        self._grounding = grounding
        self._databases = databases
        self._client = client
        self._breakers = breakers
        self._cache = cache
        self._settings = settings
        self.model_calls = 0

    def is_transient(self, error: BaseException) -> bool:
        """Whether a retry may succeed (see the module's `is_transient`)."""
        return is_transient(error)

    async def __call__(self, message: Message) -> None:
        """Handle one message (raise to let the consumer loop retry or dead-letter)."""
        request = decode_generation(message.value())
        async with self._databases.writer() as conn:
            job = await take_job(conn, request.job_id)
        if job is None:
            _log.warning("job_missing", job_id=str(request.job_id))
            return
        if not job["taken"]:
            _log.info("job_already_done", job_id=str(request.job_id), status=job["status"])
            return
        async with self._databases.reader() as conn:
            cursor = await conn.execute(
                "SELECT title, body FROM lessons WHERE id = %s AND course_id = %s",
                (job["lesson_id"], job["course_id"]),
            )
            lesson = await cursor.fetchone()
        if lesson is None:
            raise LessonNotReplicated(f"lesson {job['lesson_id']} is not on the replica")
        result = await self._answer(job, lesson["title"], lesson["body"])
        await self._save(job, result)

    async def _job(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        async with self._databases.writer() as conn:
            cursor = await conn.execute(
                "SELECT id, owner_id, course_id, lesson_id, kind, instructions, status"
                " FROM ai_jobs WHERE id = %s",
                (job_id,),
            )
            return await cursor.fetchone()

    async def _answer(self, job: dict[str, Any], title: str, body: str) -> Any:
        kind, instructions = job["kind"], job["instructions"]
        scope = CacheScope(
            course_id=str(job["course_id"]),
            lesson_id=str(job["lesson_id"]),
            lesson_hash=lesson_hash(title, body),
            kind=kind,
            prompt_version=PROMPT_VERSION,
            model=self._settings.openai_model,
        )
        text = request_text(kind, instructions)
        if self._cache is not None:
            cached = await self._cache.lookup(scope, text)
            if cached is not None:
                try:
                    return parse_answer(kind, cached)
                except ValueError:
                    # Written by an older parser or damaged: drop the scope's entries so the
                    # next request does not meet it again, and ask the model instead.
                    _log.warning("semantic_cache_entry_unusable", job_id=str(job["id"]))
                    await self._cache.invalidate(scope)
        context = (
            await self._context(str(job["course_id"]), f"{title}\n{body}")
            if job["has_documents"]
            else []
        )
        messages = build_messages(kind, title, body, instructions, context)

        async def call() -> str:
            self.model_calls += 1
            return await call_model(self._client, self._settings.openai_model, kind, messages)

        content = await self._breakers.chat.call(call)
        result = parse_answer(kind, content)  # InvalidModelOutput: permanent
        if self._cache is not None:
            await self._cache.store(scope, text, content)
        return result

    async def _context(self, course_id: str, lesson: str) -> list[str]:
        """The course documents' passages closest to the lesson; none if search fails.

        Grounding improves an answer but is not needed for one: a failing embeddings call,
        an open embeddings breaker or a Qdrant outage costs the context, never the job.
        """
        if self._index is None or self._grounding is None or self._settings.grounding_chunks == 0:
            return []
        try:
            (vector,) = await self._breakers.embeddings.call(lambda: self._grounding_vector(lesson))
            hits = await self._index.search(
                course_id=course_id, vector=vector, limit=self._settings.grounding_chunks
            )
        except Exception as error:  # noqa: BLE001 - see the docstring
            _log.warning("grounding_unavailable", course_id=course_id, error=repr(error))
            return []
        return [hit.text for hit in hits]

    async def _grounding_vector(self, lesson: str) -> list[list[float]]:
        assert self._grounding is not None  # noqa: S101 - checked by the caller
        return await self._grounding.embed([lesson[:_GROUNDING_QUERY_CHARS]])

    async def _save(self, job: dict[str, Any], result: Any) -> None:
        draft = "Generated quiz (draft)" if job["kind"] == "quiz" else None
        async with self._databases.writer() as conn:
            await finish_job(conn, job["id"], result, draft_quiz=draft)
        _log.info("job_succeeded", job_id=str(job["id"]), kind=job["kind"])
        self._finished(job, "succeeded")

    def _finished(
        self, job: dict[str, Any], outcome: Literal["succeeded", "dead_lettered"]
    ) -> None:
        """One `generation_finished` event per job (its id comes from the job)."""
        if self._events is None:
            return
        self._events.emit(
            GenerationFinished(
                event_id=stable_event_id("generation_finished", job["id"]),
                user_id=job["owner_id"],
                course_id=job["course_id"],
                props=GenerationFinishedProps(
                    job_id=job["id"], generation_kind=job["kind"], outcome=outcome
                ),
            )
        )

    async def dead_lettered(self, message: Message, failure: Failure) -> None:
        """Record on the job that it is on the DLQ, and why."""
        try:
            job_id = decode_generation(message.value()).job_id
        except PoisonMessage:
            return  # not ours to mark: no job can be read from it
        async with self._databases.writer() as conn:
            await mark_job(
                conn,
                job_id,
                "dead_lettered",
                error=f"{failure.error_class}: {failure.message}",
            )
        job = await self._job(job_id)
        if job is not None:
            self._finished(job, "dead_lettered")


def decode_job_id(value: bytes | None) -> uuid.UUID | None:
    """The job id of a message value, if it has one."""
    try:
        return decode_generation(value).job_id
    except (PoisonMessage, msgspec.DecodeError):
        return None
