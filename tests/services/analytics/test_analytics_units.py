"""The analytics pieces one at a time: settings, the DDL, the event schema, the emitter's
bound, and chDB's one-process rule (with a real second process)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import msgspec
import pytest
from analytics_harness import fast_settings
from kafka_broker import QUIET, free_port

from services.analytics.emitter import EventEmitter
from services.analytics.events import (
    CourseViewed,
    QuizAttempted,
    QuizAttemptedProps,
    decode_event,
    encode_event,
    stable_event_id,
)
from services.analytics.schema import AnalyticsSchema
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import EmbeddedStore, StoreUnavailable, open_store
from services.runtime.kafka.envelope import PoisonMessage
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import SettingsError

# --- settings -----------------------------------------------------------------------


def test_settings_default_to_the_embedded_store() -> None:
    settings = AnalyticsSettings.from_env({})
    assert settings.embedded
    assert (settings.data_dir, settings.database, settings.events_ttl_days) == (
        ".eduscale/analytics",
        "analytics",
        395,
    )


def test_a_server_url_names_the_database_and_the_cluster_is_read() -> None:
    settings = AnalyticsSettings.from_env(
        {
            "ANALYTICS_URL": "http://clickhouse.analytics.svc:8123/learning",
            "ANALYTICS_USERNAME": "sink",
            "ANALYTICS_PASSWORD": "s3cret",
            "ANALYTICS_CLUSTER": "eduscale",
            "ANALYTICS_EVENTS_TTL_DAYS": "30",
        }
    )
    assert not settings.embedded
    assert (settings.database, settings.cluster, settings.username) == (
        "learning",
        "eduscale",
        "sink",
    )
    assert settings.events_ttl_days == 30


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ANALYTICS_URL", "clickhouse:8123", "use http[s]://host:8123/<database>"),
        ("ANALYTICS_URL", "http://clickhouse:8123", "names no database"),
        ("ANALYTICS_URL", "http://clickhouse:8123/bad-name", "names no database"),
        ("ANALYTICS_CLUSTER", "my cluster", "use letters, digits and _"),
        ("ANALYTICS_EVENTS_TTL_DAYS", "0", "from 1 to 36500"),
        ("ANALYTICS_BUFFER_SIZE", "lots", "a whole number from 1 to 1000000"),
        ("ANALYTICS_BATCH_SIZE", "-5", "a whole number"),
        ("ANALYTICS_BATCH_MAX_WAIT_MS", "0", "from 1 to 60000"),
        ("ANALYTICS_LOCAL_SINK", "maybe", "use true or false"),
    ],
)
def test_a_bad_variable_is_named_in_one_line(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        AnalyticsSettings.from_env({name: value})
    text = str(raised.value)
    assert text.startswith(name)
    assert message in text
    assert "\n" not in text


# --- DDL ------------------------------------------------------------------------------


def test_one_node_gets_plain_merge_trees_and_no_distributed_tables() -> None:
    statements = AnalyticsSchema("analytics", 395).statements()
    text = "\n".join(statements)
    for clustered in ("ON CLUSTER", "Replicated", "Distributed"):
        assert clustered not in text
    events = next(s for s in statements if ".events (" in s)
    assert "ENGINE = ReplacingMergeTree\n" in events
    assert "PARTITION BY toYYYYMM(occurred_at)" in events
    assert "ORDER BY (course_id, occurred_at, event_id)" in events
    assert "TTL toDateTime(occurred_at) + INTERVAL 395 DAY" in events
    daily = next(s for s in statements if ".course_daily (" in s)
    assert "ENGINE = AggregatingMergeTree" in daily
    assert "AggregateFunction(uniqExact, UUID)" in daily
    view = next(s for s in statements if "MATERIALIZED VIEW" in s)
    assert "TO analytics.course_daily AS" in view
    assert "FROM analytics.events\n" in view
    assert all("IF NOT EXISTS" in s for s in statements)


def test_a_cluster_gets_replicated_local_tables_behind_distributed_ones() -> None:
    schema = AnalyticsSchema("learning", 30, cluster="eduscale")
    statements = schema.statements()
    assert all(" ON CLUSTER eduscale" in s for s in statements)
    events = next(s for s in statements if "learning.events_local ON CLUSTER" in s)
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/learning/events', '{replica}')"
    ) in events
    assert "TTL toDateTime(occurred_at) + INTERVAL 30 DAY" in events
    daily = next(s for s in statements if "learning.course_daily_local ON CLUSTER" in s)
    assert (
        "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/learning/course_daily',"
        " '{replica}')"
    ) in daily
    view = next(s for s in statements if "MATERIALIZED VIEW" in s)
    assert "TO learning.course_daily_local AS" in view
    assert "FROM learning.events_local\n" in view  # each shard aggregates its own rows
    distributed = [s for s in statements if "ENGINE = Distributed" in s]
    assert distributed == [
        (
            "CREATE TABLE IF NOT EXISTS learning.events ON CLUSTER eduscale AS"
            " learning.events_local\n"
            "ENGINE = Distributed(eduscale, learning, events_local, cityHash64(course_id))"
        ),
        (
            "CREATE TABLE IF NOT EXISTS learning.course_daily ON CLUSTER eduscale AS"
            " learning.course_daily_local\n"
            "ENGINE = Distributed(eduscale, learning, course_daily_local, cityHash64(course_id))"
        ),
    ]
    assert statements.index(distributed[0]) > statements.index(events)
    assert (schema.events, schema.daily) == ("learning.events", "learning.course_daily")
    assert schema.modify_ttl() == (
        "ALTER TABLE learning.events_local ON CLUSTER eduscale MODIFY TTL"
        " toDateTime(occurred_at) + INTERVAL 30 DAY"
    )


@pytest.mark.anyio
async def test_the_embedded_schema_is_idempotent_and_follows_the_ttl(tmp_path: Path) -> None:
    store = await open_store(fast_settings(tmp_path))
    await store.ensure_schema()  # a second start changes nothing
    await store.close()
    store = await open_store(fast_settings(tmp_path, events_ttl_days=30))
    try:
        (table,) = await store.query(
            "SELECT create_table_query AS q FROM system.tables"
            " WHERE database = 'analytics' AND name = 'events'"
        )
        assert "toIntervalDay(30)" in table["q"]
        tables = await store.query("SELECT name FROM system.tables WHERE database = 'analytics'")
        assert sorted(t["name"] for t in tables) == ["course_daily", "course_daily_mv", "events"]
    finally:
        await store.close()


# --- events ---------------------------------------------------------------------------


def test_events_round_trip_and_anything_else_is_poison() -> None:
    course = uuid.uuid4()
    attempt = QuizAttempted(
        user_id=uuid.uuid4(),
        course_id=course,
        props=QuizAttemptedProps(quiz_id=uuid.uuid4(), attempt_id=uuid.uuid4(), score=2, total=4),
    )
    wire = encode_event(attempt)
    assert decode_event(wire) == attempt
    assert attempt.fraction == 0.5
    assert msgspec.json.decode(wire)["kind"] == "quiz_attempted"
    bad = {
        b"": "empty",
        b"not json": "not a JSON object",
        b'{"schema_version": 2, "kind": "course_viewed"}': "unknown schema_version 2",
        wire.replace(b'"quiz_attempted"', b'"quiz_skipped"'): "invalid analytics event v1",
        wire.replace(b'"score":2', b'"score":7'): "0 <= score <= total",
        wire.replace(b'"score":2,', b""): "missing required field `score`",
    }
    for value, reason in bad.items():
        with pytest.raises(PoisonMessage, match=reason):
            decode_event(value)


def test_facts_get_stable_ids_and_times_must_be_utc() -> None:
    job = uuid.uuid4()
    assert stable_event_id("generation_requested", job) == stable_event_id(
        "generation_requested", job
    )
    assert stable_event_id("generation_requested", job) != stable_event_id(
        "generation_finished", job
    )
    with pytest.raises(ValueError, match="UTC"):
        CourseViewed(
            user_id=None,
            course_id=uuid.uuid4(),
            occurred_at=datetime.now(timezone(timedelta(hours=2))),
        )


def test_views_get_distinct_version_4_ids_in_every_worker_process() -> None:
    ids = [CourseViewed(user_id=None, course_id=uuid.uuid4()).event_id for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert {(event_id.version, event_id.variant) for event_id in ids} == {(4, uuid.RFC_4122)}
    # A forked worker (uvicorn's, gunicorn's) must not repeat its parent's ids.
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports and exits
        os.write(write_end, CourseViewed(user_id=None, course_id=uuid.uuid4()).event_id.bytes)
        os._exit(0)
    os.waitpid(child, 0)
    from_child = uuid.UUID(bytes=os.read(read_end, 16))
    from_parent = CourseViewed(user_id=None, course_id=uuid.uuid4()).event_id
    os.close(read_end)
    os.close(write_end)
    assert from_child != from_parent
    assert from_child not in ids


# --- the emitter's bound ----------------------------------------------------------------


def views(count: int) -> list[CourseViewed]:
    return [CourseViewed(user_id=None, course_id=uuid.uuid4()) for _ in range(count)]


def test_a_full_buffer_drops_and_counts_new_events() -> None:
    emitter = EventEmitter(
        AnalyticsSettings(buffer_size=10),
        KafkaSettings(bootstrap_servers="127.0.0.1:1", log_level=QUIET),
        client_id="test",
    )
    for event in views(25):
        emitter.emit(event)  # not running: nothing leaves the buffer
    stats = emitter.stats()
    assert (stats.accepted, stats.buffered, stats.dropped_buffer_full) == (10, 10, 15)


def test_without_a_broker_events_are_counted_as_dropped() -> None:
    emitter = EventEmitter(AnalyticsSettings(), None, client_id="test")
    for event in views(3):
        emitter.emit(event)
    stats = emitter.stats()
    assert (stats.enabled, stats.accepted, stats.dropped_disabled, stats.dropped) == (
        False,
        0,
        3,
        3,
    )


@pytest.mark.anyio
async def test_with_the_broker_unreachable_memory_stays_bounded_and_every_event_is_counted() -> (
    None
):
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}", delivery_timeout_ms=1000, log_level=QUIET
    )
    settings = AnalyticsSettings(buffer_size=50, flush_interval_ms=10, shutdown_flush_seconds=0.5)
    emitter = EventEmitter(settings, kafka, client_id="test")
    async with emitter.running():
        for _ in range(20):
            for event in views(20):
                emitter.emit(event)
            await asyncio.sleep(0.02)
            stats = emitter.stats()
            assert stats.buffered <= 50
            # The producer queues at most as many messages (its length adds protocol requests).
            assert stats.in_flight <= 50 + 5
    stats = emitter.stats()
    assert stats.delivered == 0
    assert stats.accepted + stats.dropped_buffer_full == 400
    assert stats.dropped_buffer_full + stats.dropped_undeliverable == 400  # none unaccounted
    assert stats.buffered == stats.in_flight == 0


# --- chDB: one process per directory --------------------------------------------------

_HOLD = """
import sys, time, chdb.session
session = chdb.session.Session(sys.argv[1])
session.query("SELECT 1")
print("holding", flush=True)
time.sleep(60)
"""


@pytest.mark.server  # a second process holds the store
def test_a_second_process_cannot_open_the_embedded_store(tmp_path: Path) -> None:
    directory = tmp_path / "analytics"
    directory.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(directory)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreUnavailable) as raised:
            EmbeddedStore(str(directory), AnalyticsSchema("analytics", 395))
        message = str(raised.value)
        assert f"held by another process (PID {holder.pid})" in message
        assert "ANALYTICS_LOCAL_SINK" in message
        assert "ANALYTICS_URL" in message
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    store = EmbeddedStore(str(directory), AnalyticsSchema("analytics", 395))  # free again
    anyio.run(store.close)
