"""The platform's metrics, registered once per process with `prometheus-client`.

`prometheus-client` is the Prometheus project's own client: it owns the text and
OpenMetrics exposition, content negotiation and the counter/gauge/histogram semantics,
which a hand-written exposition got only partly right. Names, kinds and label sets come
from `contracts.platform_metrics`, the catalogue the alert rules, dashboards and
autoscalers are built from, so the series a rule reads is the series a process writes.

Values that already live in an object (a pool's waiting requests, the emitter's drop
counts) are read when Prometheus scrapes, by a callback registered with
`observe_at_scrape`, instead of being copied on every change.
"""

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from litestar import asgi
from litestar.types import Receive, Scope, Send
from prometheus_client import REGISTRY, Counter, Gauge, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contracts.platform_metrics import (
    KAFKA_CONSUMER_LAG,
    METRICS_PATH,
    OUTBOX_BACKLOG,
    REDIS_ERRORS,
)
from contracts.platform_metrics import Metric as MetricSpec

__all__ = [
    "CONSUMER_LAG",
    "OUTBOX_PENDING",
    "REDIS_FAILURES",
    "Counters",
    "metrics_app",
    "metrics_handler",
    "observe_at_scrape",
    "observe_counters_at_scrape",
]


def _counter(spec: MetricSpec) -> Counter:
    return Counter(spec.name, spec.help, spec.labels)


def _gauge(spec: MetricSpec) -> Gauge:
    return Gauge(spec.name, spec.help, spec.labels)


CONSUMER_LAG = _gauge(KAFKA_CONSUMER_LAG)
OUTBOX_PENDING = _gauge(OUTBOX_BACKLOG)
REDIS_FAILURES = _counter(REDIS_ERRORS)

Reading = Callable[[], Iterable[tuple[tuple[str, ...], float]]]
"""Label values -> value, read when Prometheus scrapes."""

Counters = Callable[[], Mapping[str, float]]
"""Counter name (with its `_total`) -> value, read when Prometheus scrapes."""


class _ScrapeTimeMetric(Collector):
    """A counter or gauge whose samples are read from live objects at each scrape.

    Several readings (two caches in one process) are combined per label set, summed or
    the highest taken, so the exposition never holds the same series twice.
    """

    def __init__(self, spec: MetricSpec, combine: Callable[[float, float], float]) -> None:
        self._spec = spec
        self._combine = combine
        self._readings: list[Reading] = []

    def add(self, reading: Reading) -> Callable[[], None]:
        self._readings.append(reading)

        def stop() -> None:
            if reading in self._readings:
                self._readings.remove(reading)

        return stop

    def _family(self) -> CounterMetricFamily | GaugeMetricFamily:
        family = CounterMetricFamily if self._spec.kind == "counter" else GaugeMetricFamily
        return family(self._spec.name, self._spec.help, labels=self._spec.labels)

    def collect(self) -> Iterable[Metric]:
        totals: dict[tuple[str, ...], float] = {}
        for reading in list(self._readings):
            for labels, value in reading():
                before = totals.get(labels)
                totals[labels] = value if before is None else self._combine(before, value)
        family = self._family()
        for labels, value in totals.items():
            family.add_metric(list(labels), value)
        yield family

    def describe(self) -> Iterable[Metric]:
        return [self._family()]


_scrape_time: dict[str, _ScrapeTimeMetric] = {}


def observe_at_scrape(
    spec: MetricSpec, reading: Reading, *, combine: Literal["sum", "max"] = "sum"
) -> Callable[[], None]:
    """Serve counter or gauge `spec` from `reading` at every scrape; call the result to stop.

    `combine` says how readings of the same series from several objects add up: counts
    sum; a state (a breaker's) takes the worst, `max`. The first registration decides.
    """
    if spec.kind == "histogram":
        raise ValueError(f"{spec.name} is a histogram; only counters and gauges are read")
    metric = _scrape_time.get(spec.name)
    if metric is None:
        how = operator.add if combine == "sum" else max
        metric = _scrape_time[spec.name] = _ScrapeTimeMetric(spec, how)
        REGISTRY.register(metric)
    return metric.add(reading)


def observe_counters_at_scrape(counters: Counters | None, help_text: str) -> Callable[[], None]:
    """Serve a component's own counters (names outside the catalogue) at every scrape."""
    if counters is None:
        return lambda: None

    def reading_of(key: str) -> Reading:
        return lambda: [((), counters().get(key, 0.0))]

    stops = [
        observe_at_scrape(
            MetricSpec(key.removesuffix("_total"), "counter", (), help_text), reading_of(key)
        )
        for key in counters()
    ]

    def stop() -> None:
        for each in stops:
            each()

    return stop


metrics_app = make_asgi_app(REGISTRY)
"""This process's metrics as an ASGI app (text or OpenMetrics, gzip when asked)."""


@asgi(METRICS_PATH, copy_scope=False)
async def metrics_handler(scope: Scope, receive: Receive, send: Send) -> None:
    """`/metrics` in a Litestar app: Prometheus's own exposition of this process."""
    await metrics_app(scope, receive, send)
