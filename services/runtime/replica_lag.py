"""Replica lag on /metrics: how far each read replica's replay is behind its writer.

RDS publishes `ReplicaLag` to CloudWatch, which the cluster's Prometheus does not read; a
process that reads from the replicas measures, every `every` seconds and off the request
path, the lag its reads see, and serves it as `eduscale_db_replica_lag_seconds{replica}`
(the `EduscaleReplicaLag` alert reads its `max`).

The measure is PostgreSQL's own: nothing to replay (all WAL received is applied) is 0,
however old the last transaction is (an idle writer sends nothing, so the replay
timestamp ages without any lag); otherwise the age of the last replayed transaction (none
replayed yet: unknown, not reported). A
server that is not in recovery (a "replica" URL that points at a writer, as locally) has
no lag to report and is left out; a replica that does not answer keeps no stale value.
"""

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

__all__ = ["LAG_QUERY", "ReplicaLag"]

_log = structlog.get_logger("eduscale.database")
_EVERY_SECONDS = 10.0
_WAIT_SECONDS = 1.0
LAG_QUERY = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN NULL
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
END AS lag
"""


class ReplicaLag:
    """The last measured lag of each replica pool, kept current by `measure`."""

    def __init__(self, pools: Sequence[AsyncConnectionPool[Any]]) -> None:
        self._pools = pools
        self.seconds: dict[str, float] = {}

    def reading(self) -> list[tuple[tuple[str, ...], float]]:
        """Label values -> lag, for the scrape."""
        return [((name,), lag) for name, lag in self.seconds.items()]

    async def measure_once(self) -> None:
        """Ask every replica for its lag now."""
        for pool in self._pools:
            lag: float | None = None
            try:
                async with pool.connection(timeout=_WAIT_SECONDS) as conn:
                    row = await (await conn.execute(LAG_QUERY)).fetchone()
            except (PoolTimeout, psycopg.Error) as error:
                _log.debug("replica_lag_unmeasured", pool=pool.name, error=repr(error))
            else:
                value = None if row is None else row["lag"]  # the pools' rows are dicts
                lag = None if value is None else max(0.0, float(value))
            if lag is None:
                self.seconds.pop(pool.name, None)
            else:
                self.seconds[pool.name] = lag

    async def measure(self, stop: asyncio.Event, every: float = _EVERY_SECONDS) -> None:
        """Measure every `every` seconds until `stop` is set."""
        while not stop.is_set():
            await self.measure_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
