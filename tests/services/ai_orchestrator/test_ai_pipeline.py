"""The AI generation pipeline end to end, under the faults it is built for.

Real broker (Tansu), real PostgreSQL and Redis, Qdrant local mode, and the local
OpenAI-compatible server standing for the provider.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from ai_platform import dead_letters_reach, running_platform
from confluent_kafka import Producer
from fake_openai import FakeOpenAI
from kafka_broker import Broker, free_port
from litestar.testing import AsyncTestClient
from service_harness import replicate
from worker_process import chat_calls_reach, offsets_stay_uncommitted, worker_process

from contracts.topics import GENERATION_REQUESTED
from services.ai.settings import PROMPT_VERSION
from services.auth.app import create_app as create_auth_app
from services.generation_worker import handler as generation_handler
from services.runtime.kafka.settings import producer_config
from services.runtime.settings import ServiceSettings
from services.runtime.tokens import Principal, TokenIssuer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


async def eduscale(*args: str, env: Mapping[str, str]) -> Run:
    """`eduscale <args>` as an operator types it, in a child process."""
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "infra.cli", *args], env=env, check=False
        )
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


def draft_quizzes(database_url: str, job_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM quizzes WHERE source_job_id = %s AND status = 'draft'", (job_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


FRESH_GROUP = {"KAFKA_CONSUMER_GROUP": "generation-restarted"}
"""For a worker that replaces the platform's: a group of its own. The platform's worker
is stopped before its group has settled, and Tansu then holds that group's next join
until the rebalance timeout (minutes); a new group is assigned at once."""


async def accounts_work(settings: ServiceSettings) -> None:
    """Register, log in and read one's profile: Auth needs nothing of the AI tier."""
    account = {"email": "ann@example.com", "password": "correct horse battery staple"}
    async with AsyncTestClient(create_auth_app(settings)) as auth:
        registered = await auth.post("/auth/register", json={**account, "display_name": "Ann"})
        assert registered.status_code == 201, registered.text
        login = await auth.post("/auth/login", json=account)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        me = await auth.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["email"] == account["email"]


async def test_a_quiz_request_becomes_a_draft_quiz(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        assert (await platform.status())["generation"] == "available"
        course_id, lesson_id = await platform.lesson()
        accepted = await platform.request(course_id, lesson_id, instructions="Focus on halves")
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["status"] == "queued"
        job_id = accepted.json()["job_id"]
        again = await platform.request(course_id, lesson_id, **{"Idempotency-Key": "k-1"})
        same = await platform.request(course_id, lesson_id, **{"Idempotency-Key": "k-1"})
        assert again.json()["job_id"] == same.json()["job_id"] != job_id
        job = await platform.wait_for(job_id, "succeeded")
        questions = job["result"]["questions"]
        assert questions
        assert all(0 <= q["answer_index"] < len(q["choices"]) for q in questions)
        assert job["attempts"] == 1
        assert draft_quizzes(core_db, job_id) == 1
        # Only the owner or the course's instructor may read a job.
        assert (
            await platform.ai.get(f"/ai/jobs/{job_id}", headers=platform.student)
        ).status_code == 403


async def test_unknown_lessons_and_bad_requests_are_refused(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        other_course, _ = await platform.lesson("Decimals")
        assert (await platform.request(other_course, lesson_id)).status_code == 404
        bad = await platform.request(course_id, lesson_id, kind="poem")
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "kind"
        anonymous = await platform.ai.post(
            "/ai/generations", json={"course_id": course_id, "lesson_id": lesson_id, "kind": "quiz"}
        )
        assert anonymous.status_code == 401


@pytest.mark.parametrize("fault", ["errors", "timeouts"])
async def test_a_failing_provider_opens_the_breaker_and_healing_closes_it(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI, fault: str
) -> None:
    # A hung provider is only a failure once the client gives up: a tight timeout.
    environ = {"OPENAI_TIMEOUT_SECONDS": "1"} if fault == "timeouts" else {}
    async with running_platform(
        core_db, kafka_broker, fake_openai.base_url, environ=environ
    ) as platform:
        course_id, lesson_id = await platform.lesson()
        if fault == "errors":
            fake_openai.fail_next(500, times=1000, only="chat")
        else:
            fake_openai.hang_next(times=1000, only="chat")
        accepted = await platform.request(course_id, lesson_id, **{"Idempotency-Key": "first"})
        first = accepted.json()["job_id"]
        status = await platform.status_becomes("degraded")
        assert status["retry_after_s"] >= 1
        refused = await platform.request(course_id, lesson_id)
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert refused.headers["content-type"] == "application/problem+json"
        # A client retrying the accepted request (its answer lost) still learns its job.
        retried = await platform.request(course_id, lesson_id, **{"Idempotency-Key": "first"})
        assert retried.status_code == 202, retried.text
        assert retried.json()["job_id"] == first
        # Reading, quizzes and accounts keep working.
        assert (await platform.course.get(f"/courses/{course_id}")).status_code == 200
        lesson = await platform.course.get(
            f"/courses/{course_id}/lessons/{lesson_id}", headers=platform.student
        )
        assert lesson.status_code == 200
        await accounts_work(platform.settings)
        # The provider heals: the held message probes, the breaker closes, the job completes.
        fake_openai.reset()
        job = await platform.wait_for(first, "succeeded")
        assert job["status"] == "succeeded"
        assert (await platform.status())["generation"] == "available"


async def test_poison_and_permanent_failures_are_dead_lettered_then_replayed_once(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        producer = Producer(producer_config(kafka_broker.settings(), client_id="test"))
        producer.produce(GENERATION_REQUESTED.name, key=b"x", value=b"\x00 garbage")
        assert producer.flush(10) == 0
        course_id, lesson_id = await platform.lesson()
        fake_openai.next_chat_content = (
            '{"questions": [{"prompt": "?", "choices": ["a", "b"], "answer_index": 7}]}'
        )
        job_id = (await platform.request(course_id, lesson_id)).json()["job_id"]
        job = await platform.wait_for(job_id, "dead_lettered")
        assert "InvalidModelOutput" in job["error"]
        assert job["attempts"] == 1  # permanent: not retried
        fake_openai.next_chat_content = None  # the cause is fixed
        calls_before = fake_openai.chat_calls
        env = {**os.environ, **kafka_broker.environ()}
        dlq = f"{GENERATION_REQUESTED.name}.dlq"
        await dead_letters_reach(kafka_broker, dlq, 2)
        listing = await eduscale("dlq", "list", dlq, env=env)
        assert listing.returncode == 0, listing.stderr
        assert "2 dead-lettered message(s)" in listing.stdout
        assert "PoisonMessage" in listing.stdout
        assert "InvalidModelOutput" in listing.stdout
        dry = await eduscale("dlq", "replay", dlq, "--all", "--dry-run", env=env)
        assert "2 message(s) would replay" in dry.stdout, dry.stdout + dry.stderr
        await asyncio.sleep(0.5)
        assert fake_openai.chat_calls == calls_before  # a dry run sends nothing
        replayed = await eduscale("dlq", "replay", dlq, "--all", env=env)
        assert replayed.returncode == 0, replayed.stderr
        assert "2 message(s) replayed" in replayed.stdout
        job = await platform.wait_for(job_id, "succeeded")
        assert draft_quizzes(core_db, job_id) == 1
        assert fake_openai.chat_calls == calls_before + 1
        # The poison message is still poison: replayed, it is dead-lettered anew (a third
        # record); a second replay sends only that one, never the job that succeeded.
        await dead_letters_reach(kafka_broker, dlq, 3)
        again = await eduscale("dlq", "replay", dlq, "--all", env=env)
        assert "1 message(s) replayed" in again.stdout, again.stdout + again.stderr
        await dead_letters_reach(kafka_broker, dlq, 4)
        assert fake_openai.chat_calls == calls_before + 1
        assert draft_quizzes(core_db, job_id) == 1


async def test_requests_while_the_broker_is_down_wait_in_the_outbox(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        kafka_broker.outage()
        accepted = [
            await platform.request(course_id, lesson_id, instructions=f"variant {i}")
            for i in range(3)
        ]
        assert [r.status_code for r in accepted] == [202, 202, 202]
        await asyncio.sleep(1)
        for response in accepted:
            job = await platform.wait_for(response.json()["job_id"], "queued", within=5)
            assert job["status"] == "queued"
        kafka_broker.recover()  # the same address; the outbox delivers what waited
        for response in accepted:
            await platform.wait_for(response.json()["job_id"], "succeeded", within=90)


async def test_a_broker_outage_longer_than_the_grace_period_degrades_generation(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(
        core_db, kafka_broker, fake_openai.base_url, environ={"BROKER_GRACE_SECONDS": "1"}
    ) as platform:
        course_id, lesson_id = await platform.lesson()
        kafka_broker.outage()
        waiting = await platform.request(course_id, lesson_id)
        assert waiting.status_code == 202  # the outage has just begun: absorbed
        status = await platform.status_becomes("degraded")
        assert "broker" in status["reason"]
        refused = await platform.request(course_id, lesson_id)
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        kafka_broker.recover()
        await platform.wait_for(waiting.json()["job_id"], "succeeded", within=90)
        await platform.status_becomes("available", within=10)


async def test_a_worker_killed_mid_message_does_not_lose_or_repeat_the_job(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        await platform.stop_worker()  # this test runs its own worker process first
        course_id, lesson_id = await platform.lesson()
        fake_openai.hang_next(only="chat")  # the call is in flight when the worker dies
        # A timeout longer than the test waits: the call is still open at the kill. Leaving
        # the block kills the worker (SIGKILL) whatever happened, and waits for it to exit.
        async with worker_process(
            core_db,
            kafka_broker,
            fake_openai.base_url,
            OPENAI_TIMEOUT_SECONDS="60",
            **FRESH_GROUP,
        ):
            job_id = (await platform.request(course_id, lesson_id)).json()["job_id"]
            await platform.wait_for(job_id, "running", within=90)
            await chat_calls_reach(fake_openai, 1, within=30)
            # The background commit runs several times while the message is open:
            # had its offset been stored on arrival, the group would now have it.
            await offsets_stay_uncommitted(
                kafka_broker, FRESH_GROUP["KAFKA_CONSUMER_GROUP"], GENERATION_REQUESTED.name
            )
        platform.environ.update(FRESH_GROUP)  # the doomed worker's group: it resumes there
        await platform.start_worker()
        job = await platform.wait_for(job_id, "succeeded", within=60)
        assert job["attempts"] == 2  # redelivered once
        assert fake_openai.chat_calls == 2
        assert draft_quizzes(core_db, job_id) == 1


async def test_paraphrased_requests_are_served_from_the_semantic_cache(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        first = (
            await platform.request(
                course_id, lesson_id, instructions="Make a short quiz about halves"
            )
        ).json()
        await platform.wait_for(first["job_id"], "succeeded")
        calls = fake_openai.chat_calls
        paraphrase = (
            await platform.request(
                course_id, lesson_id, instructions="Create a brief quiz on halves"
            )
        ).json()
        cached = await platform.wait_for(paraphrase["job_id"], "succeeded")
        assert fake_openai.chat_calls == calls  # no chat call
        assert cached["result"]["questions"]
        other_course, other_lesson = await platform.lesson()  # same text, another course
        other = (
            await platform.request(
                other_course, other_lesson, instructions="Make a short quiz about halves"
            )
        ).json()
        await platform.wait_for(other["job_id"], "succeeded")
        assert fake_openai.chat_calls == calls + 1
        edited = await platform.course.post(
            f"/courses/{course_id}/lessons",
            json={"title": "Halves", "body": "Another lesson"},
            headers=platform.instructor,
        )
        another_lesson = (
            await platform.request(
                course_id, edited.json()["id"], instructions="Make a short quiz about halves"
            )
        ).json()
        await platform.wait_for(another_lesson["job_id"], "succeeded")
        assert fake_openai.chat_calls == calls + 2


async def test_without_an_api_key_generation_is_degraded(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(
        core_db, kafka_broker, fake_openai.base_url, environ={"OPENAI_API_KEY": ""}
    ) as platform:
        status = await platform.status()
        assert status["generation"] == "degraded"
        assert "OPENAI_API_KEY" in status["reason"]
        course_id, lesson_id = await platform.lesson()
        assert (await platform.request(course_id, lesson_id)).status_code == 503


async def test_a_redelivered_message_of_a_finished_job_changes_nothing(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        job_id = (await platform.request(course_id, lesson_id)).json()["job_id"]
        await platform.wait_for(job_id, "succeeded")
        calls = fake_openai.chat_calls
        # The same message again, as a redelivery or a replay would bring it.
        with psycopg.connect(core_db) as conn:
            (value,) = conn.execute(
                "SELECT value FROM outbox WHERE topic = %s", (GENERATION_REQUESTED.name,)
            ).fetchone() or (None,)
        assert value is not None
        producer = Producer(producer_config(kafka_broker.settings(), client_id="test"))
        producer.produce(GENERATION_REQUESTED.name, key=course_id.encode(), value=bytes(value))
        assert producer.flush(10) == 0
        # A later job of the course goes to the same partition: once it is done, the
        # worker has handled the copy before it.
        later = await platform.request(course_id, lesson_id, kind="summary")
        await platform.wait_for(later.json()["job_id"], "succeeded")
        job = (await platform.ai.get(f"/ai/jobs/{job_id}", headers=platform.instructor)).json()
        assert job["attempts"] == 1
        assert fake_openai.chat_calls == calls + 1  # the summary's call only
        assert draft_quizzes(core_db, job_id) == 1


async def test_an_edited_lesson_or_a_new_prompt_is_never_served_from_the_cache(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()

        async def generate() -> dict[str, Any]:
            accepted = await platform.request(
                course_id, lesson_id, kind="summary", instructions="Keep it short"
            )
            return await platform.wait_for(accepted.json()["job_id"], "succeeded")

        await generate()
        calls = fake_openai.chat_calls
        await generate()
        assert fake_openai.chat_calls == calls  # the same request: served from the cache
        # The instructor edits the lesson in place: same lesson id, new content.
        with psycopg.connect(core_db) as conn:
            conn.execute(
                "UPDATE lessons SET body = %s WHERE id = %s",
                ("Denominators count the equal parts of a whole.", lesson_id),
            )
        edited = await generate()
        assert fake_openai.chat_calls == calls + 1
        assert "Denominators" in edited["result"]["text"]
        # New prompts ship with a new prompt version: answers of the old ones are not reused.
        monkeypatch.setattr(generation_handler, "PROMPT_VERSION", PROMPT_VERSION + "-next")
        await generate()
        assert fake_openai.chat_calls == calls + 2


async def test_the_worker_serves_its_semantic_cache_counts(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        # One health port per process: the generation worker gets it alone.
        await platform.stop_indexer()
        await platform.stop_worker()
        port = free_port()
        platform.environ.update(HEALTH_PORT=str(port), **FRESH_GROUP)
        await platform.start_worker()
        course_id, lesson_id = await platform.lesson()
        for _ in range(2):  # a miss, then a hit
            accepted = await platform.request(course_id, lesson_id, instructions="Keep it short")
            await platform.wait_for(accepted.json()["job_id"], "succeeded")
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = [line.split() for line in response.text.splitlines()]
        counts = {sample[0]: float(sample[1]) for sample in samples if sample[0] != "#"}
        assert counts["eduscale_semantic_cache_hits_total"] == 1
        assert counts["eduscale_semantic_cache_misses_total"] == 1
        assert counts["eduscale_semantic_cache_near_misses_total"] == 0


async def test_only_the_courses_instructor_generates_quizzes_and_reads_every_job_of_it(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        issuer = TokenIssuer(platform.settings)
        stranger = {
            "Authorization": "Bearer "
            + issuer.issue(Principal(user_id=uuid.uuid4(), role="instructor"))
        }
        # A quiz becomes a draft of the course: not for a student, nor another instructor.
        for caller in (platform.student, stranger):
            refused = await platform.request(course_id, lesson_id, **caller)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
        with psycopg.connect(core_db) as conn:
            assert conn.execute("SELECT count(*) FROM ai_jobs").fetchone() == (0,)
        # A summary is the student's own; the course's instructor may read it too.
        asked = await platform.request(course_id, lesson_id, kind="summary", **platform.student)
        assert asked.status_code == 202, asked.text
        job_id = asked.json()["job_id"]
        for reader in (platform.student, platform.instructor):
            assert (await platform.ai.get(f"/ai/jobs/{job_id}", headers=reader)).status_code == 200
        assert (await platform.ai.get(f"/ai/jobs/{job_id}", headers=stranger)).status_code == 403
        await platform.wait_for(job_id, "succeeded")


async def test_the_worker_reads_the_lesson_from_the_replica(
    core_db, replica_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(
        core_db, kafka_broker, fake_openai.base_url, environ={"DATABASE_REPLICA_URLS": replica_db}
    ) as platform:
        course_id, lesson_id = await platform.lesson(body="Numerators count the parts taken.")
        replicate(core_db, replica_db)
        # The copies differ, as under replication lag: the answer shows which was read.
        with psycopg.connect(replica_db) as conn:
            conn.execute(
                "UPDATE lessons SET body = %s WHERE id = %s",
                ("Denominators count the equal parts.", lesson_id),
            )
        accepted = await platform.request(course_id, lesson_id, kind="summary")
        job = await platform.wait_for(accepted.json()["job_id"], "succeeded")
        assert "Denominators" in job["result"]["text"]
        assert "Numerators" not in job["result"]["text"]
