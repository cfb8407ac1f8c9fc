"""Analytics settings, read once from the environment, beside the shared ones.

`ANALYTICS_URL` names a ClickHouse server (`http[s]://host:8123/<database>`); unset, the
analytics store is embedded ClickHouse (chDB) in `ANALYTICS_DATA_DIR`. A malformed value
stops start-up with one line naming the variable and what is allowed (`SettingsError`).
"""

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator

from services.runtime.environment import EnvironmentSettings, setting

__all__ = ["EMBEDDED_DATABASE", "AnalyticsSettings"]

EMBEDDED_DATABASE = "analytics"
"""The database inside the embedded store."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_URL_SHAPE = "http[s]://host:8123/<database>"

Compression = Literal["zstd", "lz4", "gzip", "snappy", "none"]
"""librdkafka's `compression.type` values; MSK keeps the producer's codec
(`compression.type=producer` on the broker), so the batches are stored and replicated as sent."""


def _server_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    try:
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        message = f"use {_URL_SHAPE}"
        raise ValueError(message)
    if not _IDENTIFIER.match(parts.path.strip("/")):
        message = f"it names no database: use {_URL_SHAPE} (letters, digits and _)"
        raise ValueError(message)
    return value


def _identifier(value: str | None) -> str | None:
    if value is not None and not _IDENTIFIER.match(value):
        message = "use letters, digits and _"
        raise ValueError(message)
    return value


class AnalyticsSettings(EnvironmentSettings):
    """Where events are stored and how they travel there."""

    url: Annotated[str | None, AfterValidator(_server_url)] = setting(
        "ANALYTICS_URL",
        None,
        description="`http[s]://host:port/<database>` of a ClickHouse server; unset means "
        "embedded chDB.",
        allowed=_URL_SHAPE,
    )
    username: str = setting("ANALYTICS_USERNAME", "default", description="The server user.")
    password: str = setting(
        "ANALYTICS_PASSWORD", "", description="The server user's password.", secret=True
    )
    cluster: Annotated[str | None, AfterValidator(_identifier)] = setting(
        "ANALYTICS_CLUSTER",
        None,
        description="The server's cluster name; set, the schema is created ON CLUSTER with "
        "Replicated engines behind Distributed tables.",
        allowed="letters, digits and _",
    )
    data_dir: str = setting(
        "ANALYTICS_DATA_DIR",
        ".eduscale/analytics",
        description="The embedded store's directory (one process at a time).",
    )
    events_ttl_days: int = setting(
        "ANALYTICS_EVENTS_TTL_DAYS",
        395,
        ge=1,
        le=36_500,
        description="Raw events older than this are deleted by ClickHouse.",
    )
    buffer_size: int = setting(
        "ANALYTICS_BUFFER_SIZE",
        10_000,
        ge=1,
        le=1_000_000,
        description="Events an emitting process holds for the broker; beyond it new events "
        "are dropped and counted, never the request.",
    )
    flush_interval_ms: int = setting(
        "ANALYTICS_FLUSH_INTERVAL_MS",
        200,
        ge=10,
        le=60_000,
        description="How often the buffer is handed to the producer.",
    )
    compression: Compression = setting(
        "ANALYTICS_COMPRESSION",
        "zstd",
        description="How the producer compresses each batch of events. zstd sends about a "
        "third of the bytes at the emitters' peak rate (`analytics_event_wire_bytes`, "
        "docs/benchmarks.md); the brokers are sized by those bytes.",
    )
    shutdown_flush_seconds: float = setting(
        "ANALYTICS_SHUTDOWN_FLUSH_SECONDS",
        5.0,
        ge=0,
        le=60,
        description="How long shutdown waits for buffered events.",
    )
    batch_size: int = setting(
        "ANALYTICS_BATCH_SIZE",
        5_000,
        ge=1,
        le=1_000_000,
        description="The most events the sink writes in one insert.",
    )
    batch_max_wait_ms: int = setting(
        "ANALYTICS_BATCH_MAX_WAIT_MS",
        1_000,
        ge=1,
        le=60_000,
        description="How long the sink waits to fill a batch.",
    )
    report_max_days: int = setting(
        "ANALYTICS_REPORT_MAX_DAYS",
        366,
        ge=1,
        le=3_660,
        description="The longest range a report may ask for.",
    )
    local_sink: bool = setting(
        "ANALYTICS_LOCAL_SINK",
        True,  # noqa: FBT003 - a default value
        description="With the embedded store, the Course service also runs the sink "
        "(chDB's directory admits one process, and the reports read it).",
    )

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
