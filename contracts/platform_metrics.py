"""The Prometheus metrics the services expose and the cluster scrapes, scales and alerts on.

One catalogue for both sides: the services register exactly these names and label sets
(with `prometheus-client`), and the infrastructure builds its autoscaler metric, alert
rules and dashboards from the same values, so a renamed metric or label fails a test on
both sides instead of leaving an alert that can never fire.

The HTTP metrics follow the OpenTelemetry HTTP semantic conventions in their Prometheus
form (dots become underscores, the unit is a suffix). The platform's own metrics carry
the `eduscale_` prefix, as the workers' existing counters do.

`name` is what a process registers; `series` is what a query reads: `prometheus-client`
appends `_total` to a counter, and a histogram is read through its `_bucket`, `_count`
and `_sum` series.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

__all__ = [
    "ANALYTICS_EVENTS_DROPPED",
    "BREAKER_STATE",
    "DB_POOL_WAITERS",
    "DB_REPLICA_LAG",
    "DLQ_WRITES",
    "HTTP_ACTIVE_REQUESTS",
    "HTTP_DURATION_BUCKETS",
    "HTTP_REQUEST_DURATION",
    "KAFKA_CONSUMER_LAG",
    "METRICS",
    "METRICS_PATH",
    "OUTBOX_BACKLOG",
    "REDIS_ERRORS",
    "SEMANTIC_CACHE_LOOKUPS",
    "WORKER_JOBS_IN_FLIGHT",
    "BreakerState",
    "CacheResult",
    "Metric",
]

METRICS_PATH = "/metrics"
"""Where every process serves its metrics, on its own port."""

MetricKind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Metric:
    """One metric: its registered name, kind, labels and help text."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    help: str

    @property
    def series(self) -> str:
        """The series a query reads: `<name>_total` for a counter, else `name`."""
        return f"{self.name}_total" if self.kind == "counter" else self.name

    def part(self, suffix: Literal["bucket", "count", "sum"]) -> str:
        """A histogram's `_bucket`, `_count` or `_sum` series."""
        if self.kind != "histogram":
            raise ValueError(f"{self.name} is a {self.kind}, not a histogram")
        return f"{self.name}_{suffix}"


class BreakerState(IntEnum):
    """The value of `BREAKER_STATE`: a gauge, so an alert can ask "open for 5 minutes"."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CacheResult:
    """Values of the `result` label of `SEMANTIC_CACHE_LOOKUPS`."""

    HIT = "hit"
    MISS = "miss"
    NEAR_MISS = "near_miss"
    """Close enough to be a candidate, refused by the verifier: the threshold's cost."""


HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
"""OpenTelemetry's advised boundaries for `http.server.request.duration` (seconds)."""

HTTP_REQUEST_DURATION = Metric(
    "http_server_request_duration_seconds",
    "histogram",
    ("http_route", "http_request_method", "http_response_status_code"),
    "Duration of HTTP server requests, per route template.",
)
HTTP_ACTIVE_REQUESTS = Metric(
    "http_server_active_requests",
    "gauge",
    ("http_request_method",),
    "Requests in progress in this process: the pod's request queue depth.",
)
KAFKA_CONSUMER_LAG = Metric(
    "eduscale_kafka_consumer_lag",
    "gauge",
    ("topic", "consumer_group"),
    "Records behind the partition ends, summed over the partitions this consumer owns.",
)
WORKER_JOBS_IN_FLIGHT = Metric(
    "eduscale_worker_jobs_in_flight",
    "gauge",
    ("topic",),
    "Jobs this worker process is running now.",
)
DLQ_WRITES = Metric(
    "eduscale_dlq_writes",
    "counter",
    ("topic",),
    "Records written to the dead-letter topic of `topic` (poison or exhausted retries).",
)
BREAKER_STATE = Metric(
    "eduscale_breaker_state",
    "gauge",
    ("provider",),
    "Circuit breaker state per upstream provider: 0 closed, 1 half-open, 2 open.",
)
SEMANTIC_CACHE_LOOKUPS = Metric(
    "eduscale_semantic_cache_lookups",
    "counter",
    ("result",),
    "Semantic-cache lookups by result: hit, miss, near_miss.",
)
OUTBOX_BACKLOG = Metric(
    "eduscale_outbox_backlog",
    "gauge",
    ("topic",),
    "Outbox rows written but not yet published to Kafka.",
)
ANALYTICS_EVENTS_DROPPED = Metric(
    "eduscale_analytics_events_dropped",
    "counter",
    ("reason",),
    "Learning events dropped before reaching ClickHouse (buffer full, invalid).",
)
DB_POOL_WAITERS = Metric(
    "eduscale_db_pool_waiters",
    "gauge",
    ("pool",),
    "Requests waiting for a PostgreSQL connection, per pool (writer, reader).",
)
DB_REPLICA_LAG = Metric(
    "eduscale_db_replica_lag_seconds",
    "gauge",
    ("replica",),
    "Replay delay of a read replica, as the process reading from it last measured it.",
)
REDIS_ERRORS = Metric(
    "eduscale_redis_errors",
    "counter",
    ("operation",),
    "Redis commands that failed (connection, timeout, server error).",
)

METRICS: tuple[Metric, ...] = (
    HTTP_REQUEST_DURATION,
    HTTP_ACTIVE_REQUESTS,
    KAFKA_CONSUMER_LAG,
    WORKER_JOBS_IN_FLIGHT,
    DLQ_WRITES,
    BREAKER_STATE,
    SEMANTIC_CACHE_LOOKUPS,
    OUTBOX_BACKLOG,
    ANALYTICS_EVENTS_DROPPED,
    DB_POOL_WAITERS,
    DB_REPLICA_LAG,
    REDIS_ERRORS,
)
"""Every metric of the platform."""
