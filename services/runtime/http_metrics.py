"""HTTP server metrics per route, as the OpenTelemetry HTTP semantic conventions name them.

A raw ASGI middleware rather than a Litestar middleware: Litestar runs its middleware
after routing, inside the exception handler and CORS, so requests it refuses before a
handler (404, 405, CORS preflights, oversized bodies turned into 413 by the exception
handler) would go uncounted and `http_server_active_requests` would miss the time spent
outside the handler. Wrapped around the app's whole ASGI handler it sees every request;
the route template is read after the app ran, from `scope["path_template"]`, which
Litestar's router writes into the same scope (a raw path would make one series per id).

Per request the cost is two dictionary lookups of cached label children, one gauge
increment and decrement and one histogram observation. A `first_responder` (a service's
fast lane, `services.runtime.hot_path`) is asked before the app: what it answers is
measured the same way, without the send wrapper that reads the status of the app's
responses.
"""

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Gauge, Histogram

from services.runtime.metrics import HTTP_ACTIVE, HTTP_DURATION

__all__ = ["FirstResponder", "HTTPMetrics"]

_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_OTHER_METHOD = "_OTHER"
"""The convention's value for any other method: a client cannot mint label values."""
FirstResponder = Callable[[Any, Any], Awaitable[int | None]]
"""Answers a request itself (scope, send) and returns its status, or None to decline."""


class HTTPMetrics:
    """Times every HTTP request of `app` and counts those in progress."""

    def __init__(self, app: ASGIApp, first_responder: FirstResponder | None = None) -> None:
        self.app = app
        self._first_responder = first_responder
        self._active: dict[str, Gauge] = {}
        self._durations: dict[tuple[str, str, int], Histogram] = {}

    def _in_progress(self, method: str) -> Gauge:
        gauge = self._active.get(method)
        if gauge is None:
            gauge = self._active[method] = HTTP_ACTIVE.labels(method)
        return gauge

    def _duration(self, route: str, method: str, status: int) -> Histogram:
        key = (route, method, status)
        histogram = self._durations.get(key)
        if histogram is None:
            histogram = self._durations[key] = HTTP_DURATION.labels(route, method, str(status))
        return histogram

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
        active.inc()
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
            active.dec()
            # Litestar's router writes the matched template into this same scope;
            # an unmatched path has no route, which the convention leaves empty.
            route: Any = scope.get("path_template", "")
            self._duration(route, method, status).observe(perf_counter() - started)
