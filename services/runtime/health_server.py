"""A tiny HTTP health endpoint for workers, which serve no other HTTP.

Kubernetes probes `/health/live` and `/health/ready` on HEALTH_PORT, as for the services.
Readiness is whatever the worker says it is (e.g. "the consumer loop is running").
`/metrics` serves the worker's counters in the Prometheus text format, so the numbers a
worker keeps (e.g. semantic-cache hits and misses) reach the same scraper as the gateway's,
without a metrics library for a handful of counters.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

__all__ = ["Counters", "health_server", "prometheus_text"]

_MAX_REQUEST_LINE = 1024

Counters = Callable[[], Mapping[str, float]]
"""Reads the worker's counters now: Prometheus metric name -> value."""


def prometheus_text(counters: Mapping[str, float]) -> str:
    """The counters in the Prometheus text exposition format (each one a counter)."""
    return "".join(
        f"# TYPE {name} counter\n{name} {value}\n" for name, value in sorted(counters.items())
    )


@asynccontextmanager
async def health_server(
    port: int, ready: Callable[[], bool], counters: Counters | None = None
) -> AsyncIterator[int]:
    """Serve the probes on 0.0.0.0:`port` (0 picks a free one) while the block runs."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = line[:_MAX_REQUEST_LINE].decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else ""
            content_type = "application/json"
            if path == "/health/live":
                status, body = "200 OK", b'{"status":"ok"}'
            elif path == "/health/ready":
                ok = ready()
                status = "200 OK" if ok else "503 Service Unavailable"
                body = b'{"status":"ready"}' if ok else b'{"status":"not ready"}'
            elif path == "/metrics" and counters is not None:
                status, body = "200 OK", prometheus_text(counters()).encode()
                content_type = "text/plain; version=0.0.4"
            else:
                status, body = "404 Not Found", b'{"status":"not found"}'
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "0.0.0.0", port)  # noqa: S104 - probed from the node
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
