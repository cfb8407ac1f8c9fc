"""The runtime's settings sections: what a service or worker needs to reach its data.

`DataSettings` is what every process that keeps state reads (database, Redis, pools,
logging); `ServiceSettings` adds what only a process serving clients reads (tokens, CORS,
HTTP limits, cache lifetimes), so a worker's environment reference lists none of it. Each
workload's class (`services/<deployable>/settings.py`) composes one of them with the
other sections. Read once, into a frozen object the
app factory receives, so nothing is cached at module level and a test builds an app from
a plain mapping. A missing or malformed value stops start-up with one line that names
the variable, the value and what is allowed: `SettingsError`.
"""

import re
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, model_validator

from services.runtime.environment import (
    LOG_LEVELS,
    CommaList,
    EnvironmentSettings,
    SettingsError,
    setting,
)

__all__ = [
    "LOG_LEVELS",
    "DataSettings",
    "HealthSettings",
    "LogLevel",
    "LoggingSettings",
    "Origins",
    "ServiceSettings",
    "SettingsError",
    "TokenServiceSettings",
    "log_level_setting",
    "origins_setting",
]

MIN_JWT_SECRET = 32
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_POSTGRES = ("postgresql", "postgres")
_REDIS = ("redis", "rediss")


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)]
"""A logging level, in any case."""


def log_level_setting() -> LogLevel:
    """LOG_LEVEL, as every workload reads it."""
    level: LogLevel = setting(
        "LOG_LEVEL", "INFO", description="Lowest level of the JSON log lines written."
    )
    return level


def url_check(schemes: tuple[str, ...]) -> AfterValidator:
    """Refuse a URL whose scheme is not one of `schemes` or that names no host."""

    def check(value: str | None) -> str | None:
        if value is not None:
            _check_url(value, schemes)
        return value

    return AfterValidator(check)


def urls_check(schemes: tuple[str, ...]) -> AfterValidator:
    """`url_check` for each URL of a comma-separated list."""

    def check(value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            _check_url(url, schemes)
        return value

    return AfterValidator(check)


def _check_url(value: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        shown = parts.scheme if parts is not None and parts.scheme else "no scheme"
        message = f"not a valid URL ({shown}): use {' or '.join(schemes)}://host[:port]/..."
        raise ValueError(message)


def _origins(value: tuple[str, ...]) -> tuple[str, ...]:
    for origin in value:
        if origin != "*" and not _ORIGIN.match(origin):
            message = (
                f"{origin!r} is not an origin: use origins like https://app.example.com, "
                "comma-separated, without a path"
            )
            raise ValueError(message)
    return value


def origins_setting(default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """CORS_ORIGINS, as the services and the gateway read it."""
    origins: tuple[str, ...] = setting(
        "CORS_ORIGINS",
        default,
        description="Comma-separated browser origins allowed to call the API (`*` for any).",
        allowed="origins like https://app.example.com, comma-separated, without a path",
    )
    return origins


Origins = Annotated[CommaList, AfterValidator(_origins)]


def _region(value: str | None) -> str | None:
    if value is not None and not _REGION.match(value):
        message = "not an AWS region: use e.g. eu-west-1"
        raise ValueError(message)
    return value


def _token_key(value: str) -> str:
    if value and len(value) < MIN_JWT_SECRET:
        message = f"too short ({len(value)} characters): use at least {MIN_JWT_SECRET}"
        raise ValueError(message)
    return value


class DataSettings(EnvironmentSettings):
    """What a process that keeps state reads: the data tier, its pools and logging."""

    database_url: Annotated[str, url_check(_POSTGRES)] = setting(
        "DATABASE_URL",
        description="The writer, as a libpq URL (`postgresql://user@host:5432/db`).",
        allowed="a URL (postgresql://... or postgres://...)",
    )
    database_replica_urls: Annotated[CommaList, urls_check(_POSTGRES)] = setting(
        "DATABASE_REPLICA_URLS",
        (),
        description="Comma-separated read replicas; empty means reads use the writer.",
        allowed="postgresql:// URLs, comma-separated",
    )
    database_iam_auth: bool = setting(
        "DATABASE_IAM_AUTH",
        False,  # noqa: FBT003 - a default value
        description="Sign an RDS IAM token as each connection's password (in AWS).",
    )
    aws_region: Annotated[str | None, AfterValidator(_region)] = setting(
        "AWS_REGION",
        None,
        description="Where the database and broker are; required with DATABASE_IAM_AUTH.",
        allowed="an AWS region, e.g. eu-west-1",
    )
    redis_url: Annotated[str, url_check(_REDIS)] = setting(
        "REDIS_URL",
        description="`redis://` or `rediss://` (TLS), password in the URL when AUTH is on.",
        allowed="a URL (redis://... or rediss://...)",
        secret=True,
    )
    redis_cluster: bool = setting(
        "REDIS_CLUSTER",
        False,  # noqa: FBT003 - a default value
        description="true for a cluster-mode endpoint (ElastiCache with shards).",
    )
    log_level: LogLevel = log_level_setting()
    pool_max_size: int = setting(
        "DATABASE_POOL_MAX_SIZE",
        10,
        ge=1,
        le=200,
        description="Connections per pool (one pool per database).",
    )
    pool_timeout_seconds: float = setting(
        "DATABASE_POOL_TIMEOUT_SECONDS",
        5.0,
        ge=0.1,
        le=60,
        description="How long a request waits for a connection, and start-up for the writer "
        "(then the service exits, naming it).",
    )

    @model_validator(mode="after")
    def _region_for_iam(self) -> Self:
        """IAM authentication signs tokens for one region: it must be known."""
        if self.database_iam_auth and self.aws_region is None:
            message = "AWS_REGION is not set: DATABASE_IAM_AUTH needs the AWS region"
            raise ValueError(message)
        return self


class ServiceSettings(DataSettings):
    """`DataSettings` plus what a service that serves clients reads: tokens, CORS, limits."""

    jwt_secret: Annotated[str, AfterValidator(_token_key)] = setting(
        "JWT_SECRET",
        "",
        description="The HS256 key shared by the services that issue and verify tokens.",
        allowed=f"a random string of at least {MIN_JWT_SECRET} characters",
        secret=True,
    )
    jwt_ttl_seconds: int = setting(
        "JWT_TTL_SECONDS", 3600, ge=60, le=86400, description="Lifetime of an access token."
    )
    refresh_ttl_seconds: int = setting(
        "REFRESH_TTL_SECONDS",
        2_592_000,
        ge=300,
        le=31_536_000,
        description="Lifetime of a refresh token (Auth); each refresh issues a new one, so a "
        "login lasts while it is used at least this often (default 30 days).",
    )
    cors_origins: Origins = origins_setting()
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES",
        1_000_000,
        ge=1024,
        le=100_000_000,
        description="Larger request bodies get 413.",
    )
    login_max_failures: int = setting(
        "LOGIN_MAX_FAILURES",
        5,
        ge=1,
        le=100,
        description="Failed logins for one account before it is throttled.",
    )
    login_lockout_seconds: int = setting(
        "LOGIN_LOCKOUT_SECONDS",
        300,
        ge=1,
        le=86400,
        description="How long failures are remembered and the lockout lasts.",
    )
    content_cache_ttl_seconds: int = setting(
        "CONTENT_CACHE_TTL_SECONDS",
        60,
        ge=1,
        le=86400,
        description="TTL of cached course content in Redis.",
    )
    catalogue_max_age_seconds: int = setting(
        "CATALOGUE_MAX_AGE_SECONDS",
        30,
        ge=0,
        le=86400,
        description="`Cache-Control: max-age` on public catalogue responses.",
    )
    read_your_writes_seconds: float = setting(
        "READ_YOUR_WRITES_SECONDS",
        5.0,
        ge=0,
        le=300,
        description="After a write, reads of that course use the writer this long "
        "(the replicas' lag budget).",
    )
    profile_cache_ttl_seconds: int = setting(
        "PROFILE_CACHE_TTL_SECONDS",
        86400,
        ge=1,
        le=604800,
        description="Safety TTL of write-through profile entries.",
    )


class TokenServiceSettings(ServiceSettings):
    """`ServiceSettings` of a service that issues or verifies tokens: the key is required."""

    jwt_secret: Annotated[str, AfterValidator(_token_key)] = setting(
        "JWT_SECRET",
        description="The HS256 key shared by the services that issue and verify tokens.",
        allowed=f"a random string of at least {MIN_JWT_SECRET} characters",
        secret=True,
    )


class HealthSettings(EnvironmentSettings):
    """Where a worker serves its probes and metrics."""

    health_port: int = setting(
        "HEALTH_PORT",
        8081,
        ge=0,
        le=65535,
        description="Port of the worker's /health/live, /health/ready and /metrics (0: any "
        "free port, as tests use).",
    )


class LoggingSettings(EnvironmentSettings):
    """How much a process that reads no `DataSettings` logs."""

    log_level: LogLevel = log_level_setting()
