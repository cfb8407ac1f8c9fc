"""The Course service over HTTP: roles, caching, and which database serves each read.

The writer and the replica are two real databases; the test "replicates" by copying, so
a read that must come from the replica visibly does (it misses rows not yet copied).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from course_harness import LESSON, QUIZ_QUESTIONS, headers_for
from litestar.testing import AsyncTestClient
from service_harness import database_url, environment_for, replicate, settings_for

from services.auth.app import create_app as create_auth_app
from services.course.app import create_app
from services.course.content_cache import course_key
from services.runtime.settings import ServiceSettings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]


@pytest.fixture
def settings(core_db: str) -> ServiceSettings:
    return settings_for(core_db)


@pytest.fixture
async def client(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def instructor(settings) -> Any:
    return headers_for(settings, "instructor")


@pytest.fixture
def student(settings) -> Any:
    return headers_for(settings, "student")


async def new_course(client, headers, title="Maths 101", description="Numbers") -> Any:
    response = await client.post(
        "/courses", json={"title": title, "description": description}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def new_lesson(client, headers, course_id, **body) -> Any:
    response = await client.post(
        f"/courses/{course_id}/lessons", json={**LESSON, **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def new_quiz(client, headers, course_id, lesson_id) -> Any:
    response = await client.post(
        f"/courses/{course_id}/quizzes",
        json={"lesson_id": lesson_id, "questions": QUIZ_QUESTIONS},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_whole_journey_through_auth_and_course(core_db: str) -> None:
    settings = settings_for(core_db)
    async with (
        AsyncTestClient(create_auth_app(settings)) as auth,
        AsyncTestClient(create_app(settings)) as course,
    ):
        tokens = {}
        for email, role in (("ivy@example.com", "instructor"), ("sam@example.com", "student")):
            registered = await auth.post(
                "/auth/register",
                json={
                    "email": email,
                    "password": "a long enough password",
                    "display_name": email,
                    "role": role,
                },
            )
            assert registered.status_code == 201
            login = await auth.post(
                "/auth/login", json={"email": email, "password": "a long enough password"}
            )
            tokens[role] = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert (await auth.get("/auth/me", headers=tokens[role])).json()["role"] == role

        created = await new_course(course, tokens["instructor"])
        lesson = await new_lesson(course, tokens["instructor"], created["id"])
        quiz = await new_quiz(course, tokens["instructor"], created["id"], lesson["id"])

        detail = (await course.get(f"/courses/{created['id']}")).json()
        assert [item["title"] for item in detail["lessons"]] == ["Fractions"]
        read = await course.get(
            f"/courses/{created['id']}/lessons/{lesson['id']}", headers=tokens["student"]
        )
        assert read.json()["body"] == LESSON["body"]
        shown = (await course.get(f"/quizzes/{quiz['id']}", headers=tokens["student"])).json()
        assert all("answer_index" not in question for question in shown["questions"])

        attempt = await course.post(
            f"/quizzes/{quiz['id']}/attempts",
            json={"answers": [0, 0, 0]},
            headers=tokens["student"],
        )
        assert attempt.status_code == 201
        assert attempt.json() | {"attempt_id": None} == {
            "attempt_id": None,
            "score": 2,
            "total": 3,
            "correct": [True, False, True],
        }

        report = await course.get(f"/courses/{created['id']}/report", headers=tokens["instructor"])
        assert report.status_code == 200
        (row,) = report.json()["quizzes"]
        assert (row["attempts"], row["learners"], row["mean_score"], row["best_score"]) == (
            1,
            1,
            2.0,
            2,
        )


async def test_only_instructors_create_and_only_owners_edit(
    client, instructor, student, settings
) -> None:
    assert (await client.post("/courses", json={"title": "X"}, headers=student)).status_code == 403
    assert (await client.post("/courses", json={"title": "X"})).status_code == 401
    course = await new_course(client, instructor)
    rival = headers_for(settings, "instructor")
    for method, path, body in (
        ("POST", f"/courses/{course['id']}/lessons", LESSON),
        ("PATCH", f"/courses/{course['id']}", {"title": "Hijacked"}),
        ("GET", f"/courses/{course['id']}/report", None),
    ):
        response = await client.request(method, path, json=body, headers=rival)
        assert response.status_code == 403, (method, path)
    missing = await client.post(f"/courses/{uuid.uuid4()}/lessons", json=LESSON, headers=instructor)
    assert missing.status_code == 404


async def test_owner_edits_and_lesson_positions(client, instructor) -> None:
    course = await new_course(client, instructor)
    first = await new_lesson(client, instructor, course["id"])
    second = await new_lesson(client, instructor, course["id"], title="Decimals")
    assert (first["position"], second["position"]) == (1, 2)
    clash = await client.post(
        f"/courses/{course['id']}/lessons", json={**LESSON, "position": 2}, headers=instructor
    )
    assert clash.status_code == 409
    edited = await client.patch(
        f"/courses/{course['id']}", json={"title": "Maths 102"}, headers=instructor
    )
    assert edited.json()["title"] == "Maths 102"
    assert (await client.get(f"/courses/{course['id']}")).json()["title"] == "Maths 102"


async def test_quiz_input_is_checked(client, instructor, student) -> None:
    course = await new_course(client, instructor)
    lesson = await new_lesson(client, instructor, course["id"])
    bad_answer = await client.post(
        f"/courses/{course['id']}/quizzes",
        json={
            "lesson_id": lesson["id"],
            "questions": [{"prompt": "p", "choices": ["a", "b"], "answer_index": 5}],
        },
        headers=instructor,
    )
    assert bad_answer.status_code == 422
    assert bad_answer.json()["errors"][0]["field"] == "questions[0].answer_index"
    other = await new_course(client, instructor, title="Other")
    foreign_lesson = await client.post(
        f"/courses/{other['id']}/quizzes",
        json={"lesson_id": lesson["id"], "questions": QUIZ_QUESTIONS},
        headers=instructor,
    )
    assert foreign_lesson.status_code == 422
    assert foreign_lesson.json()["errors"][0]["field"] == "lesson_id"
    quiz = await new_quiz(client, instructor, course["id"], lesson["id"])
    for answers, field in (
        ([0, 1], "answers"),
        ([0, 1, 1, 1], "answers"),
        ([0, 5, 0], "answers[1]"),
    ):
        response = await client.post(
            f"/quizzes/{quiz['id']}/attempts", json={"answers": answers}, headers=student
        )
        assert response.status_code == 422, answers
        assert response.json()["errors"][0]["field"] == field
    assert (await client.get(f"/quizzes/{uuid.uuid4()}", headers=student)).status_code == 404


async def test_a_draft_quiz_is_neither_shown_nor_taken(
    client, core_db, instructor, student
) -> None:
    course = await new_course(client, instructor)
    lesson = await new_lesson(client, instructor, course["id"])
    quiz = await new_quiz(client, instructor, course["id"], lesson["id"])
    draft = uuid.uuid4()  # as the generation worker saves an unreviewed quiz
    with psycopg.connect(core_db) as conn:
        conn.execute(
            "INSERT INTO quizzes (id, course_id, lesson_id, title, questions, status)"
            " SELECT %s, course_id, lesson_id, 'Generated quiz (draft)', questions, 'draft'"
            " FROM quizzes WHERE id = %s",
            (draft, quiz["id"]),
        )
    attempt = {"answers": [0, 1, 0]}
    assert (await client.get(f"/quizzes/{draft}", headers=student)).status_code == 404
    taken = await client.post(f"/quizzes/{draft}/attempts", json=attempt, headers=student)
    assert taken.status_code == 404
    published = await client.post(f"/quizzes/{quiz['id']}/attempts", json=attempt, headers=student)
    assert published.status_code == 201


async def test_catalogue_pages_with_a_cursor_and_filters_by_text(client, instructor) -> None:
    titles = [f"Course {index}" for index in range(5)]
    for title in titles:
        await new_course(
            client, instructor, title=title, description="algebra" if title.endswith("3") else ""
        )
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/courses", params=params)).json()
        seen += [item["title"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(titles))  # newest first, each exactly once
    found = (await client.get("/courses", params={"q": "ALGEBRA"})).json()["items"]
    assert [item["title"] for item in found] == ["Course 3"]
    assert (await client.get("/courses", params={"q": "%"})).json()["items"] == []  # no wildcard
    bad = await client.get("/courses", params={"cursor": "garbage"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"
    assert (await client.get("/courses", params={"limit": 0})).status_code == 422


async def test_course_content_is_served_from_the_ttl_cache(
    client, instructor, core_db, redis_client
) -> None:
    course = await new_course(client, instructor)
    assert (await client.get(f"/courses/{course['id']}")).json()["title"] == "Maths 101"
    key = course_key(uuid.UUID(course["id"]))
    assert 0 < redis_client.ttl(key) <= 60  # CONTENT_CACHE_TTL_SECONDS
    with psycopg.connect(core_db) as conn:
        conn.execute("UPDATE courses SET title = 'Changed in SQL' WHERE id = %s", (course["id"],))
    assert (await client.get(f"/courses/{course['id']}")).json()["title"] == "Maths 101"
    # A write through the API drops the cached copy: the next read is fresh.
    await client.patch(f"/courses/{course['id']}", json={"description": "New"}, headers=instructor)
    fresh = (await client.get(f"/courses/{course['id']}")).json()
    assert (fresh["title"], fresh["description"]) == ("Changed in SQL", "New")


async def test_content_cache_ttl_seconds_sets_the_ttl_of_cached_content(
    core_db, redis_client
) -> None:
    environ = {**environment_for(core_db), "CONTENT_CACHE_TTL_SECONDS": "900"}
    settings = ServiceSettings.from_env(environ)
    instructor = headers_for(settings, "instructor")
    async with AsyncTestClient(create_app(settings)) as client:
        course = await new_course(client, instructor)
        assert (await client.get(f"/courses/{course['id']}")).status_code == 200
    assert 60 < redis_client.ttl(course_key(uuid.UUID(course["id"]))) <= 900


async def test_catalogue_responses_revalidate_with_etags(client, instructor) -> None:
    course = await new_course(client, instructor)
    first = await client.get(f"/courses/{course['id']}")
    assert first.headers["cache-control"] == "public, max-age=30"
    etag = first.headers["etag"]
    again = await client.get(f"/courses/{course['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    await new_lesson(client, instructor, course["id"])
    changed = await client.get(f"/courses/{course['id']}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    listing = await client.get("/courses")
    assert listing.headers["cache-control"].startswith("public")
    assert (
        await client.get("/courses", headers={"If-None-Match": listing.headers["etag"]})
    ).status_code == 304


async def test_catalogue_reads_come_from_the_replica(core_db, replica_db) -> None:
    settings = settings_for(core_db, replicas=(replica_db,), read_your_writes_seconds=0.0)
    headers = headers_for(settings, "instructor")
    async with AsyncTestClient(create_app(settings)) as client:
        course = await new_course(client, headers)
        # Not replicated yet: the replica does not have it, and the catalogue reads the replica.
        assert (await client.get(f"/courses/{course['id']}")).status_code == 404
        assert (await client.get("/courses")).json()["items"] == []
        replicate(core_db, replica_db)
        assert (await client.get(f"/courses/{course['id']}")).status_code == 200
        assert len((await client.get("/courses")).json()["items"]) == 1


async def test_a_writer_reads_its_own_write_before_the_replica_has_it(core_db, replica_db) -> None:
    settings = settings_for(core_db, replicas=(replica_db,), read_your_writes_seconds=30.0)
    headers = headers_for(settings, "instructor")
    async with AsyncTestClient(create_app(settings)) as client:
        course = await new_course(client, headers)
        lesson = await new_lesson(client, headers, course["id"])
        detail = await client.get(f"/courses/{course['id']}")  # replica is still empty
        assert detail.status_code == 200
        assert [item["id"] for item in detail.json()["lessons"]] == [lesson["id"]]
        read = await client.get(f"/courses/{course['id']}/lessons/{lesson['id']}", headers=headers)
        assert read.status_code == 200
        quiz = await new_quiz(client, headers, course["id"], lesson["id"])
        assert (await client.get(f"/quizzes/{quiz['id']}", headers=headers)).status_code == 200


async def test_the_report_reads_only_replicas(core_db, replica_db) -> None:
    settings = settings_for(core_db, replicas=(replica_db,))
    owner = uuid.uuid4()
    headers = headers_for(settings, "instructor", owner)
    student = headers_for(settings, "student")
    async with AsyncTestClient(create_app(settings)) as client:
        course = await new_course(client, headers)
        lesson = await new_lesson(client, headers, course["id"])
        quiz = await new_quiz(client, headers, course["id"], lesson["id"])
        replicate(core_db, replica_db)
        await client.post(
            f"/quizzes/{quiz['id']}/attempts", json={"answers": [0, 1, 0]}, headers=student
        )
        before = (await client.get(f"/courses/{course['id']}/report", headers=headers)).json()
        assert before["quizzes"][0]["attempts"] == 0  # the attempt is only on the writer
        replicate(core_db, replica_db)
        after = (await client.get(f"/courses/{course['id']}/report", headers=headers)).json()
        assert after["quizzes"][0]["attempts"] == 1
        assert after["quizzes"][0]["mean_score"] == 3.0


async def test_with_the_replica_down_reports_fail_and_the_catalogue_falls_back(
    core_db,
) -> None:
    down = database_url("no_such_replica_database")
    settings = settings_for(core_db, replicas=(down,), read_your_writes_seconds=0.0)
    headers = headers_for(settings, "instructor")
    async with AsyncTestClient(create_app(settings)) as client:
        course = await new_course(client, headers)
        assert (await client.get(f"/courses/{course['id']}")).status_code == 200  # from the writer
        report = await client.get(f"/courses/{course['id']}/report", headers=headers)
        assert report.status_code == 503
        assert report.headers["retry-after"]
        assert report.json()["status"] == 503
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["replica-0"] is False


async def test_with_redis_down_content_is_served_from_the_database(settings, instructor) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with AsyncTestClient(create_app(down)) as client:
        course = await new_course(client, instructor)
        await client.patch(
            f"/courses/{course['id']}", json={"title": "Renamed"}, headers=instructor
        )
        assert (await client.get(f"/courses/{course['id']}")).json()["title"] == "Renamed"
