"""The transactional outbox: accepted work reaches Kafka even if the broker was down.

`enqueue` writes a message row in the caller's transaction (the same one that creates the
job), so the job exists if and only if its message will be sent. The relay claims unsent
rows (`FOR UPDATE SKIP LOCKED`, so every orchestrator pod can run one), publishes them
with the idempotent producer, and marks a row sent only after the broker acknowledged it.
While the broker is down rows wait and are retried; they go out, in order, when it
returns. The relay's health (when it last delivered, how far behind it is) feeds
`/ai/status`. A row keeps the `traceparent` of the request that queued it (see
`services.runtime.tracing`), sent as the message's header so the worker joins its trace.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.runtime.database import Connection, Databases
from services.runtime.tracing import TRACEPARENT, producer_traceparent

__all__ = ["SWEEP_INTERVAL_SECONDS", "OutboxRelay", "RelayHealth", "enqueue"]

_log = structlog.get_logger("eduscale.ai.outbox")
_BATCH = 200
_SENT_RETENTION = "1 day"
SWEEP_INTERVAL_SECONDS = 60.0
"""How often a relay deletes rows sent more than `_SENT_RETENTION` ago: a day's rows are
deleted a minute's worth at a time, not looked for after every batch."""


async def enqueue(conn: Connection, topic: str, key: bytes, value: bytes) -> None:
    """Add a message to the outbox, inside the caller's transaction."""
    await conn.execute(
        "INSERT INTO outbox (topic, key, value, traceparent) VALUES (%s, %s, %s, %s)",
        (topic, key, value, producer_traceparent(topic)),
    )


@dataclass
class RelayHealth:
    """What the relay last saw of the broker."""

    last_delivery: float | None = None
    failing_since: float | None = None
    last_error: str | None = None

    def stalled_for(self, now: float) -> float:
        """Seconds the relay has been failing to deliver (0 when it is not)."""
        return 0.0 if self.failing_since is None else now - self.failing_since


class OutboxRelay:
    """Publishes outbox rows; run `run(stop)` as a background task."""

    def __init__(
        self,
        databases: Databases,
        producer: Producer,
        *,
        interval_seconds: float = 0.2,
        delivery_timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._databases = databases
        self._producer = producer
        self._interval = interval_seconds
        self._timeout = delivery_timeout_seconds
        self._clock = clock
        self.health = RelayHealth()
        self.sent = 0
        self._next_sweep = clock()  # the first delivered batch sweeps

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; errors are logged and retried, never fatal."""
        while not stop.is_set():
            try:
                sent = await self.relay_once()
            except Exception:  # noqa: BLE001 - a relay must outlive database hiccups
                _log.exception("outbox_relay_failed")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._interval)

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; return how many the broker acknowledged."""
        async with self._databases.writer() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT id, topic, key, value, traceparent FROM outbox WHERE sent_at IS NULL"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (_BATCH,),
            )
            rows = await cursor.fetchall()
            if not rows:
                return 0
            delivered, error = await anyio.to_thread.run_sync(self._publish, rows)
            if delivered:
                await conn.execute(
                    "UPDATE outbox SET sent_at = now() WHERE id = ANY(%s)", (delivered,)
                )
            acknowledged = set(delivered)
            failed = [row["id"] for row in rows if row["id"] not in acknowledged]
            if failed:
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = ANY(%s)",
                    (error, failed),
                )
            if not failed and self._clock() >= self._next_sweep:
                self._next_sweep = self._clock() + SWEEP_INTERVAL_SECONDS
                await conn.execute(  # an index range scan (migration 0009)
                    "DELETE FROM outbox WHERE sent_at < now() - %s::interval", (_SENT_RETENTION,)
                )
        self._record(delivered=len(delivered), error=error if failed else None)
        return len(delivered)

    def _publish(self, rows: list[dict[str, object]]) -> tuple[list[int], str | None]:
        delivered: list[int] = []
        errors: list[str] = []

        def on_delivery(row_id: int) -> Callable[[KafkaError | None, Message], None]:
            def callback(error: KafkaError | None, _message: Message) -> None:
                if error is None:
                    delivered.append(row_id)
                else:
                    errors.append(error.str())

            return callback

        for row in rows:
            try:
                self._producer.produce(
                    str(row["topic"]),
                    key=row["key"],  # type: ignore[arg-type]
                    value=row["value"],  # type: ignore[arg-type]
                    headers=_headers(row["traceparent"]),
                    on_delivery=on_delivery(int(row["id"])),  # type: ignore[call-overload]
                )
            except (BufferError, KafkaException) as error:
                errors.append(str(error))
                break
        remaining = self._producer.flush(self._timeout)
        if remaining:
            errors.append(f"{remaining} message(s) not acknowledged within {self._timeout} s")
        return delivered, (errors[0] if errors else None)

    def _record(self, *, delivered: int, error: str | None) -> None:
        now = self._clock()
        if delivered:
            self.sent += delivered
            self.health.last_delivery = now
        if error is None:
            self.health.failing_since = None
            self.health.last_error = None
        else:
            if self.health.failing_since is None:
                self.health.failing_since = now
            self.health.last_error = error
            _log.warning("outbox_delivery_failed", error=error)


def _headers(traceparent: object) -> list[tuple[str, str | bytes | None]] | None:
    return [(TRACEPARENT, traceparent.encode())] if isinstance(traceparent, str) else None
