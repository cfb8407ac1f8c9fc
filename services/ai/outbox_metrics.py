"""The outbox backlog on /metrics: rows written and not yet published, per topic.

Counted in PostgreSQL every `every` seconds by each relay's process, not at scrape time:
a scrape must not wait on the database, and every orchestrator pod reports the same
table, which the alert reads with `max`. A topic whose backlog drained is reported as 0,
so the gauge falls back instead of freezing at its last value.
"""

import asyncio
import contextlib

import structlog

from services.runtime.database import Databases
from services.runtime.metrics import OUTBOX_PENDING

__all__ = ["measure_outbox_backlog", "outbox_backlog"]

_log = structlog.get_logger("eduscale.ai.outbox")
_EVERY_SECONDS = 10.0


async def outbox_backlog(databases: Databases) -> dict[str, int]:
    """Unsent rows per topic now."""
    async with databases.writer() as conn:
        cursor = await conn.execute(
            "SELECT topic, count(*) AS pending FROM outbox WHERE sent_at IS NULL GROUP BY topic"
        )
        return {row["topic"]: row["pending"] for row in await cursor.fetchall()}


async def measure_outbox_backlog(
    databases: Databases, stop: asyncio.Event, every: float = _EVERY_SECONDS
) -> None:
    """Keep `eduscale_outbox_backlog` current until `stop` is set."""
    seen: set[str] = set()
    while not stop.is_set():
        try:
            backlog = await outbox_backlog(databases)
        except Exception as error:  # noqa: BLE001 - the database may be away: next round
            _log.debug("outbox_backlog_unmeasured", error=repr(error))
        else:
            for topic in seen | backlog.keys():
                OUTBOX_PENDING.labels(topic).set(backlog.get(topic, 0))
            seen |= backlog.keys()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
