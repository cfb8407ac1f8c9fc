"""The platform's Prometheus alert rules, as data built from the metrics contract.

One source for every place the rules run: `Monitoring` ships them to the cluster as a
`PrometheusRule`, `python -m scripts.alert_rules` writes the same groups to
observability/rules.yml for `promtool test rules` and the local Prometheus, and a test
fails when the file is stale. Expressions name metrics through `contracts.platform_metrics`,
so a renamed metric breaks the build, not the alert.

The 5xx ratio and the latency objective are alerted on as multi-window, multi-burn-rate
SLO alerts (Google SRE Workbook, ch. 5): a fast pair pages when 2 % of a 30-day error
budget burns in an hour (14.4x over 1 h and 5 m) or 5 % in six hours (6x over 6 h and
30 m); a slow pair opens a ticket at 3x over 1 d and 2 h or 1x over 3 d and 6 h. The short
window makes an alert stop soon after the burn does. Ratios are recorded per `job` (the
Service a ServiceMonitor scrapes), so each window is computed once per evaluation.

Every alert carries a `runbook_url` to its section of docs/operations/alerts.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from contracts.platform_metrics import (
    ANALYTICS_EVENTS_DROPPED,
    BREAKER_STATE,
    DB_REPLICA_LAG,
    DLQ_WRITES,
    HTTP_DURATION_BUCKETS,
    HTTP_REQUEST_DURATION,
    KAFKA_CONSUMER_LAG,
    OUTBOX_BACKLOG,
    BreakerState,
)

__all__ = [
    "AVAILABILITY_OBJECTIVE",
    "LATENCY_OBJECTIVE",
    "LATENCY_THRESHOLD_SECONDS",
    "RUNBOOKS",
    "Alert",
    "alerts",
    "rule_groups",
    "runbook_anchor",
]

RUNBOOKS: Final = "docs/operations/alerts.md"
"""The runbook document, relative to the repository root (no external URL is assumed)."""

AVAILABILITY_OBJECTIVE: Final = 0.999
"""Share of requests that must not answer 5xx over 30 days."""
LATENCY_OBJECTIVE: Final = 0.99
"""Share of requests that must finish within `LATENCY_THRESHOLD_SECONDS`: a p99 target."""
LATENCY_THRESHOLD_SECONDS: Final = 1.0
"""The p99 target; a boundary of the contract's buckets, so the ratio is exact."""
if LATENCY_THRESHOLD_SECONDS not in HTTP_DURATION_BUCKETS:  # pragma: no cover - a constant
    raise ValueError("LATENCY_THRESHOLD_SECONDS must be a histogram bucket boundary")

_WINDOWS: Final = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
_FAST: Final = ((14.4, "1h", "5m"), (6.0, "6h", "30m"))
_SLOW: Final = ((3.0, "1d", "2h"), (1.0, "3d", "6h"))
_REPLICA_LAG_SECONDS: Final = 30
_OUTBOX_BACKLOG_ROWS: Final = 1000


@dataclass(frozen=True)
class Alert:
    """One alerting rule and the words an on-call engineer reads first."""

    name: str
    expr: str
    duration: str
    severity: str
    summary: str
    description: str

    def rule(self) -> dict[str, Any]:
        """The rule as Prometheus reads it."""
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOKS}#{runbook_anchor(self.name)}",
            },
        }


def runbook_anchor(alert: str) -> str:
    """The anchor of an alert's section: its heading, `## <AlertName>`, lower-cased."""
    return alert.lower()


def _errors(window: str) -> str:
    count = HTTP_REQUEST_DURATION.part("count")
    return (
        f'sum by (job) (rate({count}{{http_response_status_code=~"5.."}}[{window}]))'
        f" / sum by (job) (rate({count}[{window}]))"
    )


def _slow(window: str) -> str:
    bucket, count = HTTP_REQUEST_DURATION.part("bucket"), HTTP_REQUEST_DURATION.part("count")
    # Scrapers write `le` as "1" or "1.0"; match both.
    le = f"{LATENCY_THRESHOLD_SECONDS:g}"
    return (
        f'1 - sum by (job) (rate({bucket}{{le=~"{le}(\\\\.0)?"}}[{window}]))'
        f" / sum by (job) (rate({count}[{window}]))"
    )


def _record(kind: str, window: str) -> str:
    return f"job:eduscale_http_{kind}_ratio:rate{window}"


def _burn(kind: str, objective: float, pairs: tuple[tuple[float, str, str], ...]) -> str:
    budget = round(1 - objective, 6)
    return " or ".join(
        f"({_record(kind, long)} > {factor:g} * {budget:g}"
        f" and {_record(kind, short)} > {factor:g} * {budget:g})"
        for factor, long, short in pairs
    )


def _slo_alerts() -> list[Alert]:
    found = []
    for kind, objective, what in (
        ("errors", AVAILABILITY_OBJECTIVE, "5xx answers"),
        ("slow", LATENCY_OBJECTIVE, f"requests slower than {LATENCY_THRESHOLD_SECONDS:g} s"),
    ):
        title = "Error" if kind == "errors" else "Latency"
        for speed, pairs, severity, duration in (
            ("Fast", _FAST, "critical", "2m"),
            ("Slow", _SLOW, "warning", "15m"),
        ):
            found.append(
                Alert(
                    name=f"Eduscale{title}BudgetBurn{speed}",
                    expr=_burn(kind, objective, pairs),
                    duration=duration,
                    severity=severity,
                    summary=f"{{{{ $labels.job }}}}: {what} burn the error budget "
                    + ("fast" if speed == "Fast" else "steadily"),
                    description=(
                        f"{{{{ $labels.job }}}}: {what} exceed the {objective:.1%} objective "
                        "fast enough to spend the 30-day budget early."
                    ),
                )
            )
    return found


def alerts() -> list[Alert]:
    """Every alert of the platform, in the order the runbook lists them."""
    return [
        Alert(
            name="EduscaleDeadLetterWrites",
            expr=f"sum by (topic) (increase({DLQ_WRITES.series}[5m])) > 0",
            duration="1m",
            severity="warning",
            summary="Records are landing on the dead-letter topic of {{ $labels.topic }}",
            description="{{ $value | humanize }} records of {{ $labels.topic }} went to its "
            "DLQ in 5 minutes: poison input or a failing dependency. They wait there to be "
            "inspected and replayed.",
        ),
        Alert(
            name="EduscaleBreakerOpen",
            expr=f"max by (provider) ({BREAKER_STATE.series}) == {int(BreakerState.OPEN)}",
            duration="5m",
            severity="critical",
            summary="The circuit breaker for {{ $labels.provider }} has been open for 5 minutes",
            description="Calls to {{ $labels.provider }} are refused without being tried; "
            "AI answers come only from the semantic cache.",
        ),
        Alert(
            name="EduscaleConsumerLagGrowing",
            expr=(
                f"sum by (topic, consumer_group) (delta({KAFKA_CONSUMER_LAG.series}[10m])) > 0"
                f" and sum by (topic, consumer_group) ({KAFKA_CONSUMER_LAG.series}) > 0"
            ),
            duration="15m",
            severity="warning",
            summary="{{ $labels.consumer_group }} falls behind on {{ $labels.topic }}",
            description="The consumer lag of {{ $labels.consumer_group }} has grown for 15 "
            "minutes: the workers cannot keep up and KEDA has not caught up.",
        ),
        Alert(
            name="EduscaleReplicaLag",
            expr=f"max by (replica) ({DB_REPLICA_LAG.series}) > {_REPLICA_LAG_SECONDS}",
            duration="5m",
            severity="warning",
            summary="Read replica {{ $labels.replica }} is more than "
            f"{_REPLICA_LAG_SECONDS} s behind the writer",
            description="Reads served by {{ $labels.replica }} are {{ $value | humanize }} s "
            "stale.",
        ),
        Alert(
            name="EduscaleOutboxBacklog",
            expr=f"sum by (topic) ({OUTBOX_BACKLOG.series}) > {_OUTBOX_BACKLOG_ROWS}",
            duration="10m",
            severity="warning",
            summary="The outbox for {{ $labels.topic }} holds more than "
            f"{_OUTBOX_BACKLOG_ROWS} unpublished rows",
            description="Committed work is not reaching Kafka: the relay is down or Kafka "
            "refuses writes.",
        ),
        Alert(
            name="EduscaleAnalyticsDrops",
            expr=f"sum by (reason) (increase({ANALYTICS_EVENTS_DROPPED.series}[10m])) > 0",
            duration="5m",
            severity="warning",
            summary="Learning events are being dropped ({{ $labels.reason }})",
            description="{{ $value | humanize }} events never reached ClickHouse in 10 "
            "minutes; reports will undercount.",
        ),
        *_slo_alerts(),
    ]


def _recording_rules() -> list[dict[str, str]]:
    return [
        {"record": _record(kind, window), "expr": ratio(window)}
        for kind, ratio in (("errors", _errors), ("slow", _slow))
        for window in _WINDOWS
    ]


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups, as the `groups` of a rule file or a `PrometheusRule` spec."""
    return [
        {"name": "eduscale-slo-ratios", "rules": _recording_rules()},
        {"name": "eduscale-alerts", "rules": [alert.rule() for alert in alerts()]},
    ]
