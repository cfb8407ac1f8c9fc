"""Helpers for the analytics tests: settings, raw produce and read, waiting for counts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from confluent_kafka import Producer
from kafka_broker import Broker

from contracts.topics import ANALYTICS_EVENTS
from services.analytics.events import Event, encode_event
from services.analytics.settings import AnalyticsSettings
from services.runtime.kafka.dlq_tool import DeadLetter, read_dead_letters
from services.runtime.kafka.settings import producer_config

_T = TypeVar("_T")


def fast_settings(directory: Path, **overrides: Any) -> AnalyticsSettings:
    """An embedded store in `directory`, with the short waits a test wants."""
    values: dict[str, Any] = {
        "data_dir": str(directory),
        "batch_max_wait_ms": 100,
        "flush_interval_ms": 20,
        "batch_size": 500,
        "shutdown_flush_seconds": 3.0,
    }
    values.update(overrides)
    return AnalyticsSettings(**values)


def produce(broker: Broker, values: Iterable[bytes], *, key: bytes = b"k") -> None:
    """Put raw values on `analytics.events` and wait for the broker's acknowledgement."""
    producer = Producer(producer_config(broker.settings(), client_id="test-producer"))
    for value in values:
        producer.produce(ANALYTICS_EVENTS.name, key=key, value=value)
    assert producer.flush(10) == 0


def produce_events(broker: Broker, events: Iterable[Event]) -> None:
    """Emit `events` as a service would, but synchronously."""
    produce(broker, (encode_event(event) for event in events))


def topic_records(broker: Broker, topic: str = ANALYTICS_EVENTS.name) -> list[DeadLetter]:
    """Every record of `topic` (the DLQ reader reads any topic from start to end)."""
    return read_dead_letters(broker.settings(), topic)


async def eventually(
    probe: Callable[[], Awaitable[_T]], done: Callable[[_T], bool], *, within: float = 30
) -> _T:
    """Poll `probe` until `done` says yes; the last value is in the timeout's message."""
    last: _T | None = None
    try:
        with anyio.fail_after(within):
            while True:
                value = await probe()
                last = value
                if done(value):
                    return value
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not reached within {within} s; last value: {last!r}") from None
