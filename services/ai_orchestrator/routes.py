"""HTTP handlers of the AI orchestrator."""

import uuid
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody

from services.ai.jobs import GenerationRequest, Job, create_job, job_by_key, load_job_for
from services.ai_orchestrator.runtime import AIRuntime
from services.ai_orchestrator.status import GenerationStatus, generation_status
from services.analytics.emitter import EventEmitter
from services.analytics.events import GenerationProps, GenerationRequested, stable_event_id
from services.runtime.errors import Unavailable
from services.runtime.resources import Resources
from services.runtime.tokens import Principal

__all__ = ["AIController", "Accepted"]


class Accepted(msgspec.Struct, kw_only=True):
    """A generation request was accepted; poll the job."""

    job_id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed", "dead_lettered"]


class AIController(Controller):
    """Generation status, requests and jobs."""

    path = "/ai"
    tags = ["ai"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/status", operation_id="ai_status", summary="Whether generation is available")
    async def status(
        self, resources: NamedDependency[Resources], ai: NamedDependency[AIRuntime]
    ) -> GenerationStatus:
        """The UI disables "Generate" while this says degraded."""
        return await generation_status(ai.settings, resources.redis, ai.relay.health)

    @post(
        "/generations",
        operation_id="request_generation",
        summary="Ask for a quiz, summary or explanation of a lesson",
        status_code=202,
    )
    async def generate(  # noqa: PLR0917 - Litestar injects these by name
        self,
        data: JSONBody[GenerationRequest],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
        ai: NamedDependency[AIRuntime],
        events: NamedDependency[EventEmitter],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=200)
        ] = None,
    ) -> Accepted:
        """202 with the job; the same Idempotency-Key returns the same job; 503 if degraded.

        A quiz becomes a draft of the course, so only the course's instructor may ask for
        one (403 otherwise). A retry with a known key is answered before the status is
        checked: its job was accepted already, and a client retrying after a lost response
        must learn its id even while new requests are refused.
        """
        job = None
        if idempotency_key is not None:
            async with resources.databases.writer() as conn:
                job = await job_by_key(conn, principal, idempotency_key)
        if job is None:
            status = await generation_status(ai.settings, resources.redis, ai.relay.health)
            if status.generation == "degraded":
                raise Unavailable(
                    status.reason or "Generation is unavailable",
                    retry_after=status.retry_after_s or 30,
                )
            async with resources.databases.writer() as conn:
                job = await create_job(conn, principal, data, idempotency_key)
        events.emit(
            GenerationRequested(
                # One event per job: a retried request (same Idempotency-Key) adds none.
                event_id=stable_event_id("generation_requested", job.job_id),
                user_id=principal.user_id,
                course_id=job.course_id,
                props=GenerationProps(job_id=job.job_id, generation_kind=job.kind),
            )
        )
        return Accepted(job_id=job.job_id, status=job.status)

    @get("/jobs/{job_id:uuid}", operation_id="get_job", summary="A generation job")
    async def job(
        self,
        job_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
    ) -> Job:
        """Only the job's owner or the course's instructor may read it."""
        async with resources.databases.writer() as conn:
            return await load_job_for(conn, job_id, principal)
