"""The local gateway's settings, read once from the environment.

`eduscale dev up` sets GATEWAY_UPSTREAMS to the ports it gave the services; the limits
default to the stacks' defaults (`DEFAULT_LIMITS`), which is what Kong enforces unless a
stack overrides them.
"""

from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import BeforeValidator, model_validator
from pydantic_settings import NoDecode

from contracts.gateway import DEFAULT_LIMITS, GatewayLimits
from contracts.routes import ROUTES, Route
from services.runtime.environment import EnvironmentSettings, setting
from services.runtime.settings import LogLevel, Origins, log_level_setting, origins_setting

__all__ = ["LOCAL_CORS_ORIGINS", "GatewaySettings"]

LOCAL_CORS_ORIGINS = ("http://localhost:3000", "http://localhost:5173")
"""Where front-end dev servers usually run (create-react-app / Next.js, Vite)."""
_UPSTREAM_SHAPE = "service=http://host:port, comma-separated"


def _upstreams(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    upstreams: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, url = part.partition("=")
        parts = urlsplit(url.strip())
        if not name.strip() or parts.scheme not in {"http", "https"} or not parts.hostname:
            message = f"{part!r} is not {_UPSTREAM_SHAPE}"
            raise ValueError(message)
        upstreams[name.strip()] = url.strip().rstrip("/")
    return upstreams


def _limit(env: str, default: int, description: str) -> int:
    value: int = setting(env, default, ge=1, le=1_000_000, description=description)
    return value


class GatewaySettings(EnvironmentSettings):
    """Where each service is, and what the gateway enforces in front of them."""

    upstreams: Annotated[dict[str, str], NoDecode, BeforeValidator(_upstreams)] = setting(
        "GATEWAY_UPSTREAMS",
        description="Where each service of the routes is (`eduscale dev up` sets it).",
        allowed=_UPSTREAM_SHAPE,
    )
    requests_per_minute: int = _limit(
        "GATEWAY_REQUESTS_PER_MINUTE",
        DEFAULT_LIMITS.requests_per_minute,
        "Standard routes, per client IP.",
    )
    strict_requests_per_minute: int = _limit(
        "GATEWAY_STRICT_REQUESTS_PER_MINUTE",
        DEFAULT_LIMITS.strict_requests_per_minute,
        "Strict routes (login, registration), per client IP.",
    )
    max_body_mb: int = _limit(
        "GATEWAY_MAX_BODY_MB",
        DEFAULT_LIMITS.max_body_mb,
        "Largest accepted request body (PDF uploads included).",
    )
    cors_origins: Origins = origins_setting(LOCAL_CORS_ORIGINS)
    log_level: LogLevel = log_level_setting()

    @model_validator(mode="after")
    def _every_service_routed(self) -> Self:
        missing = sorted({r.service for r in self.routes} - set(self.upstreams))
        if missing:
            message = (
                f"GATEWAY_UPSTREAMS has no upstream for {', '.join(missing)}: use {_UPSTREAM_SHAPE}"
            )
            raise ValueError(message)
        return self

    @property
    def limits(self) -> GatewayLimits:
        """The per-client limits, as Kong is given them."""
        return GatewayLimits(
            requests_per_minute=self.requests_per_minute,
            strict_requests_per_minute=self.strict_requests_per_minute,
            max_body_mb=self.max_body_mb,
        )

    @property
    def routes(self) -> tuple[Route, ...]:
        """The route table."""
        return ROUTES
