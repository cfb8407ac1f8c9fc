"""The parts every service app shares, assembled in one place.

A service's `create_app(settings)` passes its own handlers here and gets a Litestar app
with the lifespan-managed resources, the `resources` and `principal` dependencies, the one
problem+json error shape, request ids and JSON logs, CORS from `CORS_ORIGINS`, the body
size limit, the health endpoints, Prometheus metrics at `/metrics` (HTTP metrics per
route from `HTTPMetrics`, wrapped around everything else) and an OpenAPI document at
`/schema`. A service may name cached reads for the fast lane (`services.runtime.hot_path`),
which answers their hits ahead of the router, inside the metrics.
"""

import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import SerializationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.types import ControllerRouterHandler

from services.runtime.access_log import access_log
from services.runtime.cache import open_redis
from services.runtime.database import DatabaseUnreachable
from services.runtime.errors import exception_handlers
from services.runtime.health import health_handlers
from services.runtime.hot_path import FastLane, FastRoutes
from services.runtime.http_metrics import HTTPMetrics
from services.runtime.logs import REQUEST_ID_HEADER, configure_logging, request_context
from services.runtime.metrics import metrics_handler
from services.runtime.redis_get import open_cached_get
from services.runtime.resources import RedisFactory, Resources, open_resources
from services.runtime.settings import ServiceSettings, SettingsError
from services.runtime.startup_heap import freeze_startup_heap, thaw_startup_heap
from services.runtime.tokens import Principal
from services.runtime.tracing import install_from_environment, server_middleware

__all__ = ["app_from_environment", "build_app"]

VERSION = "0.1.0"


class _JSONRequest(Request[Any, Any, Any]):
    """Litestar's request, with every undecodable JSON body a 400 like other malformed JSON.

    msgspec raises `UnicodeDecodeError` for invalid UTF-8 inside a string and
    `RecursionError` for deep nesting, not `msgspec.DecodeError`, so Litestar lets
    them through and a client's bytes would be a 500.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError) as error:
            raise SerializationException(f"The body is not valid JSON: {error}") from None


def build_app(
    service: str,
    settings: ServiceSettings,
    handlers: Sequence[ControllerRouterHandler],
    *,
    description: str,
    dependencies: Mapping[str, Provide] | None = None,
    lifespans: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    open_cache: RedisFactory = open_redis,
    fast_routes: Callable[[Litestar], FastRoutes] | None = None,
) -> Litestar:
    """A Litestar app for `service` with the shared foundation around `handlers`.

    `lifespans` run inside the shared one, so they find `app.state.resources` open.
    `open_cache` makes the Redis client (see `open_resources`). `fast_routes` names the
    service's cached reads for the fast lane; they find `app.state.cached_get` open.
    """
    configure_logging(settings.log_level, service)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            try:
                resources = await stack.enter_async_context(
                    open_resources(settings, open_cache=open_cache)
                )
            except DatabaseUnreachable as error:
                # The server exits non-zero after start-up fails; this is the line to read.
                print(f"eduscale: cannot start {service}: {error}", file=sys.stderr)  # noqa: T201
                raise
            app.state.resources = resources
            stack.callback(access_log.flush)
            if fast_routes is not None:
                cached_get = open_cached_get(settings, resources.redis)
                stack.push_async_callback(cached_get.aclose)
                app.state.cached_get = cached_get
            yield

    def provide_resources(request: Request[Any, Any, Any]) -> Resources:
        resources: Resources = request.app.state.resources
        return resources

    def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        resources: Resources = request.app.state.resources
        return resources.tokens.principal_of(request)

    cors = (
        CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "Idempotency-Key"],
            expose_headers=["ETag", "Retry-After", REQUEST_ID_HEADER],
            max_age=600,
        )
        if settings.cors_origins
        else None
    )
    app = Litestar(
        route_handlers=[*health_handlers, metrics_handler, *handlers],
        lifespan=[lifespan, *lifespans],
        # After every lifespan has opened its pools: what start-up built leaves the
        # collector's full passes, which stopped the loop for ~50 ms (startup_heap.py).
        on_startup=[freeze_startup_heap],
        on_shutdown=[thaw_startup_heap],
        dependencies={
            "resources": Provide(provide_resources, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
            **(dependencies or {}),
        },
        exception_handlers=exception_handlers(),
        middleware=[server_middleware(), request_context],
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        request_class=_JSONRequest,
        openapi_config=OpenAPIConfig(
            title=f"eduscale {service}",
            version=VERSION,
            description=description,
            render_plugins=[ScalarRenderPlugin()],
        ),
        logging_config=None,
    )
    lane = FastLane(fast_routes(app)) if fast_routes is not None else None
    # Outermost, around the exception handler and CORS, as Litestar wraps its own
    # OpenTelemetry middleware: every request is measured, routed or not; the fast lane
    # answers its hits first.
    app.asgi_handler = HTTPMetrics(
        app.asgi_handler, first_responder=lane.answer if lane is not None else None
    )
    return app


def app_from_environment(factory: Callable[[Mapping[str, str]], Litestar]) -> Litestar:
    """Build an app from `os.environ`, or stop with one line naming the bad variable.

    Used by each service's module `__getattr__`, so `uvicorn services.auth.app:app` reads
    the environment when it starts the app, not when a test imports the module.
    Tracing is the process's: installed here, before the app is built.
    """
    try:
        service = factory.__module__.split(".")[1].replace("_", "-")
        install_from_environment(os.environ, service)
        return factory(os.environ)
    except SettingsError as error:
        print(f"eduscale: configuration error: {error}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
