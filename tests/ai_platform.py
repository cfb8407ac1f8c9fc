"""The AI pipeline assembled for tests: orchestrator, course app, worker, broker, fakes.

Everything is real except the LLM provider, which is the local OpenAI-compatible test
server (`fake_openai.py`), reached by the real `openai` client through `base_url`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from kafka_broker import Broker
from litestar.testing import AsyncTestClient
from service_harness import REDIS_URL, settings_for

from services.ai.settings import AISettings
from services.ai_orchestrator.app import create_app as create_ai_app
from services.course.app import create_app as create_course_app
from services.generation_worker.worker import run_generation_worker
from services.indexer_worker.worker import run_indexer_worker
from services.runtime.kafka.dlq_tool import DeadLetter, read_dead_letters
from services.runtime.settings import ServiceSettings
from services.runtime.tokens import Principal, Role, TokenIssuer

BREAKER = {
    "BREAKER_MINIMUM_CALLS": "2",
    "BREAKER_FAILURE_RATE": "0.5",
    "BREAKER_WINDOW_SECONDS": "30",
    "BREAKER_OPEN_SECONDS": "1",
    "GENERATION_MAX_ATTEMPTS": "3",
    "GENERATION_RETRY_BASE_SECONDS": "0.05",
    "OPENAI_TIMEOUT_SECONDS": "2",
}


def worker_environ(
    database_url: str, broker: Broker, openai_url: str, **extra: str
) -> dict[str, str]:
    """What the Worker component gives the pod, pointed at the test's services."""
    return {
        "DOCUMENTS_DIR": tempfile.mkdtemp(prefix="eduscale-documents-"),
        "QDRANT_PATH": ":memory:",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": openai_url,
        "HEALTH_PORT": "0",
        **broker.environ(),
        **BREAKER,
        **extra,
    }


async def dead_letters_reach(broker: Broker, topic: str, count: int) -> list[DeadLetter]:
    """Wait until `topic` holds `count` records (the worker dead-letters asynchronously)."""
    with anyio.fail_after(30):
        while True:
            records = await anyio.to_thread.run_sync(read_dead_letters, broker.settings(), topic)
            if len(records) >= count:
                return records
            await asyncio.sleep(0.2)


@dataclass
class Platform:
    """HTTP clients for the course and AI apps, and a running worker."""

    settings: ServiceSettings
    course: httpx.AsyncClient
    ai: httpx.AsyncClient
    instructor: dict[str, str]
    student: dict[str, str]
    environ: dict[str, str]
    other_instructor: dict[str, str] = field(default_factory=dict)
    """An instructor of no course here (the courses are `instructor`'s)."""
    worker: asyncio.Task[None] | None = None
    worker_stop: asyncio.Event = field(default_factory=asyncio.Event)
    indexer: asyncio.Task[None] | None = None
    indexer_stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def start_worker(self) -> None:
        self.worker_stop = asyncio.Event()
        self.worker = asyncio.create_task(run_generation_worker(self.environ, self.worker_stop))

    async def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker_stop.set()
            await asyncio.wait_for(self.worker, 30)
            self.worker = None

    async def start_indexer(self) -> None:
        self.indexer_stop = asyncio.Event()
        self.indexer = asyncio.create_task(run_indexer_worker(self.environ, self.indexer_stop))

    async def stop_indexer(self) -> None:
        if self.indexer is not None:
            self.indexer_stop.set()
            await asyncio.wait_for(self.indexer, 30)
            self.indexer = None

    async def upload(
        self,
        course_id: str,
        data: bytes,
        filename: str = "notes.pdf",
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.ai.post(
            "/ai/documents",
            data={"course_id": course_id},
            files={"file": (filename, data, "application/pdf")},
            headers=dict(headers or self.instructor),
        )

    async def document_reaches(
        self, document_id: str, *statuses: str, within: float = 40
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await self.ai.get(f"/ai/documents/{document_id}", headers=self.instructor)
            body = response.json()
            if body.get("status") in statuses:
                return body
            for task in (self.worker, self.indexer):
                if task is not None and task.done():
                    task.result()  # surface a worker's crash
            await asyncio.sleep(0.1)
        raise AssertionError(f"document {document_id} did not reach {statuses}; last {body}")

    async def search(self, course_id: str, query: str, limit: int = 5) -> httpx.Response:
        return await self.ai.get(
            "/ai/search",
            params={"course_id": course_id, "q": query, "limit": limit},
            headers=self.student,
        )

    async def lesson(
        self, title: str = "Fractions", body: str = "A fraction is a part of a whole."
    ) -> tuple[str, str]:
        course = await self.course.post(
            "/courses", json={"title": f"Maths {title}"}, headers=self.instructor
        )
        assert course.status_code == 201, course.text
        course_id = course.json()["id"]
        lesson = await self.course.post(
            f"/courses/{course_id}/lessons",
            json={"title": title, "body": body},
            headers=self.instructor,
        )
        assert lesson.status_code == 201, lesson.text
        return course_id, lesson.json()["id"]

    async def request(
        self,
        course_id: str,
        lesson_id: str,
        kind: str = "quiz",
        instructions: str = "",
        **headers: str,
    ) -> httpx.Response:
        return await self.ai.post(
            "/ai/generations",
            json={
                "course_id": course_id,
                "lesson_id": lesson_id,
                "kind": kind,
                "instructions": instructions,
            },
            headers={**self.instructor, **headers},
        )

    async def wait_for(self, job_id: str, *statuses: str, within: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + within
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await self.ai.get(f"/ai/jobs/{job_id}", headers=self.instructor)
            body = response.json()
            if body.get("status") in statuses:
                return body
            if self.worker is not None and self.worker.done():
                self.worker.result()  # surface the worker's crash
            await asyncio.sleep(0.1)
        raise AssertionError(f"job {job_id} did not reach {statuses}; last seen {body}")

    async def status_becomes(self, generation: str, within: float = 30) -> dict[str, Any]:
        """Poll `/ai/status` until it reports `generation`; the last status seen."""
        deadline = time.monotonic() + within
        status = await self.status()
        while status["generation"] != generation:
            if time.monotonic() > deadline:
                raise AssertionError(f"/ai/status did not become {generation}: {status}")
            await asyncio.sleep(0.2)
            status = await self.status()
        return status

    async def status(self) -> dict[str, Any]:
        response = await self.ai.get("/ai/status")
        assert response.status_code == 200
        return dict(response.json())


@asynccontextmanager
async def running_platform(
    database_url: str, broker: Broker, openai_url: str, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Platform]:
    """The course app, the orchestrator and one worker, all on the test's services."""
    settings = settings_for(database_url)
    env = worker_environ(database_url, broker, openai_url, **(environ or {}))
    ai = AISettings.from_env(env)
    issuer = TokenIssuer(settings)

    def bearer(role: Role) -> dict[str, str]:
        principal = Principal(user_id=uuid.uuid4(), role=role)
        return {"Authorization": f"Bearer {issuer.issue(principal)}"}

    instructor, student, other_instructor = (
        bearer("instructor"),
        bearer("student"),
        bearer("instructor"),
    )
    async with (
        AsyncTestClient(create_course_app(settings)) as course,
        AsyncTestClient(create_ai_app(settings, ai, broker.settings())) as ai_client,
    ):
        platform = Platform(
            settings, course, ai_client, instructor, student, env, other_instructor=other_instructor
        )
        await platform.start_worker()
        await platform.start_indexer()
        try:
            yield platform
        finally:
            await platform.stop_indexer()
            await platform.stop_worker()
