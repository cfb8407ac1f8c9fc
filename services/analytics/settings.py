"""Analytics settings, read once from the environment, beside the shared ones.

`ANALYTICS_URL` names a ClickHouse server (`http[s]://host:8123/<database>`); unset, the
analytics store is embedded ClickHouse (chDB) in `ANALYTICS_DATA_DIR`. A malformed value
stops start-up with one line naming the variable and what is allowed (`SettingsError`).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.runtime.settings import SettingsError

__all__ = ["EMBEDDED_DATABASE", "AnalyticsSettings"]

EMBEDDED_DATABASE = "analytics"
"""The database inside the embedded store."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, kw_only=True)
class AnalyticsSettings:
    """Where events are stored and how they travel there."""

    url: str | None = None
    """ANALYTICS_URL: `http[s]://host:port/<database>` of a ClickHouse server; unset means
    embedded chDB."""
    username: str = "default"
    """ANALYTICS_USERNAME: the server user."""
    password: str = ""
    """ANALYTICS_PASSWORD: the server user's password."""
    cluster: str | None = None
    """ANALYTICS_CLUSTER: the server's cluster name; set, the schema is created ON CLUSTER
    with Replicated engines behind Distributed tables."""
    data_dir: str = ".eduscale/analytics"
    """ANALYTICS_DATA_DIR: the embedded store's directory (one process at a time)."""
    events_ttl_days: int = 395
    """ANALYTICS_EVENTS_TTL_DAYS: raw events older than this are deleted by ClickHouse."""
    buffer_size: int = 10_000
    """ANALYTICS_BUFFER_SIZE: events an emitting process holds for the broker; beyond it
    new events are dropped and counted, never the request."""
    flush_interval_ms: int = 200
    """ANALYTICS_FLUSH_INTERVAL_MS: how often the buffer is handed to the producer."""
    shutdown_flush_seconds: float = 5.0
    """ANALYTICS_SHUTDOWN_FLUSH_SECONDS: how long shutdown waits for buffered events."""
    batch_size: int = 5_000
    """ANALYTICS_BATCH_SIZE: the most events the sink writes in one insert."""
    batch_max_wait_ms: int = 1_000
    """ANALYTICS_BATCH_MAX_WAIT_MS: how long the sink waits to fill a batch."""
    report_max_days: int = 366
    """ANALYTICS_REPORT_MAX_DAYS: the longest range a report may ask for."""
    local_sink: bool = True
    """ANALYTICS_LOCAL_SINK: with the embedded store, the Course service also runs the
    sink (chDB's directory admits one process, and the reports read it)."""

    @property
    def embedded(self) -> bool:
        """Whether the store is embedded chDB (no server)."""
        return self.url is None

    @property
    def database(self) -> str:
        """The ClickHouse database of the tables."""
        if self.url is None:
            return EMBEDDED_DATABASE
        return urlsplit(self.url).path.strip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "AnalyticsSettings":
        """Read the variables; `SettingsError` names a malformed one."""
        read = _Reader(environ)
        url = read.url("ANALYTICS_URL")
        return cls(
            url=url,
            username=read.text("ANALYTICS_USERNAME") or "default",
            password=read.text("ANALYTICS_PASSWORD") or "",
            cluster=read.identifier("ANALYTICS_CLUSTER"),
            data_dir=read.text("ANALYTICS_DATA_DIR") or ".eduscale/analytics",
            events_ttl_days=read.integer("ANALYTICS_EVENTS_TTL_DAYS", 395, 1, 36_500),
            buffer_size=read.integer("ANALYTICS_BUFFER_SIZE", 10_000, 1, 1_000_000),
            flush_interval_ms=read.integer("ANALYTICS_FLUSH_INTERVAL_MS", 200, 10, 60_000),
            shutdown_flush_seconds=float(
                read.integer("ANALYTICS_SHUTDOWN_FLUSH_SECONDS", 5, 0, 60)
            ),
            batch_size=read.integer("ANALYTICS_BATCH_SIZE", 5_000, 1, 1_000_000),
            batch_max_wait_ms=read.integer("ANALYTICS_BATCH_MAX_WAIT_MS", 1_000, 1, 60_000),
            report_max_days=read.integer("ANALYTICS_REPORT_MAX_DAYS", 366, 1, 3_660),
            local_sink=read.flag("ANALYTICS_LOCAL_SINK", default=True),
        )


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        return self._environ.get(name, "").strip() or None

    def url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        try:
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            parts = parts._replace(netloc="")
        database = parts.path.strip("/")
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SettingsError(
                f"{name}={raw!r} is not allowed: use http[s]://host:8123/<database>"
            )
        if not _IDENTIFIER.match(database):
            raise SettingsError(
                f"{name}={raw!r} names no database: use http[s]://host:8123/<database> "
                "(letters, digits and _)"
            )
        return raw

    def identifier(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is not None and not _IDENTIFIER.match(raw):
            raise SettingsError(f"{name}={raw!r} is not allowed: use letters, digits and _")
        return raw

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise SettingsError(
                f"{name}={raw!r} is not allowed: use a whole number from {low} to {high}"
            )
        return int(raw)

    def flag(self, name: str, *, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in {"true", "1", "yes"}:
            return True
        if raw.lower() in {"false", "0", "no"}:
            return False
        raise SettingsError(f"{name}={raw!r} is not a boolean: use true or false")
