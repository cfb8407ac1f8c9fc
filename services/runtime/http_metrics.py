"""HTTP server metrics per route, as the OpenTelemetry HTTP semantic conventions name them.

A raw ASGI middleware rather than a Litestar middleware: Litestar runs its middleware
after routing, inside the exception handler and CORS, so requests it refuses before a
handler (404, 405, CORS preflights, oversized bodies turned into 413 by the exception
handler) would go uncounted and `http_server_active_requests` would miss the time spent
outside the handler. Wrapped around the app's whole ASGI handler it sees every request;
the route template is read after the app ran, from `scope["path_template"]`, which
Litestar's router writes into the same scope (a raw path would make one series per id).

The counts are plain integers kept by the middleware and turned into Prometheus samples
only when Prometheus scrapes (`HTTPSeries`, a collector of the process's registry):
prometheus-client's own gauge and histogram take a lock per increment, five per request
here, ~1.5 microseconds against ~0.2 for these counts (measured; a tenth of a cached
read's budget). No lock is needed: the middleware runs on the server's one event-loop
thread, and a scrape from another thread reads whole integers (the GIL); `_count` is
derived from the buckets, so a scrape's histogram is always consistent with itself.

A `first_responder` (a service's fast lane, `services.runtime.hot_path`) is asked before
the app: what it answers is measured the same way, without the send wrapper that reads
the status of the app's responses.
"""

import weakref
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from contracts.platform_metrics import (
    HTTP_ACTIVE_REQUESTS,
    HTTP_DURATION_BUCKETS,
    HTTP_REQUEST_DURATION,
)

__all__ = ["FirstResponder", "HTTPMetrics"]

_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_OTHER_METHOD = "_OTHER"
"""The convention's value for any other method: a client cannot mint label values."""
FirstResponder = Callable[[Any, Any], Awaitable[int | None]]
"""Answers a request itself (scope, send) and returns its status, or None to decline."""
_BOUNDS = tuple(float(bound) for bound in HTTP_DURATION_BUCKETS)
_BUCKET_LABELS = [*(floatToGoString(bound) for bound in _BOUNDS), "+Inf"]


class _Durations:
    """One series of the duration histogram: observations per bucket, and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS) + 1)  # the last one: above every bound
        self.total = 0.0


class _Active:
    """Requests of one method in progress."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class HTTPMetrics:
    """Times every HTTP request of `app` and counts those in progress."""

    def __init__(self, app: ASGIApp, first_responder: FirstResponder | None = None) -> None:
        self.app = app
        self._first_responder = first_responder
        self._active: dict[str, _Active] = {}
        self._durations: dict[tuple[str, str, int], _Durations] = {}
        _SERIES.add(self)

    def _in_progress(self, method: str) -> _Active:
        active = self._active.get(method)
        if active is None:
            active = self._active[method] = _Active()
        return active

    def _observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        durations = self._durations.get(key)
        if durations is None:
            durations = self._durations[key] = _Durations()
        durations.counts[bisect_left(_BOUNDS, seconds)] += 1  # `le`: a bound is inclusive
        durations.total += seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request through the app, timed; other scopes pass through untouched."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        if method not in _KNOWN_METHODS:
            method = _OTHER_METHOD
        active = self._in_progress(method)
        status = 500  # what the server answers when the app fails before responding
        active.value += 1
        started = perf_counter()
        try:
            answered = (
                await self._first_responder(scope, send)
                if self._first_responder is not None
                else None
            )
            if answered is not None:
                status = answered
                return

            async def send_and_note_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, receive, send_and_note_status)
        finally:
            active.value -= 1
            # Litestar's router writes the matched template into this same scope;
            # an unmatched path has no route, which the convention leaves empty.
            route: Any = scope.get("path_template", "")
            self._observe(route, method, status, perf_counter() - started)

    def active_requests(self) -> dict[str, int]:
        """Requests in progress, per method."""
        return {method: active.value for method, active in list(self._active.items())}

    def durations(self) -> dict[tuple[str, str, int], tuple[list[int], float]]:
        """Each series' observations per bucket (the last above every bound) and sum."""
        return {
            key: (list(series.counts), series.total)
            for key, series in list(self._durations.items())
        }


class HTTPSeries(Collector):
    """The samples of every live `HTTPMetrics` of this process, summed per label set."""

    def __init__(self) -> None:
        self._metrics: weakref.WeakSet[HTTPMetrics] = weakref.WeakSet()

    def add(self, metrics: HTTPMetrics) -> None:
        """Serve the counts of `metrics` from now on (until it is garbage)."""
        self._metrics.add(metrics)

    def collect(self) -> Iterable[Metric]:
        """The active-requests gauge and the duration histogram, as of now."""
        active: dict[str, int] = {}
        durations: dict[tuple[str, str, int], tuple[list[int], float]] = {}
        for metrics in list(self._metrics):
            for method, value in metrics.active_requests().items():
                active[method] = active.get(method, 0) + value
            for key, (counts, total) in metrics.durations().items():
                before = durations.get(key)
                durations[key] = (
                    (counts, total)
                    if before is None
                    else (
                        [a + b for a, b in zip(before[0], counts, strict=True)],
                        total + before[1],
                    )
                )
        gauge, histogram = self._families()
        for method, value in active.items():
            gauge.add_metric([method], value)
        for (route, method, status), (counts, total) in durations.items():
            cumulative, buckets = 0, []
            for label, count in zip(_BUCKET_LABELS, counts, strict=True):
                cumulative += count
                buckets.append((label, float(cumulative)))
            histogram.add_metric([route, method, str(status)], buckets, total)
        yield gauge
        yield histogram

    def describe(self) -> list[Metric]:
        """The two families, empty: the registry checks their names once."""
        return list(self._families())

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, HistogramMetricFamily]:
        return (
            GaugeMetricFamily(
                HTTP_ACTIVE_REQUESTS.name,
                HTTP_ACTIVE_REQUESTS.help,
                labels=HTTP_ACTIVE_REQUESTS.labels,
            ),
            HistogramMetricFamily(
                HTTP_REQUEST_DURATION.name,
                HTTP_REQUEST_DURATION.help,
                labels=HTTP_REQUEST_DURATION.labels,
            ),
        )


_SERIES = HTTPSeries()
REGISTRY.register(_SERIES)
