"""The local gateway's settings, read once from the environment.

`eduscale dev up` sets GATEWAY_UPSTREAMS to the ports it gave the services; the limits
default to the stacks' defaults (`DEFAULT_LIMITS`), which is what Kong enforces unless a
stack overrides them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from contracts.gateway import DEFAULT_LIMITS, GatewayLimits
from contracts.routes import ROUTES, Route
from services.runtime.settings import LOG_LEVELS, SettingsError

__all__ = ["LOCAL_CORS_ORIGINS", "GatewaySettings"]

LOCAL_CORS_ORIGINS = ("http://localhost:3000", "http://localhost:5173")
"""Where front-end dev servers usually run (create-react-app / Next.js, Vite)."""
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """Where each service is, and what the gateway enforces in front of them."""

    upstreams: Mapping[str, str]
    """GATEWAY_UPSTREAMS: `service=http://host:port,...`, one per service of the routes."""
    limits: GatewayLimits = DEFAULT_LIMITS
    """GATEWAY_REQUESTS_PER_MINUTE, GATEWAY_STRICT_REQUESTS_PER_MINUTE, GATEWAY_MAX_BODY_MB."""
    cors_origins: tuple[str, ...] = LOCAL_CORS_ORIGINS
    """CORS_ORIGINS: comma-separated browser origins (`*` for any)."""
    routes: tuple[Route, ...] = field(default=ROUTES)
    """The route table (always `ROUTES` outside tests)."""
    log_level: str = "INFO"
    """LOG_LEVEL."""

    def __post_init__(self) -> None:
        missing = sorted({r.service for r in self.routes} - set(self.upstreams))
        if missing:
            raise SettingsError(
                f"GATEWAY_UPSTREAMS has no upstream for {', '.join(missing)}: "
                "use service=http://host:port, comma-separated"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        """Read and check the variables; `SettingsError` names a bad one."""
        level = environ.get("LOG_LEVEL", "").strip().upper() or "INFO"
        if level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL={level!r} is not allowed: use one of {LOG_LEVELS}")
        return cls(
            upstreams=_upstreams(environ.get("GATEWAY_UPSTREAMS", "")),
            limits=GatewayLimits(
                requests_per_minute=_whole(
                    environ, "GATEWAY_REQUESTS_PER_MINUTE", DEFAULT_LIMITS.requests_per_minute
                ),
                strict_requests_per_minute=_whole(
                    environ,
                    "GATEWAY_STRICT_REQUESTS_PER_MINUTE",
                    DEFAULT_LIMITS.strict_requests_per_minute,
                ),
                max_body_mb=_whole(environ, "GATEWAY_MAX_BODY_MB", DEFAULT_LIMITS.max_body_mb),
            ),
            cors_origins=_origins(environ.get("CORS_ORIGINS", "")),
            log_level=level,
        )


def _upstreams(raw: str) -> dict[str, str]:
    upstreams: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, url = part.partition("=")
        parts = urlsplit(url.strip())
        if not name.strip() or parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SettingsError(
                f"GATEWAY_UPSTREAMS has {part!r}: use service=http://host:port, comma-separated"
            )
        upstreams[name.strip()] = url.strip().rstrip("/")
    return upstreams


def _whole(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:  # noqa: PLR2004
        raise SettingsError(f"{name}={raw!r} is not allowed: use a whole number from 1 to 1000000")
    return int(raw)


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip() for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise SettingsError(
                f"CORS_ORIGINS has {origin!r}: use origins like http://localhost:3000, "
                "comma-separated, without a path"
            )
    return origins or LOCAL_CORS_ORIGINS
