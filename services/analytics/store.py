"""Where events are stored: a ClickHouse server, or embedded ClickHouse (chDB).

Both sides speak the same SQL through one small interface (create the schema, insert a
batch in one statement, run a parameterised query), so the sink and the reports do not
know which they have. Every call is blocking C or HTTP work and runs in a worker thread,
never on the event loop.

chDB is a process-wide embedded server: one process holds its directory (a second one
gets "Cannot lock file .../status"), and one process serves one directory (a session on
another path is refused while one is open). Sessions on the same path in one process
share the server, so the Course service's reports and an in-process sink can both use it;
two processes cannot. See README "Analytics" for the local layout this implies.
"""

import fcntl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import anyio.to_thread
import msgspec

from services.analytics.schema import AnalyticsSchema
from services.analytics.settings import AnalyticsSettings

__all__ = [
    "COLUMNS",
    "AnalyticsStore",
    "EmbeddedStore",
    "EventRow",
    "ServerStore",
    "StoreUnavailable",
    "open_store",
]

COLUMNS = (
    "event_id",
    "occurred_at",
    "course_id",
    "user_id",
    "kind",
    "score",
    "props",
    "schema_version",
)
QueryValue = str | int | float | UUID | date | datetime | Sequence[UUID] | Sequence[str]


_lines = msgspec.json.Encoder()


class StoreUnavailable(RuntimeError):
    """The analytics store cannot be reached or opened; the message says why."""


@dataclass(frozen=True)
class EventRow:
    """One row of the `events` table."""

    event_id: UUID
    occurred_at: datetime
    course_id: UUID
    user_id: UUID
    kind: str
    score: float | None
    props: str
    schema_version: int

    def values(self) -> tuple[object, ...]:
        """The row in `COLUMNS` order."""
        return (
            self.event_id,
            self.occurred_at,
            self.course_id,
            self.user_id,
            self.kind,
            self.score,
            self.props,
            self.schema_version,
        )


class AnalyticsStore(Protocol):
    """What the sink and the reports need from ClickHouse."""

    schema: AnalyticsSchema

    async def ensure_schema(self) -> None:
        """Create whatever is missing, and keep the TTL as configured."""

    async def insert(self, rows: Sequence[EventRow]) -> None:
        """Insert `rows` into `events` in one statement."""

    async def query(
        self, sql: str, params: Mapping[str, QueryValue] | None = None
    ) -> list[dict[str, Any]]:
        """Rows of `sql`, whose `{name:Type}` placeholders take `params`."""
        ...

    async def close(self) -> None:
        """Release the connection or session."""


def _holder(directory: Path) -> str | None:
    """Who holds `directory`, from ClickHouse's status file, if another process does.

    chDB's own error says only "Error initializing EmbeddedServer"; the lock it failed to
    take is an exclusive `flock` on `status`, which holds the holder's PID.
    """
    status = directory / "status"
    try:
        with status.open("rb") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = file.read(200).decode(errors="replace")
                pid = text.split("PID:", 1)[1].split()[0] if "PID:" in text else "?"
                return f"the directory is held by another process (PID {pid})"
            fcntl.flock(file, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def _ttl_matches(create_query: str, days: int) -> bool:
    return f"toIntervalDay({days})" in create_query or f"INTERVAL {days} DAY" in create_query


class _BlockingStore:
    """The async face of a store whose client blocks.

    Every call runs on a worker thread, so a slow insert or report never stalls the loop.
    """

    def _ensure_schema(self) -> None:
        raise NotImplementedError

    def _insert(self, rows: Sequence[EventRow]) -> None:
        raise NotImplementedError

    def _rows(self, sql: str, params: Mapping[str, QueryValue] | None = None) -> list[Any]:
        raise NotImplementedError

    async def ensure_schema(self) -> None:
        """Create whatever is missing, and keep the TTL as configured."""
        await anyio.to_thread.run_sync(self._ensure_schema)

    async def insert(self, rows: Sequence[EventRow]) -> None:
        """Insert `rows` into `events` in one statement."""
        await anyio.to_thread.run_sync(self._insert, rows)

    async def query(
        self, sql: str, params: Mapping[str, QueryValue] | None = None
    ) -> list[dict[str, Any]]:
        """Rows of `sql`, whose `{name:Type}` placeholders take `params`."""
        return await anyio.to_thread.run_sync(self._rows, sql, params)


class EmbeddedStore(_BlockingStore):
    """chDB in a directory: in-process ClickHouse, persistent, no server."""

    def __init__(self, directory: str, schema: AnalyticsSchema) -> None:
        try:
            import chdb.session  # noqa: PLC0415 - a large native library; only this store needs it
        except ModuleNotFoundError:
            raise StoreUnavailable(
                "the embedded analytics store needs chDB, which this installation leaves out"
                " (the services' image does): set ANALYTICS_URL to a ClickHouse server, or"
                ' install "eduscale[local]"'
            ) from None

        self.schema = schema
        path = Path(directory).expanduser().resolve()
        self._lock = threading.Lock()
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._session = chdb.session.Session(str(path))
        except Exception as error:  # noqa: BLE001 - chDB raises plain RuntimeErrors
            raise StoreUnavailable(
                f"cannot open the embedded analytics store in {path}: {_holder(path) or error}."
                " chDB admits one process per directory: run the sink in the process that reads"
                " reports (the Course service does with ANALYTICS_LOCAL_SINK=true), or set"
                " ANALYTICS_URL"
            ) from None

    @classmethod
    async def open(cls, directory: str, schema: AnalyticsSchema) -> "EmbeddedStore":
        """Open (or create) the store in `directory`, off the event loop."""
        return await anyio.to_thread.run_sync(cls, directory, schema)

    def _run(self, sql: str, params: Mapping[str, QueryValue] | None = None) -> bytes:
        with self._lock:
            try:
                result = self._session.query(
                    sql, "JSONEachRow", params={k: _literal(v) for k, v in (params or {}).items()}
                )
            except Exception as error:
                raise StoreUnavailable(f"analytics query failed: {error}") from error
        return bytes(result.bytes())

    def _ensure_schema(self) -> None:
        for statement in self.schema.statements():
            self._run(statement)
        (table,) = self._rows(
            "SELECT create_table_query FROM system.tables WHERE database = {db:String}"
            " AND name = 'events'",
            {"db": self.schema.database},
        )
        if not _ttl_matches(str(table["create_table_query"]), self.schema.ttl_days):
            self._run(self.schema.modify_ttl())

    def _rows(self, sql: str, params: Mapping[str, QueryValue] | None = None) -> list[Any]:
        raw = self._run(sql, params)
        return [msgspec.json.decode(line) for line in raw.splitlines() if line.strip()]

    def _insert(self, rows: Sequence[EventRow]) -> None:
        if not rows:
            return
        # msgspec writes UUIDs and RFC 3339 times natively (fast); ClickHouse reads the
        # times with best-effort parsing.
        body = _lines.encode_lines([row.values() for row in rows])
        columns = ", ".join(COLUMNS)
        statement = (
            f"INSERT INTO {self.schema.events} ({columns})"
            " SETTINGS date_time_input_format = 'best_effort' FORMAT JSONCompactEachRow\n"
        )
        self._run(statement + body.decode())

    async def close(self) -> None:
        """Close this session (the directory is released when the last one closes)."""
        await anyio.to_thread.run_sync(self._session.close)


class ServerStore(_BlockingStore):
    """A ClickHouse server (or cluster) over HTTP, through clickhouse-connect."""

    def __init__(self, settings: AnalyticsSettings, schema: AnalyticsSchema) -> None:
        import clickhouse_connect  # type: ignore[import-untyped]  # noqa: PLC0415 - only here

        assert settings.url is not None  # noqa: S101 - the caller checked `embedded`
        parts = urlsplit(settings.url)
        self.schema = schema
        self._cluster = settings.cluster
        try:
            self._client = clickhouse_connect.get_client(
                host=parts.hostname or "",
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                secure=parts.scheme == "https",
                username=settings.username,
                password=settings.password,
                connect_timeout=5,
                send_receive_timeout=60,
            )
        except Exception as error:  # noqa: BLE001 - connection, auth and HTTP errors alike
            raise StoreUnavailable(
                f"cannot reach ClickHouse at {parts.hostname}: {error}"
            ) from None

    @classmethod
    async def open(cls, settings: AnalyticsSettings, schema: AnalyticsSchema) -> "ServerStore":
        """Connect (a round trip), off the event loop."""
        return await anyio.to_thread.run_sync(cls, settings, schema)

    def _ensure_schema(self) -> None:
        for statement in self.schema.statements():
            self._client.command(statement)
        local = "events_local" if self._cluster else "events"
        (table,) = self._rows(
            "SELECT create_table_query FROM system.tables WHERE database = {db:String}"
            " AND name = {name:String}",
            {"db": self.schema.database, "name": local},
        )
        if not _ttl_matches(str(table["create_table_query"]), self.schema.ttl_days):
            self._client.command(self.schema.modify_ttl())

    def _rows(self, sql: str, params: Mapping[str, QueryValue] | None = None) -> list[Any]:
        try:
            return list(self._client.query(sql, parameters=dict(params or {})).named_results())
        except Exception as error:
            raise StoreUnavailable(f"analytics query failed: {error}") from error

    def _insert(self, rows: Sequence[EventRow]) -> None:
        if not rows:
            return
        settings = {"insert_distributed_sync": 1} if self._cluster else {}
        try:
            self._client.insert(
                self.schema.events,
                [row.values() for row in rows],
                column_names=list(COLUMNS),
                settings=settings,
            )
        except Exception as error:
            raise StoreUnavailable(f"analytics insert failed: {error}") from error

    async def close(self) -> None:
        """Close the HTTP pool."""
        await anyio.to_thread.run_sync(self._client.close)


async def open_store(settings: AnalyticsSettings) -> AnalyticsStore:
    """The configured store with its schema in place (`StoreUnavailable` if it is not)."""
    schema = AnalyticsSchema(settings.database, settings.events_ttl_days, settings.cluster)
    store: AnalyticsStore
    if settings.embedded:
        store = await EmbeddedStore.open(settings.data_dir, schema)
    else:
        store = await ServerStore.open(settings, schema)
    try:
        await store.ensure_schema()
    except BaseException:
        await store.close()
        raise
    return store


def _datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value: QueryValue) -> str:
    """A parameter as chDB's `{name:Type}` binding reads it (arrays as literals)."""
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, str | int | float | UUID | date):
        return str(value)
    return "[" + ",".join(_quote(str(item)) for item in value) + "]"
