"""`eduscale worker generation` killed (SIGKILL) with 50 jobs in flight, then restarted.

The provider holds every chat answer of the doomed worker (`hang_next`), so all 50 jobs
are provably in flight at the kill and none can finish before it, whatever the machine's
load: no sleep decides the outcome. Then a new worker in the same group must finish
every job, each exactly once in effect, as the instructor sees it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter

import anyio
import psycopg
import pytest
from ai_platform import Platform, running_platform, worker_environ
from confluent_kafka import Consumer, TopicPartition
from fake_openai import FakeOpenAI
from kafka_broker import PARTITIONS, Broker

from contracts.topics import GENERATION_REQUESTED
from services.runtime.kafka.settings import consumer_config

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

JOBS = 50
COURSES = 5  # course ids are the message keys: the jobs spread over the partitions
# A group of its own (see test_worker_drain.py): the platform's worker just left its group.
GROUP = {"KAFKA_CONSUMER_GROUP": "generation-killed", "WORKER_CONCURRENCY": "64"}


def committed(broker: Broker) -> dict[int, int]:
    """The group's committed offset of each partition that has one."""
    probe = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": GROUP["KAFKA_CONSUMER_GROUP"]}
    )
    try:
        partitions = [TopicPartition(GENERATION_REQUESTED.name, p) for p in range(PARTITIONS)]
        return {
            tp.partition: tp.offset
            for tp in probe.committed(partitions, timeout=10)
            if tp.offset >= 0
        }
    finally:
        probe.close()


async def chat_calls_reach(fake: FakeOpenAI, count: int, within: float = 60) -> None:
    with anyio.fail_after(within):
        while True:
            if fake.chat_calls >= count:
                return
            await asyncio.sleep(0.05)


async def nothing_committed_for(broker: Broker, seconds: float) -> None:
    """The doomed worker runs several auto-commit rounds with no job done: none may commit."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        offsets = await anyio.to_thread.run_sync(committed, broker)
        assert offsets == {}, f"offsets committed while every job was in flight: {offsets}"
        await asyncio.sleep(0.2)


async def queue_jobs(platform: Platform) -> dict[str, str]:
    """One quiz job per lesson (distinct lessons: no semantic-cache hit); job id -> title."""
    jobs: dict[str, str] = {}
    for course in range(COURSES):
        course_id = None
        for number in range(JOBS // COURSES):
            title = f"Lesson {course}-{number}"
            if course_id is None:
                course_id, lesson_id = await platform.lesson(title, f"{title} is about {number}.")
            else:
                lesson = await platform.course.post(
                    f"/courses/{course_id}/lessons",
                    json={"title": title, "body": f"{title} is about {number}."},
                    headers=platform.instructor,
                )
                assert lesson.status_code == 201, lesson.text
                lesson_id = lesson.json()["id"]
            response = await platform.request(course_id, lesson_id)
            assert response.status_code == 202, response.text
            jobs[response.json()["job_id"]] = title
    return jobs


def job_rows(database_url: str, job_ids: list[str]) -> dict[str, tuple[str, int, int]]:
    """Job id -> (status, attempts, draft quizzes made from it)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT j.id::text, j.status, j.attempts,"
            " (SELECT count(*) FROM quizzes q WHERE q.source_job_id = j.id)"
            " FROM ai_jobs j WHERE j.id::text = ANY(%s)",
            (job_ids,),
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def test_a_worker_killed_with_50_jobs_in_flight_loses_none_and_repeats_none(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        await platform.stop_worker()  # the doomed worker is a process of its own
        fake_openai.hang_next(JOBS, only="chat")  # held until the kill: none can finish
        env = {
            **os.environ,
            **worker_environ(
                core_db,
                kafka_broker,
                fake_openai.base_url,
                OPENAI_TIMEOUT_SECONDS="300",  # the held calls stay open until the kill
                **GROUP,
            ),
        }
        async with await anyio.open_process(
            [sys.executable, "-m", "infra.cli", "worker", "generation"],
            env=env,
            stdout=None,
            stderr=None,
        ) as doomed:
            try:
                jobs = await queue_jobs(platform)
                await chat_calls_reach(fake_openai, JOBS)  # all 50 in flight at once
                config = consumer_config(kafka_broker.settings(), group="probe", client_id="p")
                await nothing_committed_for(
                    kafka_broker, 3 * int(config["auto.commit.interval.ms"]) / 1000
                )
            finally:  # killed whatever happened: leaving the block waits for it to exit
                if doomed.returncode is None:
                    doomed.send_signal(signal.SIGKILL)
                await doomed.wait()
        assert doomed.returncode == -signal.SIGKILL
        assert {status for status, _, _ in job_rows(core_db, list(jobs)).values()} == {"running"}
        held = fake_openai.chat_calls

        platform.environ.update(GROUP)  # the killed worker's group: it resumes there
        await platform.start_worker()
        for job_id in jobs:
            await platform.wait_for(job_id, "succeeded", within=120)
        # Every message was handled once more, and no job was done twice.
        rows = job_rows(core_db, list(jobs))
        assert rows == dict.fromkeys(jobs, ("succeeded", 2, 1))
        asked = Counter(
            title
            for request in fake_openai.chat_requests
            for title in jobs.values()
            if f"title={title!r}" in request["messages"][-1]["content"]
        )
        assert held == JOBS
        assert fake_openai.chat_calls == 2 * JOBS
        assert asked == dict.fromkeys(jobs.values(), 2)  # once held, once answered
        # The new member commits everything as it leaves: a further restart redoes nothing.
        await platform.stop_worker()
        assert sum(committed(kafka_broker).values()) == JOBS
