"""PostgreSQL pools for the writer and the read replicas, owned by the app's lifespan.

Modelled on litestar-asyncpg's config: the lifespan opens the pools and puts them on
`app.state`, a dependency hands them to handlers, and the pools close when the app stops.
Handlers take a connection only around their queries (not for the whole request), so
slow work such as password hashing never holds one.

Routing rules, which the Course service's tests observe:
- `writer()`: every write, and reads that must see the caller's own latest write.
- `reader()`: catalogue reads, from a replica; falls back to the writer when no replica
  is configured or the chosen one cannot give a connection quickly.
- `replica()`: reports, from replicas only; with replicas configured but none answering
  it raises `Unavailable` (503) rather than load the writer.
"""

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from psycopg_pool.abc import AsyncKwargsParam

from contracts.platform_metrics import DB_POOL_WAITERS, DB_REPLICA_LAG
from services.runtime.errors import Unavailable
from services.runtime.iam_auth import iam_token_kwargs
from services.runtime.metrics import observe_at_scrape
from services.runtime.replica_lag import ReplicaLag
from services.runtime.settings import DataSettings

__all__ = ["Connection", "DatabaseUnreachable", "Databases"]

Connection = psycopg.AsyncConnection[dict[str, Any]]
_REPLICA_WAIT_SECONDS = 1.0
_log = structlog.get_logger("eduscale.database")


def _pool(url: str, name: str, settings: DataSettings) -> AsyncConnectionPool[Connection]:
    base: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, "connect_timeout": 5}
    kwargs: AsyncKwargsParam = base
    if settings.database_iam_auth and settings.aws_region:
        kwargs = iam_token_kwargs(url, settings.aws_region, base)
    return AsyncConnectionPool(
        url,
        name=name,
        open=False,
        min_size=1,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_seconds,
        check=AsyncConnectionPool.check_connection,
        kwargs=kwargs,
        connection_class=psycopg.AsyncConnection[dict[str, Any]],
    )


class DatabaseUnreachable(RuntimeError):
    """The writer did not accept a connection at start-up; the message says where and how long."""


def _where(url: str) -> str:
    """`host:port/dbname` of a libpq URL, without the user or password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "?"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


class Databases:
    """The writer pool and one pool per replica."""

    def __init__(self, settings: DataSettings) -> None:
        self._writer_url = settings.database_url
        self._open_timeout = settings.pool_timeout_seconds
        self._stop_observing: Callable[[], None] = lambda: None
        self._writer = _pool(settings.database_url, "writer", settings)
        self._replicas = [
            _pool(url, f"replica-{index}", settings)
            for index, url in enumerate(settings.database_replica_urls)
        ]
        self._turn = itertools.cycle(range(max(1, len(self._replicas))))
        self.replica_lag = ReplicaLag(self._replicas)
        self._stop_lag = asyncio.Event()
        self._lag_task: asyncio.Task[None] | None = None

    @property
    def has_replicas(self) -> bool:
        """Whether reads are split off the writer at all."""
        return bool(self._replicas)

    async def open(self) -> None:
        """Open the writer (waiting for it) and the replicas (not waiting: one may be down).

        The wait is DATABASE_POOL_TIMEOUT_SECONDS, not psycopg's 30 s: a pod that cannot
        reach its writer should fail at once and say so, not sit silently unready.
        """
        try:
            await self._writer.open(wait=True, timeout=self._open_timeout)
        except PoolTimeout:
            raise DatabaseUnreachable(
                f"the writer database (DATABASE_URL, {_where(self._writer_url)}) did not accept "
                f"a connection within {self._open_timeout:g} s; is PostgreSQL running there, "
                "and does the database exist?"
            ) from None
        for replica in self._replicas:
            await replica.open(wait=False)
        stop_waiters = observe_at_scrape(DB_POOL_WAITERS, self._waiters)
        if not self._replicas:
            self._stop_observing = stop_waiters
            return
        stop_lag = observe_at_scrape(DB_REPLICA_LAG, self.replica_lag.reading, combine="max")
        self._stop_lag.clear()
        self._lag_task = asyncio.create_task(self.replica_lag.measure(self._stop_lag))

        def stop_observing() -> None:
            stop_waiters()
            stop_lag()

        self._stop_observing = stop_observing

    def _waiters(self) -> list[tuple[tuple[str, ...], float]]:
        """Requests queued for a connection, per pool, for `eduscale_db_pool_waiters`."""
        return [
            ((pool.name,), pool.get_stats().get("requests_waiting", 0))
            for pool in (self._writer, *self._replicas)
        ]

    async def close(self) -> None:
        """Close every pool, returning their connections."""
        self._stop_observing()
        self._stop_lag.set()
        if self._lag_task is not None:
            await self._lag_task
            self._lag_task = None
        for pool in (self._writer, *self._replicas):
            await pool.close()

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[Connection]:
        """A writer connection (autocommit; use `conn.transaction()` for several statements)."""
        async with self._writer.connection() as conn:
            yield conn

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Connection]:
        """A replica connection for catalogue reads, or the writer's if none is available."""
        for pool in self._rotation():
            try:
                conn = await pool.getconn(timeout=_REPLICA_WAIT_SECONDS)
            except (PoolTimeout, psycopg.OperationalError):
                _log.warning("replica_unavailable", pool=pool.name, fallback="writer")
                continue
            try:
                yield conn
            finally:
                await pool.putconn(conn)
            return
        async with self.writer() as conn:
            yield conn

    @asynccontextmanager
    async def replica(self) -> AsyncIterator[Connection]:
        """A replica connection for reports; never the writer while replicas are configured."""
        if not self._replicas:
            async with self.writer() as conn:
                yield conn
            return
        for pool in self._rotation():
            try:
                conn = await pool.getconn(timeout=_REPLICA_WAIT_SECONDS)
            except (PoolTimeout, psycopg.OperationalError):
                _log.warning("replica_unavailable", pool=pool.name, fallback=None)
                continue
            try:
                yield conn
            finally:
                await pool.putconn(conn)
            return
        raise Unavailable("No read replica is available for reports; retry shortly")

    def _rotation(self) -> list[AsyncConnectionPool[Connection]]:
        if not self._replicas:
            return []
        start = next(self._turn)
        return self._replicas[start:] + self._replicas[:start]

    async def check(self) -> dict[str, bool]:
        """Readiness: can each pool run `SELECT 1` now?"""
        results: dict[str, bool] = {}
        for pool in (self._writer, *self._replicas):
            try:
                async with pool.connection(timeout=_REPLICA_WAIT_SECONDS) as conn:
                    await conn.execute("SELECT 1")
            except (PoolTimeout, psycopg.Error):
                results[pool.name] = False
            else:
                results[pool.name] = True
        return results
