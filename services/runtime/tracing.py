"""Traces: W3C `traceparent` through HTTP, Kafka and the provider, exported when configured.

Off (no `OTEL_EXPORTER_OTLP_ENDPOINT`, the default): no SDK provider is installed and the
API's tracer is its no-op one, so a request pays one header lookup: an incoming
`traceparent` is attached to the request's context, and the no-op tracer passes that
parent through, so the Kafka messages the request causes still carry it.

On: the process installs an SDK `TracerProvider` (service name from `OTEL_SERVICE_NAME`)
with a batching OTLP/HTTP exporter, and HTTP apps get Litestar's OpenTelemetry
middleware (server spans per route). The SDK reads the other standard variables
(`OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`, ...) itself.

The process installs tracing once, before building its app or worker
(`install_tracing`); the pieces that create spans (`producer_traceparent`, the
provider's client) ask `tracing_enabled()` and stay out of the way when it is off, and
`consumer_span` uses the API's tracer, a no-op that only carries the parent when off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from services.runtime.tracing_settings import TracingSettings

if TYPE_CHECKING:
    from confluent_kafka import Message
    from litestar.middleware.base import DefineMiddleware
    from litestar.types import ASGIApp, Receive, Scope, Send
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "TRACEPARENT",
    "TracingSettings",
    "consumer_span",
    "current_traceparent",
    "install_from_environment",
    "install_tracing",
    "producer_traceparent",
    "propagate_incoming",
    "server_middleware",
    "tracer",
    "tracing_enabled",
]

TRACEPARENT = "traceparent"
_TRACEPARENT = b"traceparent"
_TRACESTATE = b"tracestate"
_INSTRUMENTATION = "eduscale"
_provider: TracerProvider | None = None


def install_tracing(settings: TracingSettings, service: str) -> TracerProvider | None:
    """Install the SDK provider and exporter if an endpoint is set; None when it is not.

    Once per process: a second call keeps the first provider (as OpenTelemetry's global does).
    """
    global _provider  # noqa: PLW0603 - one provider per process, like the API's global
    if settings.endpoint is None:
        return None
    if _provider is not None:
        return _provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - off: never imported
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name or service})
    )
    exporter = OTLPSpanExporter(endpoint=settings.endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def install_from_environment(environ: Mapping[str, str], service: str) -> None:
    """`install_tracing` with the process's variables (an app or worker entry point)."""
    install_tracing(TracingSettings.from_env(environ), service)


def tracing_enabled() -> bool:
    """Whether this process exports spans."""
    return _provider is not None


def tracer() -> trace.Tracer:
    """The process's tracer (the API's no-op one when tracing is off)."""
    return trace.get_tracer(_INSTRUMENTATION)


def server_middleware() -> Callable[[ASGIApp], ASGIApp] | DefineMiddleware:
    """The HTTP middleware: Litestar's OpenTelemetry one when on, else `propagate_incoming`."""
    if _provider is None:
        return propagate_incoming
    from litestar.plugins.opentelemetry import OpenTelemetryConfig  # noqa: PLC0415

    return OpenTelemetryConfig(
        tracer_provider=_provider,
        exclude=["/health", "/metrics"],
        exclude_spans=["receive", "send"],
    ).middleware


def propagate_incoming(app: ASGIApp) -> ASGIApp:
    """Attach an incoming `traceparent` (and `tracestate`) to the request's context."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not any(
            name == _TRACEPARENT for name, _ in scope["headers"]
        ):
            await app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in {_TRACEPARENT, _TRACESTATE}
        }
        token = context.attach(propagate.extract(carrier))
        try:
            await app(scope, receive, send)
        finally:
            context.detach(token)

    return middleware


def current_traceparent() -> str | None:
    """The `traceparent` of the current context, if it is part of a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def producer_traceparent(topic: str) -> str | None:
    """The `traceparent` a message for `topic` carries, from the current context.

    On, it names a producer span (`create <topic>`) child of the current one, so the
    consumer's span hangs under the send; off, it is the incoming one, passed through.
    """
    if _provider is None:
        return current_traceparent()
    attributes = {"messaging.system": "kafka", "messaging.destination.name": topic}
    with tracer().start_as_current_span(
        f"create {topic}", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        return current_traceparent()


def consumer_span(
    handler: Callable[[Message], Awaitable[None]], topic: str
) -> Callable[[Message], Awaitable[None]]:
    """`handler`, run in a consumer span whose parent is the message's `traceparent`."""
    name = f"process {topic}"

    async def traced(message: Message) -> None:
        parent = propagate.extract(_header_carrier(message.headers()))
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(message.partition()),
            "messaging.kafka.offset": message.offset() or 0,
        }
        with tracer().start_as_current_span(
            name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ):
            await handler(message)

    return traced


def _header_carrier(
    headers: list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None,
) -> Mapping[str, str]:
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    return {
        name: value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in pairs
        if value is not None and name in (TRACEPARENT, "tracestate")
    }
