"""uvicorn inside a process that owns its signals and its logging.

A worker's health port and the local AI process run uvicorn on their own event loop,
beside other parts (a consumer loop, the workers). The process handles SIGTERM itself and
stops the server with the rest (`server.should_exit = True`), so uvicorn must not install
its own signal handlers; and it logs through the process's structlog setup, so uvicorn
brings no logging configuration, access log or `Server` header of its own.
"""

import contextlib
from collections.abc import Generator
from typing import Literal

import uvicorn
from litestar import Litestar

__all__ = ["EmbeddedServer", "embedded_server"]


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process stops it with its other parts."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing, and re-raise nothing on exit: the process's handlers stay."""
        yield


def embedded_server(
    app: Litestar,
    *,
    host: str,
    port: int,
    lifespan: Literal["on", "off"],
    graceful_shutdown_seconds: int,
) -> EmbeddedServer:
    """A server for `app` on `host`:`port` (0 picks a free one); `serve()` runs it."""
    return EmbeddedServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan=lifespan,
            timeout_graceful_shutdown=graceful_shutdown_seconds,
        )
    )
