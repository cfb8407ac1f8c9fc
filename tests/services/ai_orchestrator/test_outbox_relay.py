"""The outbox relay keeps a day of sent rows, and looks for older ones once a minute."""

from __future__ import annotations

import psycopg
import pytest
from confluent_kafka import Producer
from kafka_broker import Broker
from service_harness import settings_for

from contracts.topics import GENERATION_REQUESTED
from services.ai.outbox import SWEEP_INTERVAL_SECONDS, OutboxRelay
from services.runtime.database import Databases
from services.runtime.kafka.settings import producer_config

pytestmark = [pytest.mark.anyio]


class Clock:
    """The relay's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _queue(url: str, *, sent_ago: str | None) -> int:
    """An outbox row, unsent or sent `sent_ago` (a PostgreSQL interval); its id."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO outbox (topic, key, value, sent_at)"
            " VALUES (%s, 'k', 'v', now() - %s::interval) RETURNING id",
            (GENERATION_REQUESTED.name, sent_ago),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _ids(url: str) -> set[int]:
    with psycopg.connect(url) as conn:
        return {int(row[0]) for row in conn.execute("SELECT id FROM outbox").fetchall()}


async def test_sent_rows_older_than_a_day_are_swept_at_most_once_a_minute(
    core_db: str, kafka_broker: Broker
) -> None:
    databases = Databases(settings_for(core_db))
    await databases.open()
    clock = Clock()
    producer = Producer(producer_config(kafka_broker.settings(), client_id="test"))
    relay = OutboxRelay(databases, producer, clock=clock)
    try:
        old, recent = _queue(core_db, sent_ago="2 days"), _queue(core_db, sent_ago="1 hour")
        first = _queue(core_db, sent_ago=None)
        assert await relay.relay_once() == 1
        assert old not in _ids(core_db)
        assert _ids(core_db) == {recent, first}  # the hour-old row stayed

        old_again = _queue(core_db, sent_ago="2 days")
        second = _queue(core_db, sent_ago=None)
        clock.now += SWEEP_INTERVAL_SECONDS - 1
        assert await relay.relay_once() == 1
        assert old_again in _ids(core_db)  # within the minute: not looked for

        third = _queue(core_db, sent_ago=None)
        clock.now += 1
        assert await relay.relay_once() == 1
        assert _ids(core_db) == {recent, first, second, third}
    finally:
        await databases.close()
