"""The local gateway: one port in front of every service, behaving as Kong does.

A small ASGI reverse proxy. For each request, in Kong's plugin order: find the route
(longest matching path prefix, as Kong matches; none is a 404), answer a CORS preflight,
refuse a body over the size limit (413), count the request against its route's per-client
limit (429 with `Retry-After`), then forward it to the route's service with the Host kept,
`X-Forwarded-*` added and an `X-Request-ID` set and echoed. Responses stream back. Every
error the gateway itself produces is the services' problem+json document.

It also answers its own probes: `/health/live`, and `/health/ready`, which asks every
upstream's `/health/ready` (Kong serves these on a separate status port), and `/metrics`
(its process's, for the local Prometheus; Kong has its own plugin).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

import httpx
import structlog

from contracts.gateway import CORS, RoutePolicy, route_policies
from contracts.platform_metrics import METRICS_PATH
from services.gateway.rate_limit import MinuteWindows
from services.gateway.settings import GatewaySettings
from services.runtime.logs import configure_logging
from services.runtime.metrics import metrics_app

__all__ = ["Gateway", "create_app", "from_environment"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in _HOP_BY_HOP)
_REQUEST_ID = "x-request-id"
_log = structlog.get_logger("eduscale.gateway")

Headers = list[tuple[bytes, bytes]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _GatewayError(Exception):
    def __init__(
        self, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = dict(headers or {})


class Gateway:
    """The ASGI app; `transport` lets tests put an in-process upstream behind it."""

    def __init__(
        self, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.policies = route_policies(settings.routes, settings.limits)
        self._by_prefix = sorted(
            ((path, policy) for policy in self.policies for path in policy.paths),
            key=lambda item: -len(item[0]),
        )
        self._windows = MinuteWindows()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def route_for(self, path: str) -> RoutePolicy | None:
        """Kong's prefix match: the longest route path `path` starts with."""
        for prefix, policy in self._by_prefix:
            if path.startswith(prefix):
                return policy
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: the lifespan opens and closes the upstream client; HTTP is proxied."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"] == METRICS_PATH:
            await metrics_app(scope, receive, send)  # this process's own, for the local scraper
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = self._open_client()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _open_client(self) -> httpx.AsyncClient:
        # Kong's service: connect_timeout 2 s, read_timeout 30 s, 2 retries on connect.
        return httpx.AsyncClient(
            transport=self._transport or httpx.AsyncHTTPTransport(retries=2),
            timeout=httpx.Timeout(30.0, connect=2.0),
            follow_redirects=False,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client to the upstreams."""
        if self._client is None:  # served without a lifespan (some test clients)
            self._client = self._open_client()
        return self._client

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _header_map(scope)
        request_id = _request_id(headers)
        started = time.perf_counter()
        path: str = scope["path"]
        origin = headers.get("origin")
        policy = self.route_for(path)
        status = 500
        cors: Headers = []
        try:
            if path in {"/health/live", "/health/ready"}:
                status = await self._health(path, send, request_id)
                return
            if policy is None:
                raise _GatewayError(404, "Not found", f"No route matches {path}")  # noqa: TRY301
            cors = self._cors_headers(origin)
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                status = 200
                await _respond(send, 200, b"", [*cors, *self._preflight_headers(origin)])
                return
            body = await self._read_body(headers, receive)
            limit_headers = self._count(policy, scope)
            status = await self._forward(
                scope, policy, body, request_id, send, [*cors, *_encode(limit_headers)]
            )
        except _GatewayError as error:
            status = error.status
            await _problem(send, error, path, request_id, cors)
        finally:
            _log.info(
                "request",
                method=scope["method"],
                path=path,
                route=policy.name if policy else None,
                status=status,
                request_id=request_id,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def _count(self, policy: RoutePolicy, scope: Scope) -> dict[str, str]:
        """The rate-limit headers of an admitted request; 429 for a refused one."""
        decision = self._windows.hit(policy.name, _client_ip(scope), policy.requests_per_minute)
        headers = _limit_headers(decision.limit, decision.remaining, decision.reset_seconds)
        if not decision.allowed:
            raise _GatewayError(
                429,
                "Too many requests",
                f"More than {decision.limit} requests a minute on {policy.name} routes; "
                f"retry in {decision.reset_seconds} s",
                {"Retry-After": str(decision.reset_seconds), **headers},
            )
        return headers

    async def _read_body(self, headers: Mapping[str, str], receive: Receive) -> bytes:
        """The whole body, or 413 as soon as it is known to be over the limit."""
        limit = self.settings.limits.max_body_bytes
        too_large = _GatewayError(
            413,
            "Content too large",
            f"The request body is over the gateway's limit of "
            f"{self.settings.limits.max_body_mb} MB",
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _GatewayError(400, "Bad request", "The client went away mid-request")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _forward(  # noqa: PLR0917 - one request's parts, in one place
        self,
        scope: Scope,
        policy: RoutePolicy,
        body: bytes,
        request_id: str,
        send: Send,
        extra: Headers,
    ) -> int:
        base = self.settings.upstreams[policy.service]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        target = base + raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        request = self.client.build_request(
            scope["method"],
            target,
            headers=self._upstream_headers(scope, request_id),
            content=body,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise _GatewayError(
                504, "Gateway timeout", f"The {policy.service} service did not answer in time"
            ) from None
        except httpx.TransportError:
            raise _GatewayError(
                502,
                "Bad gateway",
                f"The {policy.service} service is not reachable; is it running?",
                {"Retry-After": "5"},
            ) from None
        try:
            headers = [
                (name.lower(), value)
                for name, value in response.headers.raw
                if name.lower() not in _HOP_BY_HOP_BYTES - {b"content-length"}
                and name.lower() != _REQUEST_ID.encode()
            ]
            headers += [(_REQUEST_ID.encode(), request_id.encode()), *extra]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()
        return response.status_code

    def _upstream_headers(self, scope: Scope, request_id: str) -> Headers:
        incoming = [(k.lower(), v) for k, v in scope["headers"]]
        client = _client_ip(scope)
        forwarded_for = b", ".join(
            [v for k, v in incoming if k == b"x-forwarded-for"] + [client.encode()]
        )
        host = next((v for k, v in incoming if k == b"host"), b"")
        server = scope.get("server") or ("", 0)
        kept = [
            (k, v)
            for k, v in incoming
            if k not in _HOP_BY_HOP_BYTES
            and not k.startswith(b"x-forwarded-")
            and k not in {b"x-real-ip", _REQUEST_ID.encode()}
        ]
        return [
            *kept,
            (b"host", host),  # preserve_host, as Kong's routes are configured
            (b"x-forwarded-for", forwarded_for),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
            (b"x-forwarded-host", host),
            (b"x-forwarded-port", str(server[1]).encode()),
            (b"x-real-ip", client.encode()),
            (_REQUEST_ID.encode(), request_id.encode()),
        ]

    def _allowed_origin(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        origins = self.settings.cors_origins
        return origin if origin in origins or "*" in origins else None

    def _cors_headers(self, origin: str | None) -> Headers:
        allowed = self._allowed_origin(origin)
        if allowed is None:
            return [(b"vary", b"Origin")] if origin else []
        headers = {
            "Access-Control-Allow-Origin": allowed,
            "Vary": "Origin",
            "Access-Control-Expose-Headers": ",".join(CORS.exposed_headers),
        }
        if CORS.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return _encode(headers)

    def _preflight_headers(self, origin: str | None) -> Headers:
        if self._allowed_origin(origin) is None:
            return []
        return _encode(
            {
                "Access-Control-Allow-Methods": ",".join(CORS.methods),
                "Access-Control-Allow-Headers": ",".join(CORS.headers),
                "Access-Control-Max-Age": str(CORS.max_age),
            }
        )

    async def _health(self, path: str, send: Send, request_id: str) -> int:
        if path == "/health/live":
            await _respond_json(send, 200, {"status": "ok"}, request_id)
            return 200
        names = sorted(self.settings.upstreams)
        answers = await asyncio.gather(*(self._upstream_ready(n) for n in names))
        services = dict(zip(names, answers, strict=True))
        ready = all(answer == "ready" for answer in answers)
        status = 200 if ready else 503
        body = {"status": "ready" if ready else "not ready", "services": services}
        await _respond_json(send, status, body, request_id)
        return status

    async def _upstream_ready(self, service: str) -> str:
        try:
            response = await self.client.get(
                f"{self.settings.upstreams[service]}/health/ready", timeout=2.0
            )
        except httpx.HTTPError:
            return "unreachable"
        return "ready" if response.status_code == 200 else "not ready"  # noqa: PLR2004


def _header_map(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _request_id(headers: Mapping[str, str]) -> str:
    """The caller's id when it is a sane one, else a new one (Kong's correlation-id)."""
    incoming = headers.get(_REQUEST_ID, "")
    if 0 < len(incoming) <= 128 and all(c.isalnum() or c in "._:-" for c in incoming):  # noqa: PLR2004
        return incoming
    return uuid.uuid4().hex


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _limit_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """The headers Kong's rate-limiting plugin sends (`hide_client_headers: false`)."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
        "X-RateLimit-Limit-Minute": str(limit),
        "X-RateLimit-Remaining-Minute": str(remaining),
    }


def _encode(headers: Mapping[str, str]) -> Headers:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _respond(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _respond_json(send: Send, status: int, body: dict[str, Any], request_id: str) -> None:
    await _respond(
        send,
        status,
        json.dumps(body).encode(),
        [(b"content-type", b"application/json"), (_REQUEST_ID.encode(), request_id.encode())],
    )


async def _problem(
    send: Send, error: _GatewayError, path: str, request_id: str, cors: Headers
) -> None:
    """The services' problem+json shape (`services/runtime/errors.py`)."""
    body = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": path,
        "request_id": request_id,
    }
    await _respond(
        send,
        error.status,
        json.dumps(body).encode(),
        [
            (b"content-type", b"application/problem+json"),
            (_REQUEST_ID.encode(), request_id.encode()),
            *_encode(error.headers),
            *cors,
        ],
    )


def create_app(
    settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
) -> Gateway:
    """The gateway for `settings`."""
    configure_logging(settings.log_level, "gateway")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is ours
    return Gateway(settings, transport)


def from_environment(environ: Mapping[str, str]) -> Gateway:
    """The gateway for `environ`; `SettingsError` names a bad variable."""
    return create_app(GatewaySettings.from_env(environ))
