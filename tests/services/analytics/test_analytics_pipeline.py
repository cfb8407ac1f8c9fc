"""Learning analytics end to end: real requests -> Kafka (Tansu) -> sink -> chDB -> report.

The Course service runs with the embedded store and a broker, so it also runs the sink in
its own process (chDB's directory admits one process); the report reads what the sink
wrote. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from analytics_harness import eventually, fast_settings, produce_events
from course_harness import LESSON, QUIZ_QUESTIONS, headers_for
from kafka_broker import Broker
from litestar.testing import AsyncTestClient
from service_harness import settings_for

from services.analytics.events import (
    CourseViewed,
    LessonRead,
    LessonReadProps,
    QuizAttempted,
    QuizAttemptedProps,
)
from services.analytics.settings import AnalyticsSettings
from services.analytics.sink_runner import local_sink
from services.analytics.store import open_store
from services.course.app import create_app
from services.runtime.settings import ServiceSettings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]


@asynccontextmanager
async def course_service(
    settings: ServiceSettings, analytics: AnalyticsSettings, broker: Broker | None
) -> AsyncIterator[httpx.AsyncClient]:
    kafka = broker.settings() if broker is not None else None
    async with AsyncTestClient(create_app(settings, analytics, kafka)) as client:
        yield client


async def authored_course(client: httpx.AsyncClient, instructor: dict[str, str]) -> dict[str, str]:
    course = (await client.post("/courses", json={"title": "Maths"}, headers=instructor)).json()
    lesson = (
        await client.post(f"/courses/{course['id']}/lessons", json=LESSON, headers=instructor)
    ).json()
    quiz = (
        await client.post(
            f"/courses/{course['id']}/quizzes",
            json={"lesson_id": lesson["id"], "questions": QUIZ_QUESTIONS},
            headers=instructor,
        )
    ).json()
    return {"course": course["id"], "lesson": lesson["id"], "quiz": quiz["id"]}


async def stored(client: httpx.AsyncClient, sql: str) -> list[dict[str, Any]]:
    """Rows of `sql` on the service's own analytics store."""
    store = client.app.state.analytics_reports.store  # type: ignore[attr-defined]
    return list(await store.query(sql))


def today() -> str:
    return datetime.now(UTC).date().isoformat()


async def report(client: httpx.AsyncClient, course_id: str, headers: Any, **params: str) -> Any:
    response = await client.get(f"/courses/{course_id}/analytics", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_events_from_real_requests_become_the_report(
    core_db: str, kafka_broker: Broker, tmp_path: Path
) -> None:
    settings = settings_for(core_db)
    instructor = headers_for(settings, "instructor")
    ann, bob = uuid.uuid4(), uuid.uuid4()
    async with course_service(settings, fast_settings(tmp_path), kafka_broker) as client:
        ids = await authored_course(client, instructor)
        for learner in (ann, bob):
            headers = headers_for(settings, "student", learner)
            assert (
                await client.get(f"/courses/{ids['course']}", headers=headers)
            ).status_code == 200
            read = await client.get(
                f"/courses/{ids['course']}/lessons/{ids['lesson']}", headers=headers
            )
            assert read.status_code == 200
        await client.get(f"/courses/{ids['course']}")  # anonymous: a view, not a learner
        ann_headers = headers_for(settings, "student", ann)
        await client.get(f"/courses/{ids['course']}/lessons/{ids['lesson']}", headers=ann_headers)
        scores = []
        for answers in ([0, 1, 0], [0, 0, 1]):  # 3 right, then 1 right, of 3
            attempt = await client.post(
                f"/quizzes/{ids['quiz']}/attempts", json={"answers": answers}, headers=ann_headers
            )
            assert attempt.status_code == 201
            scores.append(attempt.json()["score"] / 3)

        body = await eventually(
            lambda: report(client, ids["course"], instructor),
            lambda body: body["series"][-1]["quiz_attempts"] == 2,
        )
        assert (body["from"], body["to"], body["bucket"]) == (
            (datetime.now(UTC).date() - timedelta(days=29)).isoformat(),
            today(),
            "day",
        )
        assert len(body["series"]) == 30
        assert all(point["lessons_read"] == 0 for point in body["series"][:-1])
        assert body["series"][-1] == {
            "start": today(),
            "active_learners": 2,
            "lessons_read": 3,
            "quiz_attempts": 2,
            "mean_score": round(sum(scores) / 2, 4),
        }
        emitted = (await client.get("/health/analytics")).json()
        assert emitted["accepted"] == emitted["delivered"] == 8  # 3 views, 3 reads, 2 attempts
        assert emitted["dropped_buffer_full"] == emitted["dropped_undeliverable"] == 0
        rows = await stored(client, "SELECT kind, count() AS n FROM analytics.events GROUP BY kind")
        assert sorted((row["kind"], row["n"]) for row in rows) == [
            ("course_viewed", 3),
            ("lesson_read", 3),
            ("quiz_attempted", 2),
        ]


def learning_day(course: uuid.UUID, day: datetime) -> list[Any]:
    """A known day of a course: 3 learners, 4 reads, 3 attempts (1/3, 2/3, 3/3)."""
    users = [uuid.uuid4() for _ in range(3)]
    reads = [
        LessonRead(
            user_id=users[index % 3],
            course_id=course,
            occurred_at=day + timedelta(minutes=index),
            props=LessonReadProps(lesson_id=uuid.uuid4()),
        )
        for index in range(4)
    ]
    attempts = [
        QuizAttempted(
            user_id=users[index],
            course_id=course,
            occurred_at=day + timedelta(hours=1, minutes=index),
            props=QuizAttemptedProps(
                quiz_id=uuid.uuid4(), attempt_id=uuid.uuid4(), score=index + 1, total=3
            ),
        )
        for index in range(3)
    ]
    return [*reads, *attempts, CourseViewed(user_id=None, course_id=course, occurred_at=day)]


async def test_a_redelivered_batch_does_not_double_the_counts(
    core_db: str, kafka_broker: Broker, tmp_path: Path
) -> None:
    settings = settings_for(core_db)
    owner = uuid.uuid4()
    instructor = headers_for(settings, "instructor", owner)
    monday = datetime(2026, 11, 2, 9, tzinfo=UTC)
    async with course_service(settings, fast_settings(tmp_path), kafka_broker) as client:
        course = uuid.UUID(
            (await client.post("/courses", json={"title": "T"}, headers=instructor)).json()["id"]
        )
        first, second = (
            learning_day(course, monday),
            learning_day(course, monday + timedelta(days=2)),
        )
        produce_events(kafka_broker, first + second)
        params = {"from": "2026-11-01", "to": "2026-11-08"}
        expected = await eventually(
            lambda: report(client, str(course), instructor, **params),
            lambda body: sum(p["quiz_attempts"] for p in body["series"]) == 6,
        )
    # The sink's offsets are committed; a new consumer group reads the whole topic again,
    # exactly what a sink that died before committing would see after a restart.
    redelivery = fast_settings(tmp_path)
    store = await open_store(redelivery)
    try:
        replay = kafka_broker.settings(consumer_group="replay")
        async with local_sink(redelivery, replay, store) as sink:
            await eventually(lambda: asyncio.sleep(0, sink.duplicates), lambda n: n == 16)
            assert sink.inserted == 0
    finally:
        await store.close()
    produce_events(kafka_broker, first[:3])  # and the same events sent twice by a producer
    async with course_service(settings, fast_settings(tmp_path), kafka_broker) as client:
        await asyncio.sleep(1.5)
        body = await report(client, str(course), instructor, **params)
        assert body == expected
        daily = {p["start"]: p for p in body["series"]}
        assert daily["2026-11-02"] == {
            "start": "2026-11-02",
            "active_learners": 3,
            "lessons_read": 4,
            "quiz_attempts": 3,
            "mean_score": round((1 / 3 + 2 / 3 + 1) / 3, 4),
        }
        assert daily["2026-11-04"]["quiz_attempts"] == 3
        assert daily["2026-11-03"]["lessons_read"] == 0
        weekly = await report(client, str(course), instructor, bucket="week", **params)
        assert [p["start"] for p in weekly["series"]] == ["2026-11-01", "2026-11-02"]
        assert weekly["series"][1]["active_learners"] == 6  # two days, six different people
        assert weekly["series"][1]["quiz_attempts"] == 6
        assert await stored(client, "SELECT count() AS n FROM analytics.events") == [{"n": 16}]
