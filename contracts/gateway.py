"""What the gateway enforces, as typed data shared by Kong's config and the local gateway.

`components/kong_config.py` renders these into Kong's plugins; `services/gateway/app.py`
enforces them itself. Both read the route table (`contracts/routes.py`) and the numbers
below, so the local platform cannot route, limit or answer CORS differently from Kong.
Pure data: no Pulumi, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.routes import Route

__all__ = [
    "CORS",
    "DEFAULT_LIMITS",
    "CorsPolicy",
    "GatewayLimits",
    "RoutePolicy",
    "route_policies",
]


@dataclass(frozen=True)
class GatewayLimits:
    """Per-client limits (the stack's `eduscale:gateway` section)."""

    requests_per_minute: int = 600
    """Standard routes, per client IP."""
    strict_requests_per_minute: int = 30
    """Strict routes (login, registration), per client IP."""
    max_body_mb: int = 50
    """Largest accepted request body (PDF uploads included)."""

    @property
    def max_body_bytes(self) -> int:
        """Kong's `megabytes` unit is MiB."""
        return self.max_body_mb * 1024 * 1024

    def per_minute(self, route: Route) -> int:
        """The limit of `route`, by its class."""
        return (
            self.strict_requests_per_minute
            if route.rate_limit == "strict"
            else self.requests_per_minute
        )


DEFAULT_LIMITS = GatewayLimits()
"""The defaults of `GatewayConfig` (stacks) and of the local gateway."""


@dataclass(frozen=True)
class CorsPolicy:
    """Kong's `cors` plugin settings, apart from the origins (per stack)."""

    methods: tuple[str, ...]
    headers: tuple[str, ...]
    exposed_headers: tuple[str, ...]
    credentials: bool
    max_age: int


CORS = CorsPolicy(
    methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
    headers=("Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key", "If-None-Match"),
    exposed_headers=("X-Request-ID", "Retry-After", "ETag"),
    credentials=True,
    max_age=3600,
)


@dataclass(frozen=True)
class RoutePolicy:
    """One route as a gateway applies it: where it goes and how often a client may call."""

    name: str
    paths: tuple[str, ...]
    service: str
    requests_per_minute: int


def route_policies(routes: Sequence[Route], limits: GatewayLimits) -> tuple[RoutePolicy, ...]:
    """Every route with its limit, in table order."""
    return tuple(
        RoutePolicy(route.name, route.paths, route.service, limits.per_minute(route))
        for route in routes
    )
