"""The AI generation pipeline end to end, under the faults it is built for.

Real broker (Tansu), real PostgreSQL and Redis, Qdrant local mode, and the local
OpenAI-compatible server standing for the provider.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
import psycopg
import pytest
from ai_platform import dead_letters_reach, running_platform, worker_environ
from confluent_kafka import Producer
from fake_openai import FakeOpenAI
from kafka_broker import Broker

from services.messaging.settings import producer_config
from services.topics import GENERATION_REQUESTED

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


async def test_a_failing_provider_opens_the_breaker_and_healing_closes_it(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        fake_openai.fail_next(500, times=1000, only="chat")
        first = (await platform.request(course_id, lesson_id)).json()["job_id"]
        for _ in range(200):
            status = await platform.status()
            if status["generation"] == "degraded":
                break
            await asyncio.sleep(0.05)
        assert status["generation"] == "degraded", status
        assert status["retry_after_s"] >= 1
        refused = await platform.request(course_id, lesson_id)
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert refused.headers["content-type"] == "application/problem+json"
        # Reading and quizzes keep working.
        assert (await platform.course.get(f"/courses/{course_id}")).status_code == 200
        lesson = await platform.course.get(
            f"/courses/{course_id}/lessons/{lesson_id}", headers=platform.student
        )
        assert lesson.status_code == 200
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
        fake_openai.latency_seconds = 30  # the call is in flight when the worker dies
        env = {**os.environ, **worker_environ(core_db, kafka_broker, fake_openai.base_url)}
        async with await anyio.open_process(
            [sys.executable, "-m", "infra.cli", "worker", "generation"],
            env=env,
            stdout=None,
            stderr=None,
        ) as doomed:
            try:
                job_id = (await platform.request(course_id, lesson_id)).json()["job_id"]
                await platform.wait_for(job_id, "running", within=40)
            finally:  # killed whatever happened: leaving the block waits for it to exit
                doomed.send_signal(signal.SIGKILL)
                await doomed.wait()
        fake_openai.latency_seconds = 0
        await platform.start_worker()
        job = await platform.wait_for(job_id, "succeeded", within=60)
        assert job["attempts"] == 2  # redelivered once
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
