"""The HTTP port of a worker, which serves no other HTTP: probes and metrics.

Kubernetes probes `/health/live` and `/health/ready` on HEALTH_PORT, as for the services,
and Prometheus scrapes `/metrics` there. Readiness is whatever the worker says it is
(e.g. "the consumer loop is running").

Served by uvicorn, the server the services already run, with a three-route Litestar app:
a real HTTP/1.1 implementation (keep-alive, partial reads, slow clients) and
`prometheus-client`'s own exposition (content negotiation, OpenMetrics, gzip) instead of a
hand-written request parser and text format. It runs inside the worker's event loop, so
it sees the same process-wide metrics the consumer loop writes.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from litestar import Litestar, Response, get

from services.runtime.embedded_server import embedded_server
from services.runtime.metrics import metrics_handler

__all__ = ["health_server"]

_SHUTDOWN_SECONDS = 5


def _health_app(ready: Callable[[], bool]) -> Litestar:
    @get("/health/live", sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", sync_to_thread=False)
    def readiness() -> Response[dict[str, str]]:
        if ready():
            return Response({"status": "ready"})
        return Response({"status": "not ready"}, status_code=503)

    return Litestar(
        route_handlers=[live, readiness, metrics_handler],
        openapi_config=None,
        logging_config=None,
    )


@contextlib.asynccontextmanager
async def health_server(port: int, ready: Callable[[], bool]) -> AsyncIterator[int]:
    """Serve the probes and metrics on 0.0.0.0:`port` (0 picks a free one) while the block runs.

    Yields the port bound; raises `OSError` when it cannot be bound.
    """
    server = embedded_server(
        _health_app(ready),
        host="0.0.0.0",  # noqa: S104 - probed from the node, scraped from the cluster
        port=port,
        lifespan="off",
        graceful_shutdown_seconds=_SHUTDOWN_SECONDS,
    )
    serving = asyncio.create_task(server.serve(), name=f"health-server-{port}")
    while not server.started:
        if serving.done():
            # uvicorn logs the bind error and exits the task with SystemExit(1).
            with contextlib.suppress(SystemExit):
                serving.result()
            raise OSError(f"cannot serve the health port {port}")
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await serving
