"""Kong's declarative configuration (DB-less, `_format_version: "3.0"`), generated.

Built from the typed route table and the gateway policy (`contracts/gateway.py`),
the same definitions the local gateway of `eduscale dev up` enforces, so every route names a
service that exists and the rate limits, CORS and size limits are the same on every route
and in both gateways. Secrets are not in it:
the Redis password is a Kong vault reference (`{vault://env/...}`) resolved from the pod's
environment, which comes from a Kubernetes Secret. Pure data, no Pulumi: unit-testable.
"""

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from contracts.gateway import CORS, GatewayLimits, route_policies
from contracts.routes import Route

__all__ = ["GatewayLimitsArgs", "GatewayTracingArgs", "RedisArgs", "declarative_config"]

REDIS_PASSWORD_ENV = "KONG_REDIS_PASSWORD"  # noqa: S105 (a variable name)
"""Environment variable holding the Redis AUTH token in Kong's pod."""


class RedisArgs(TypedDict):
    """Where Kong keeps rate-limit counters (shared by every Kong pod)."""

    host: str
    """Redis (cluster configuration) endpoint."""
    port: int
    """Redis port."""


class GatewayLimitsArgs(TypedDict):
    """Per-client limits."""

    requests_per_minute: int
    """Standard routes, per client IP."""
    strict_requests_per_minute: int
    """Strict routes (login, registration), per client IP."""
    max_body_mb: int
    """Largest accepted request body (PDF uploads included)."""
    cors_origins: list[str]
    """Browser origins allowed to call the API."""


class GatewayTracingArgs(TypedDict):
    """Where Kong sends its spans, and how many requests it starts a trace for."""

    traces_endpoint: str
    """The collector's OTLP/HTTP traces URL (`http://...:4318/v1/traces`)."""
    sampling_rate: float
    """Share of requests traced (0 to 1); the services follow Kong's decision."""


def declarative_config(
    routes: Sequence[Route],
    upstreams: Mapping[str, tuple[str, int]],
    limits: GatewayLimitsArgs,
    redis: RedisArgs,
    tracing: GatewayTracingArgs | None = None,
) -> dict[str, Any]:
    """Kong's `kong.yml` as a dict: one service per upstream, its routes and plugins.

    `upstreams` maps a service name to its in-cluster host and port; a route naming a
    service missing from it is an error, not a 404 in production. With `tracing`, the
    `opentelemetry` plugin starts (or continues) a W3C trace per request and passes
    `traceparent` upstream.
    """
    missing = sorted({r.service for r in routes} - set(upstreams))
    if missing:
        raise ValueError(f"routes name services with no upstream: {', '.join(missing)}")
    policies = route_policies(routes, _limits(limits))
    services = []
    for service_name in sorted({r.service for r in routes}):
        host, port = upstreams[service_name]
        services.append(
            {
                "name": service_name,
                "protocol": "http",
                "host": host,
                "port": port,
                "connect_timeout": 2000,
                "read_timeout": 30000,
                "retries": 2,
                "routes": [
                    {
                        "name": route.name,
                        "paths": list(route.paths),
                        "strip_path": False,
                        "preserve_host": True,
                        "protocols": ["https"],
                        "https_redirect_status_code": 426,
                        "plugins": [_rate_limit(route.requests_per_minute, redis)],
                    }
                    for route in policies
                    if route.service == service_name
                ],
            }
        )
    plugins = _global_plugins(limits)
    if tracing is not None:
        plugins.append(_opentelemetry(tracing))
    return {
        "_format_version": "3.0",
        "_transform": True,
        "services": services,
        "plugins": plugins,
    }


def _opentelemetry(tracing: GatewayTracingArgs) -> dict[str, Any]:
    rate = float(tracing["sampling_rate"])
    if not 0 <= rate <= 1:
        raise ValueError(f"tracing sampling_rate must be between 0 and 1, got {rate}")
    return {
        "name": "opentelemetry",
        "config": {
            "traces_endpoint": tracing["traces_endpoint"],
            "resource_attributes": {"service.name": "kong"},
            "sampling_rate": rate,
            "propagation": {"extract": ["w3c"], "inject": ["w3c"], "default_format": "w3c"},
        },
    }


def _global_plugins(limits: GatewayLimitsArgs) -> list[dict[str, Any]]:
    return [
        {
            "name": "cors",
            "config": {
                "origins": list(limits["cors_origins"]),
                "methods": list(CORS.methods),
                "headers": list(CORS.headers),
                "exposed_headers": list(CORS.exposed_headers),
                "credentials": CORS.credentials,
                "max_age": CORS.max_age,
            },
        },
        {
            "name": "request-size-limiting",
            "config": {
                "allowed_payload_size": limits["max_body_mb"],
                "size_unit": "megabytes",
                "require_content_length": False,
            },
        },
        {
            "name": "correlation-id",
            "config": {
                "header_name": "X-Request-ID",
                "generator": "uuid#counter",
                "echo_downstream": True,
            },
        },
        {
            "name": "prometheus",
            "config": {
                "status_code_metrics": True,
                "latency_metrics": True,
                "upstream_health_metrics": True,
            },
        },
    ]


def _limits(limits: GatewayLimitsArgs) -> GatewayLimits:
    return GatewayLimits(
        requests_per_minute=limits["requests_per_minute"],
        strict_requests_per_minute=limits["strict_requests_per_minute"],
        max_body_mb=limits["max_body_mb"],
    )


def _rate_limit(per_minute: int, redis: RedisArgs) -> dict[str, Any]:
    return {
        "name": "rate-limiting",
        "config": {
            "minute": per_minute,
            "limit_by": "ip",
            "policy": "redis",
            # Limits are best effort: a Redis hiccup must not take the API down.
            "fault_tolerant": True,
            "hide_client_headers": False,
            "redis": {
                "cluster_nodes": [{"ip": redis["host"], "port": redis["port"]}],
                "password": f"{{vault://env/{REDIS_PASSWORD_ENV.lower().replace('_', '-')}}}",
                "ssl": True,
                "ssl_verify": True,
                "server_name": redis["host"],
                "timeout": 2000,
            },
        },
    }
