"""The platform's Grafana dashboards, generated from the metrics contract.

Dashboards written by hand in Grafana drift from the metric names and are lost with the
pod; these are built here from `contracts.platform_metrics` and shipped as ConfigMaps the
Grafana sidecar of kube-prometheus-stack loads (label `grafana_dashboard: "1"`), so a
renamed metric fails a test and a rebuilt Grafana shows the same boards.

Each panel's query names its service literally (one golden-signals row per HTTP service)
rather than through a template variable: every query is then plain PromQL that `promtool`
can check, and the board reads without choosing anything first.

- golden signals: traffic, 5xx ratio, p50/p99 latency and saturation (active requests per
  pod, DB pool waiters) per HTTP service;
- Kafka: consumer lag, jobs in flight, DLQ writes, outbox backlog, analytics drops;
- AI: breaker state per provider, semantic-cache hit rate and near misses;
- capacity: replicas against each autoscaler's maximum (kube-state-metrics).

The JSON model is written here rather than with Grafana's grafana-foundation-sdk: the
boards use one panel type and a dozen of its fields, which the tests check (layout, every
query parsed by promtool, every metric in the contract), while the SDK is a generated
builder for every Grafana object, versioned with Grafana's own releases, that would add a
dependency to every consumer of `components` for those dozen fields.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from contracts.platform_metrics import (
    ANALYTICS_EVENTS_DROPPED,
    BREAKER_STATE,
    DB_POOL_WAITERS,
    DLQ_WRITES,
    HTTP_ACTIVE_REQUESTS,
    HTTP_REQUEST_DURATION,
    KAFKA_CONSUMER_LAG,
    OUTBOX_BACKLOG,
    REDIS_ERRORS,
    SEMANTIC_CACHE_LOOKUPS,
    WORKER_JOBS_IN_FLIGHT,
    CacheResult,
)

__all__ = [
    "DASHBOARD_LABEL",
    "KUBE_STATE_METRICS",
    "Dashboard",
    "Panel",
    "dashboards",
]

DASHBOARD_LABEL: Final = {"grafana_dashboard": "1"}
"""The label the Grafana sidecar looks for on ConfigMaps."""
KUBE_STATE_METRICS: Final = (
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
)
"""The only metrics the boards read that the platform's processes do not export."""
_DATASOURCE: Final = {"type": "prometheus", "uid": "prometheus"}
"""kube-prometheus-stack's provisioned Prometheus data source."""
_WIDTH: Final = 8
_HEIGHT: Final = 8


@dataclass(frozen=True)
class Panel:
    """One time-series panel: a title, a unit and its queries (legend, PromQL)."""

    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Dashboard:
    """One board: a stable uid (Grafana links survive a rebuild) and its panels."""

    uid: str
    title: str
    panels: tuple[Panel, ...]

    def model(self) -> dict[str, Any]:
        """The dashboard JSON model Grafana imports."""
        per_row = 24 // _WIDTH
        return {
            "uid": self.uid,
            "title": self.title,
            "tags": ["eduscale"],
            "timezone": "utc",
            "schemaVersion": 39,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "editable": False,
            "panels": [
                {
                    "id": index + 1,
                    "type": "timeseries",
                    "title": panel.title,
                    "datasource": _DATASOURCE,
                    "gridPos": {
                        "x": (index % per_row) * _WIDTH,
                        "y": (index // per_row) * _HEIGHT,
                        "w": _WIDTH,
                        "h": _HEIGHT,
                    },
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "targets": [
                        {
                            "refId": chr(ord("A") + n),
                            "datasource": _DATASOURCE,
                            "expr": expr,
                            "legendFormat": legend,
                        }
                        for n, (legend, expr) in enumerate(panel.queries)
                    ],
                }
                for index, panel in enumerate(self.panels)
            ],
        }

    def json(self) -> str:
        """The model as the text a ConfigMap carries."""
        return json.dumps(self.model(), indent=1, sort_keys=True)

    def queries(self) -> list[str]:
        """Every PromQL expression on the board."""
        return [expr for panel in self.panels for _, expr in panel.queries]


def _golden_signals(service: str) -> tuple[Panel, ...]:
    count = HTTP_REQUEST_DURATION.part("count")
    bucket = HTTP_REQUEST_DURATION.part("bucket")
    job = f'job="{service}"'
    latency = tuple(
        (
            f"p{q}",
            f"histogram_quantile(0.{q}, sum by (le) (rate({bucket}{{{job}}}[5m])))",
        )
        for q in (50, 99)
    )
    return (
        Panel(
            f"{service}: requests per second by route",
            "reqps",
            (("{{http_route}}", f"sum by (http_route) (rate({count}{{{job}}}[5m]))"),),
        ),
        Panel(
            f"{service}: 5xx ratio",
            "percentunit",
            (
                (
                    "5xx",
                    (
                        f'sum(rate({count}{{{job}, http_response_status_code=~"5.."}}[5m]))'
                        f" / sum(rate({count}{{{job}}}[5m]))"
                    ),
                ),
            ),
        ),
        Panel(f"{service}: latency", "s", latency),
        Panel(
            f"{service}: active requests per pod (HPA queue depth)",
            "short",
            (("{{pod}}", f"sum by (pod) ({HTTP_ACTIVE_REQUESTS.series}{{{job}}})"),),
        ),
        Panel(
            f"{service}: DB pool waiters",
            "short",
            (("{{pool}}", f"sum by (pool) ({DB_POOL_WAITERS.series}{{{job}}})"),),
        ),
        Panel(
            f"{service}: Redis errors per second",
            "ops",
            (("{{operation}}", f"sum by (operation) (rate({REDIS_ERRORS.series}{{{job}}}[5m]))"),),
        ),
    )


def _kafka() -> tuple[Panel, ...]:
    return (
        Panel(
            "consumer lag",
            "short",
            (
                (
                    "{{consumer_group}} on {{topic}}",
                    f"sum by (consumer_group, topic) ({KAFKA_CONSUMER_LAG.series})",
                ),
            ),
        ),
        Panel(
            "jobs in flight",
            "short",
            (("{{topic}}", f"sum by (topic) ({WORKER_JOBS_IN_FLIGHT.series})"),),
        ),
        Panel(
            "dead-letter writes (per 5 min)",
            "short",
            (("{{topic}}", f"sum by (topic) (increase({DLQ_WRITES.series}[5m]))"),),
        ),
        Panel(
            "outbox backlog",
            "short",
            (("{{topic}}", f"sum by (topic) ({OUTBOX_BACKLOG.series})"),),
        ),
        Panel(
            "analytics events dropped per second",
            "ops",
            (
                (
                    "{{reason}}",
                    f"sum by (reason) (rate({ANALYTICS_EVENTS_DROPPED.series}[5m]))",
                ),
            ),
        ),
    )


def _ai() -> tuple[Panel, ...]:
    lookups = SEMANTIC_CACHE_LOOKUPS.series

    def share(result: str) -> str:
        return f'sum(rate({lookups}{{result="{result}"}}[5m])) / sum(rate({lookups}[5m]))'

    return (
        Panel(
            "breaker state (0 closed, 1 half-open, 2 open)",
            "short",
            (("{{provider}}", f"max by (provider) ({BREAKER_STATE.series})"),),
        ),
        Panel(
            "semantic cache hit rate",
            "percentunit",
            (
                ("hit", share(CacheResult.HIT)),
                ("near miss", share(CacheResult.NEAR_MISS)),
            ),
        ),
        Panel(
            "semantic cache lookups per second",
            "ops",
            (("{{result}}", f"sum by (result) (rate({lookups}[5m]))"),),
        ),
    )


def _capacity() -> tuple[Panel, ...]:
    current, maximum = KUBE_STATE_METRICS
    return (
        Panel(
            "replicas against the autoscaler's maximum",
            "percentunit",
            (
                (
                    "{{horizontalpodautoscaler}}",
                    (
                        f"sum by (namespace, horizontalpodautoscaler) ({current})"
                        f" / sum by (namespace, horizontalpodautoscaler) ({maximum})"
                    ),
                ),
            ),
        ),
        Panel(
            "replicas",
            "short",
            (
                (
                    "{{horizontalpodautoscaler}}",
                    f"sum by (namespace, horizontalpodautoscaler) ({current})",
                ),
            ),
        ),
    )


def dashboards(http_services: Sequence[str]) -> list[Dashboard]:
    """Every board; `http_services` get a golden-signals row each."""
    return [
        Dashboard(
            "eduscale-golden-signals",
            "eduscale / golden signals",
            tuple(panel for service in http_services for panel in _golden_signals(service)),
        ),
        Dashboard("eduscale-kafka", "eduscale / Kafka", _kafka()),
        Dashboard("eduscale-ai", "eduscale / AI", _ai()),
        Dashboard("eduscale-capacity", "eduscale / capacity", _capacity()),
    ]
