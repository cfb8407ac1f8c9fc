"""Structured JSON logs, one line per event, each carrying the request id.

structlog renders JSON and keeps per-request context in contextvars, which is what an
asyncio server needs (a thread-local would leak ids between requests). The request id
comes from the caller's `X-Request-ID` (Kong and the ALB set one) or is generated, and is
echoed on the response and put in every problem document, so a user's error report leads
straight to the log lines.
"""

import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime.access_log import access_log

__all__ = ["REQUEST_ID_HEADER", "configure_logging", "incoming_request_id", "request_context"]

REQUEST_ID_HEADER = "x-request-id"
_HANDLER_NAME = "eduscale-json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_REQUEST_ID_NAME = REQUEST_ID_HEADER.encode()


def configure_logging(level: str, service: str) -> None:
    """Send structlog and stdlib records (uvicorn, psycopg) to stdout as JSON lines."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.EventRenamer("message"),
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=shared,
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler (an app built twice, as tests do); keep any others.
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level)
    structlog.contextvars.bind_contextvars(service=service)
    access_log.configure(service, level)


def request_context(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: bind a request id, echo it, and log one access line per request.

    The access line goes through `access_log` (batched, off the request's path); other
    lines logged while the request runs carry its id through structlog's contextvars.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = incoming_request_id(scope.get("headers", [])) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await app(scope, receive, send_with_id)
            finally:
                access_log.record(
                    scope.get("method", ""),
                    scope["path"],
                    status,
                    round((time.perf_counter() - started) * 1000, 2),
                    request_id,
                )

    return middleware


def incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The caller's `X-Request-ID`, if it is a safe one to log and echo."""
    for name, value in headers:
        if name == _REQUEST_ID_NAME:
            candidate = value.decode("latin-1")
            return candidate if _SAFE_ID.match(candidate) else None
    return None
