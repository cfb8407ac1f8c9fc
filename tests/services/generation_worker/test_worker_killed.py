"""`eduscale worker generation` killed (SIGKILL) with 50 jobs in flight, then restarted.

The provider holds every chat answer of the doomed worker (`hang_next`), so all 50 jobs
are provably in flight at the kill and none can finish before it, whatever the machine's
load: no sleep decides the outcome. Then a new worker in the same group must finish
every job, each exactly once in effect, as the instructor sees it.
"""

from __future__ import annotations

import signal
from collections import Counter

import psycopg
import pytest
from ai_platform import Platform, running_platform
from fake_openai import FakeOpenAI
from kafka_broker import Broker
from worker_process import (
    chat_calls_reach,
    committed_offsets,
    offsets_stay_uncommitted,
    worker_process,
)

from contracts.topics import GENERATION_REQUESTED

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

JOBS = 50
COURSES = 5  # course ids are the message keys: the jobs spread over the partitions
# A group of its own (see test_worker_drain.py): the platform's worker just left its group.
GROUP_ID = "generation-killed"
GROUP = {"KAFKA_CONSUMER_GROUP": GROUP_ID, "WORKER_CONCURRENCY": "64"}


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
        # Leaving the block kills the worker (SIGKILL) whatever happened, and waits for it.
        async with worker_process(
            core_db,
            kafka_broker,
            fake_openai.base_url,
            OPENAI_TIMEOUT_SECONDS="300",  # the held calls stay open until the kill
            **GROUP,
        ) as doomed:
            jobs = await queue_jobs(platform)
            await chat_calls_reach(fake_openai, JOBS)  # all 50 in flight at once
            # The doomed worker runs several auto-commit rounds with no job done: none may
            # commit.
            await offsets_stay_uncommitted(kafka_broker, GROUP_ID, GENERATION_REQUESTED.name)
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
        assert (
            sum(committed_offsets(kafka_broker, GROUP_ID, GENERATION_REQUESTED.name).values())
            == JOBS
        )
