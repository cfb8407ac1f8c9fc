"""A tiny HTTP health endpoint for workers, which serve no other HTTP.

Kubernetes probes `/health/live` and `/health/ready` on HEALTH_PORT, as for the services.
Readiness is whatever the worker says it is (e.g. "the consumer loop is running").
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["health_server"]

_MAX_REQUEST_LINE = 1024


@asynccontextmanager
async def health_server(port: int, ready: Callable[[], bool]) -> AsyncIterator[int]:
    """Serve the probes on 0.0.0.0:`port` (0 picks a free one) while the block runs."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = line[:_MAX_REQUEST_LINE].decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else ""
            if path == "/health/live":
                status, body = "200 OK", b'{"status":"ok"}'
            elif path == "/health/ready":
                ok = ready()
                status = "200 OK" if ok else "503 Service Unavailable"
                body = b'{"status":"ready"}' if ok else b'{"status":"not ready"}'
            else:
                status, body = "404 Not Found", b'{"status":"not found"}'
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
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
