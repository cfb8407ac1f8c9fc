"""Analytics around the request path: outages, dead letters, who may read the report, the
writer never touched, the sink as a command, and the AI side's events.

Real broker (Tansu), real PostgreSQL and Redis, embedded ClickHouse (chDB).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import psycopg
import pytest
from ai_platform import dead_letters_reach, running_platform
from analytics_harness import eventually, fast_settings, produce, produce_events
from confluent_kafka import Consumer, TopicPartition
from course_harness import LESSON, headers_for
from fake_openai import FakeOpenAI
from kafka_broker import PARTITIONS, Broker, free_port
from pdf_factory import known_sentences, text_pdf
from service_harness import POSTGRES_URL, replicate, settings_for
from test_analytics_pipeline import course_service, learning_day, report

from contracts.topics import ANALYTICS_EVENTS
from services.analytics.events import CourseViewed, encode_event
from services.analytics.sink import row_of
from services.analytics.sink_runner import SINK_GROUP, local_sink
from services.analytics.store import open_store
from services.runtime.kafka.settings import consumer_config

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]
_DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)


async def test_a_broker_outage_never_fails_a_request(
    core_db: str, kafka_broker: Broker, tmp_path: Path
) -> None:
    settings = settings_for(core_db)
    instructor = headers_for(settings, "instructor")
    analytics = fast_settings(tmp_path, local_sink=False, buffer_size=5, shutdown_flush_seconds=0.5)
    async with course_service(settings, analytics, kafka_broker) as client:
        course = (await client.post("/courses", json={"title": "T"}, headers=instructor)).json()
        assert (await client.get(f"/courses/{course['id']}")).status_code == 200
        await eventually(
            lambda: client.get("/health/analytics"), lambda r: r.json()["delivered"] == 1
        )
        kafka_broker.stop()
        for _ in range(40):
            response = await client.get(f"/courses/{course['id']}")
            assert response.status_code == 200
        stats = await eventually(
            lambda: client.get("/health/analytics"),
            lambda r: r.json()["dropped_undeliverable"] + r.json()["dropped_buffer_full"] == 40,
            within=20,  # the producer gives up after KAFKA_DELIVERY_TIMEOUT_MS (3 s here)
        )
        body = stats.json()
        assert body["delivered"] == 1
        assert body["accepted"] + body["dropped_buffer_full"] == 41
        assert body["buffered"] <= 5
        ready = await client.get("/health/ready")
        assert ready.status_code == 200  # analytics are not a dependency of serving


async def test_undecodable_events_go_to_the_dead_letter_topic(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    course = uuid.uuid4()
    good = encode_event(CourseViewed(user_id=uuid.uuid4(), course_id=course))
    produce(
        kafka_broker,
        [
            b"not json at all",
            b'{"schema_version": 9, "kind": "course_viewed"}',
            good.replace(b'"course_viewed"', b'"course_liked"'),
            good,
        ],
    )
    analytics = fast_settings(tmp_path)
    store = await open_store(analytics)
    try:
        async with local_sink(analytics, kafka_broker.settings(), store) as sink:
            await eventually(lambda: asyncio.sleep(0, sink.dead_lettered), lambda n: n == 3)
            assert sink.inserted == 1
        rows = await store.query("SELECT toString(course_id) AS course FROM analytics.events")
        assert rows == [{"course": str(course)}]
    finally:
        await store.close()
    letters = await dead_letters_reach(kafka_broker, ANALYTICS_EVENTS.dlq, 3)
    reasons = sorted(letter.headers["dlq.error.message"] for letter in letters)
    assert [reason.split(":")[0] for reason in reasons] == [
        "invalid analytics event v1",
        "not a JSON object",
        "unknown schema_version 9; this sink reads 1",
    ]
    for letter in letters:
        assert letter.headers["dlq.original.topic"] == ANALYTICS_EVENTS.name
        assert letter.headers["dlq.error.class"] == "PoisonMessage"
        assert letter.key == b"k"


async def test_only_the_course_instructor_reads_the_report_and_bad_ranges_are_422(
    core_db: str, tmp_path: Path
) -> None:
    settings = settings_for(core_db)
    owner = headers_for(settings, "instructor")
    async with course_service(settings, fast_settings(tmp_path), None) as client:
        course = (await client.post("/courses", json={"title": "T"}, headers=owner)).json()
        path = f"/courses/{course['id']}/analytics"
        assert (await client.get(path)).status_code == 401
        for stranger in (headers_for(settings, "student"), headers_for(settings, "instructor")):
            assert (await client.get(path, headers=stranger)).status_code == 403
        missing = await client.get(f"/courses/{uuid.uuid4()}/analytics", headers=owner)
        assert missing.status_code == 404
        cases = {
            ("2026-03-02", "2026-03-01", "day"): ("from", "must not be after `to` (2026-03-01)"),
            ("2025-01-01", "2026-03-01", "day"): (
                "to",
                "the range covers 425 days; at most 366 are allowed",
            ),
            ("0001-01-01", "2026-03-01", "week"): (
                "from",
                "must be from 1970-02-01 to 2149-05-31",
            ),
        }
        for (start, end, bucket), (field, message) in cases.items():
            bad = await client.get(path, params={"from": start, "to": end, "bucket": bucket})
            assert bad.status_code == 401  # still checked after authentication
            bad = await client.get(
                path, params={"from": start, "to": end, "bucket": bucket}, headers=owner
            )
            assert bad.status_code == 422, bad.text
            assert bad.headers["content-type"].startswith("application/problem+json")
            assert bad.json()["errors"] == [{"field": field, "message": message}]
        for params in ({"bucket": "month"}, {"from": "yesterday"}):
            bad = await client.get(path, params=params, headers=owner)
            assert bad.status_code in {400, 422}, bad.text
            assert bad.headers["content-type"].startswith("application/problem+json")
        empty = await report(
            client, course["id"], owner, **{"from": "2026-03-01", "to": "2026-03-03"}
        )
        assert [p["start"] for p in empty["series"]] == ["2026-03-01", "2026-03-02", "2026-03-03"]
        assert all(p["quiz_attempts"] == 0 and p["mean_score"] is None for p in empty["series"])


async def test_without_an_analytics_store_the_report_says_503(core_db: str) -> None:
    settings = settings_for(core_db)
    owner = headers_for(settings, "instructor")
    async with course_service(settings, None, None) as client:  # type: ignore[arg-type]
        course = (await client.post("/courses", json={"title": "T"}, headers=owner)).json()
        response = await client.get(f"/courses/{course['id']}/analytics", headers=owner)
        assert response.status_code == 503
        assert "no analytics store is configured" in response.json()["detail"]
        assert response.headers["retry-after"] == "30"


def refuse_connections(database_url: str) -> None:
    """Make the database refuse every new connection and close the open ones."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )


async def test_neither_report_touches_the_writer(
    core_db: str, replica_db: str, tmp_path: Path
) -> None:
    settings = settings_for(core_db, replicas=(replica_db,))
    owner_id = uuid.uuid4()
    owner = headers_for(settings, "instructor", owner_id)
    analytics = fast_settings(tmp_path)
    async with course_service(settings, analytics, None) as client:
        course = (await client.post("/courses", json={"title": "T"}, headers=owner)).json()
        await client.post(f"/courses/{course['id']}/lessons", json=LESSON, headers=owner)
        replicate(core_db, replica_db)
        store = client.app.state.analytics_reports.store  # type: ignore[attr-defined]
        await store.insert([row_of(e) for e in learning_day(uuid.UUID(course["id"]), _DAY)])
        refuse_connections(core_db)
        broken = await client.post("/courses", json={"title": "U"}, headers=owner)
        assert broken.status_code >= 500  # the writer is really gone
        series = await report(
            client, course["id"], owner, **{"from": "2026-11-02", "to": "2026-11-02"}
        )
        assert series["series"][0]["quiz_attempts"] == 3
        relational = await client.get(f"/courses/{course['id']}/report", headers=owner)
        assert relational.status_code == 200, relational.text


async def test_the_analytics_worker_command_sinks_events(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    events = learning_day(uuid.uuid4(), _DAY) * 2  # every event twice: stored once
    produce_events(kafka_broker, events)
    port = free_port()
    env = {
        **os.environ,
        **kafka_broker.environ(),
        "ANALYTICS_DATA_DIR": str(tmp_path),
        "ANALYTICS_BATCH_MAX_WAIT_MS": "100",
        "HEALTH_PORT": str(port),
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = await anyio.open_process(
            [sys.executable, "-m", "infra.cli", "worker", "analytics"],
            env=env,
            stdout=output,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient() as http:
                await eventually(lambda: _ready(http, port), bool)
            await eventually(lambda: _committed(kafka_broker), lambda n: n == len(events))
        finally:
            worker.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                await worker.wait()
    assert worker.returncode == 0
    stopped = [
        msgspec.json.decode(line)
        for line in log.read_bytes().splitlines()
        if b'"sink_stopped"' in line
    ]
    assert stopped
    assert (stopped[0]["inserted"], stopped[0]["duplicates"]) == (8, 8)
    store = await open_store(fast_settings(tmp_path))
    try:
        assert await store.query("SELECT count() AS n FROM analytics.events") == [{"n": 8}]
    finally:
        await store.close()


async def _ready(http: httpx.AsyncClient, port: int) -> bool:
    try:
        return (await http.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 200
    except httpx.TransportError:
        return False


async def _committed(broker: Broker) -> int:
    def read() -> int:
        consumer = Consumer(consumer_config(broker.settings(), group=SINK_GROUP, client_id="t"))
        try:
            offsets = consumer.committed(
                [TopicPartition(ANALYTICS_EVENTS.name, p) for p in range(PARTITIONS)], timeout=10
            )
        finally:
            consumer.close()
        return sum(max(tp.offset, 0) for tp in offsets)

    return await anyio.to_thread.run_sync(read)


async def test_the_ai_side_emits_generation_and_indexing_events(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        accepted = await platform.request(course_id, lesson_id, **{"Idempotency-Key": "once"})
        again = await platform.request(course_id, lesson_id, **{"Idempotency-Key": "once"})
        assert again.json()["job_id"] == accepted.json()["job_id"]
        await platform.wait_for(accepted.json()["job_id"], "succeeded")
        upload = await platform.upload(course_id, text_pdf(known_sentences(3)))
        assert upload.status_code == 202, upload.text
        await platform.document_reaches(upload.json()["document_id"], "indexed")
        emitted = (await platform.ai.get("/health/analytics")).json()
        assert emitted["accepted"] == 2  # the retried request emitted the same event id
    # Everything has been flushed at shutdown; sink it and look.
    analytics = fast_settings(tmp_path)
    store = await open_store(analytics)
    try:
        async with local_sink(analytics, kafka_broker.settings(), store) as sink:
            await eventually(lambda: asyncio.sleep(0, sink.inserted), lambda n: n == 3)
        rows: list[dict[str, Any]] = await store.query(
            "SELECT kind, props, toString(course_id) AS course FROM analytics.events ORDER BY kind"
        )
    finally:
        await store.close()
    assert [row["kind"] for row in rows] == [
        "document_indexed",
        "generation_finished",
        "generation_requested",
    ]
    assert {row["course"] for row in rows} == {course_id}
    props = [msgspec.json.decode(row["props"]) for row in rows]
    assert props[0]["document_id"] == upload.json()["document_id"]
    assert props[0]["pages"] == 3  # one page per sentence
    assert props[1]["outcome"] == "succeeded"
    assert props[1]["job_id"] == props[2]["job_id"] == accepted.json()["job_id"]
