"""How an HTTP service carries analytics: its emitter, and (Course) the report store.

Every service that emits gets `emitter_lifespan` (the emitter runs with the app and
flushes, bounded, when it stops), the `events` dependency and `GET /health/analytics`
(the emitter's counters). The Course service also opens the analytics store for reports
(`report_store_lifespan`); a store that cannot be opened does not stop the service, the
report answers 503 saying why. With the embedded store and a broker, the same lifespan
runs the sink in the process (see `services.analytics_sink.worker`).
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Litestar, Request, get
from litestar.di import Provide

from services.analytics.emitter import EmitterStats, EventEmitter
from services.analytics.settings import AnalyticsSettings
from services.analytics.sink_runner import local_sink
from services.analytics.store import AnalyticsStore, StoreUnavailable, open_store
from services.runtime.errors import Unavailable
from services.runtime.kafka.settings import KafkaSettings

__all__ = [
    "ReportSource",
    "analytics_dependencies",
    "analytics_health",
    "emitter_lifespan",
    "report_store_lifespan",
]

_log = structlog.get_logger("eduscale.analytics")
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class ReportSource:
    """Where reports read from, and how long a range they may ask for."""

    store: AnalyticsStore
    max_days: int


def emitter_lifespan(
    analytics: AnalyticsSettings, kafka: KafkaSettings | None, *, client_id: str
) -> Lifespan:
    """Run the app's emitter with the app (disabled, and counting, without a broker)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with EventEmitter(analytics, kafka, client_id=client_id).running() as emitter:
            app.state.events = emitter
            yield

    return lifespan


def report_store_lifespan(analytics: AnalyticsSettings, kafka: KafkaSettings | None) -> Lifespan:
    """Open the report store (and, embedded with a broker, the in-process sink)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.analytics_reports = None
        app.state.analytics_problem = None
        try:
            store = await open_store(analytics)
        except StoreUnavailable as error:
            _log.warning("analytics_store_unavailable", error=str(error))
            app.state.analytics_problem = str(error)
            yield
            return
        app.state.analytics_reports = ReportSource(store, analytics.report_max_days)
        try:
            if analytics.embedded and analytics.local_sink and kafka is not None:
                async with local_sink(analytics, kafka, store) as sink:
                    app.state.analytics_sink = sink
                    yield
            else:
                yield
        finally:
            await store.close()

    return lifespan


def _provide_events(request: Request[Any, Any, Any]) -> EventEmitter:
    emitter: EventEmitter = request.app.state.events
    return emitter


def _provide_reports(request: Request[Any, Any, Any]) -> ReportSource:
    reports: ReportSource | None = getattr(request.app.state, "analytics_reports", None)
    if reports is None:
        problem = (
            getattr(request.app.state, "analytics_problem", None)
            or "no analytics store is configured"
        )
        raise Unavailable(f"Analytics are unavailable: {problem}", retry_after=30)
    return reports


def analytics_dependencies(*, reports: bool = False) -> dict[str, Provide]:
    """`events` (and `analytics_reports` for a service that serves reports)."""
    dependencies = {"events": Provide(_provide_events, sync_to_thread=False)}
    if reports:
        dependencies["analytics_reports"] = Provide(_provide_reports, sync_to_thread=False)
    return dependencies


@get(
    "/health/analytics",
    operation_id="health_analytics",
    tags=["health"],
    summary="What happened to the analytics events this process emitted",
    sync_to_thread=False,
)
def analytics_health(request: Request[Any, Any, Any]) -> EmitterStats:
    """Accepted, delivered and dropped (by reason) events; never fails the probe."""
    emitter: EventEmitter = request.app.state.events
    return emitter.stats()
