"""Spans around the provider's calls, named and attributed per the GenAI conventions.

An httpx2 transport (the HTTP library `openai` uses) under the client: every chat or
embeddings request becomes a client span (`chat gpt-4o-mini`, `embeddings
text-embedding-3-small`) with `gen_ai.system`, `gen_ai.operation.name` and
`gen_ai.request.model`, and carries the `traceparent` to the provider. It sees each
HTTP attempt (the client's own retries included), which is what an operator needs to
see of a slow or failing provider. Hand written rather than the contrib
`opentelemetry-instrumentation-openai-v2`: that one is beta and patches the `openai`
package globally, and we need three attributes. Installed only when tracing is on
(`services.runtime.tracing`), so it costs nothing otherwise.
"""

from __future__ import annotations

import httpx2 as httpx
import msgspec
from openai import DefaultAsyncHttpxClient
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from services.runtime.tracing import tracer

__all__ = ["TracedTransport", "traced_http_client"]

_OPERATIONS = {"/chat/completions": "chat", "/embeddings": "embeddings"}
_ERROR_STATUS = 400


class _Model(msgspec.Struct):
    model: str = ""


class TracedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport: one client span per provider request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` inside a span (GenAI attributes when it is chat or embeddings)."""
        operation = next(
            (op for suffix, op in _OPERATIONS.items() if request.url.path.endswith(suffix)),
            None,
        )
        if operation is None:
            return await self._inner.handle_async_request(request)
        model = _request_model(request)
        attributes: dict[str, AttributeValue] = {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
            "server.address": request.url.host,
        }
        if request.url.port is not None:
            attributes["server.port"] = request.url.port
        name = f"{operation} {model}".strip()
        with tracer().start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            request.headers.update(carrier)
            response = await self._inner.handle_async_request(request)
            if response.status_code >= _ERROR_STATUS:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def _request_model(request: httpx.Request) -> str:
    try:
        return msgspec.json.decode(request.content, type=_Model).model
    except (msgspec.DecodeError, httpx.RequestNotRead):
        return ""


def traced_http_client() -> httpx.AsyncClient:
    """Openai's default async client (its limits and timeouts), on a traced transport."""
    return DefaultAsyncHttpxClient(transport=TracedTransport(httpx.AsyncHTTPTransport()))
