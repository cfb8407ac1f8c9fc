"""Service settings, read once from environment variables (the twelve-factor contract).

The infrastructure (`stacks/workloads.py`) sets these variables on every pod; a developer
sets them in a shell. They are read exactly once, into a frozen `ServiceSettings` that the
app factory receives, so nothing is cached at module level and a test builds an app from
a plain mapping. A missing or malformed value stops start-up with one line that names the
variable and says what is allowed: `SettingsError`.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

__all__ = ["LOG_LEVELS", "ServiceSettings", "SettingsError"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_MIN_JWT_SECRET = 32
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_T = TypeVar("_T")


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it and what is allowed."""


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Everything a core service needs from its environment."""

    database_url: str
    """DATABASE_URL: the writer, as a libpq URL (`postgresql://user@host:5432/db`)."""
    database_replica_urls: tuple[str, ...] = ()
    """DATABASE_REPLICA_URLS: comma-separated read replicas; empty means reads use the writer."""
    database_iam_auth: bool = False
    """DATABASE_IAM_AUTH: sign an RDS IAM token as each connection's password (in AWS)."""
    aws_region: str | None = None
    """AWS_REGION: where the database is; required with DATABASE_IAM_AUTH."""
    redis_url: str
    """REDIS_URL: `redis://` or `rediss://` (TLS), password in the URL when AUTH is on."""
    redis_cluster: bool = False
    """REDIS_CLUSTER: true for a cluster-mode endpoint (ElastiCache with shards)."""
    jwt_secret: str = ""
    """JWT_SECRET: the HS256 key shared by the services that issue and verify tokens
    (required for them; workers, which handle no tokens, are not given it)."""
    jwt_ttl_seconds: int = 3600
    """JWT_TTL_SECONDS: lifetime of an access token."""
    cors_origins: tuple[str, ...] = ()
    """CORS_ORIGINS: comma-separated browser origins allowed to call the API."""
    log_level: str = "INFO"
    """LOG_LEVEL: one of LOG_LEVELS."""
    pool_max_size: int = 10
    """DATABASE_POOL_MAX_SIZE: connections per pool (one pool per database)."""
    pool_timeout_seconds: float = 5.0
    """DATABASE_POOL_TIMEOUT_SECONDS: how long a request waits for a connection, and start-up
    for the writer (then the service exits, naming it)."""
    max_body_bytes: int = 1_000_000
    """MAX_BODY_BYTES: larger request bodies get 413."""
    login_max_failures: int = 5
    """LOGIN_MAX_FAILURES: failed logins for one account before it is throttled."""
    login_lockout_seconds: int = 300
    """LOGIN_LOCKOUT_SECONDS: how long failures are remembered and the lockout lasts."""
    content_cache_ttl_seconds: int = 60
    """CONTENT_CACHE_TTL_SECONDS: TTL of cached course content in Redis."""
    catalogue_max_age_seconds: int = 30
    """CATALOGUE_MAX_AGE_SECONDS: `Cache-Control: max-age` on public catalogue responses."""
    read_your_writes_seconds: float = 5.0
    """READ_YOUR_WRITES_SECONDS: after a write, reads of that course use the writer this long
    (the replicas' lag budget)."""
    profile_cache_ttl_seconds: int = 86400
    """PROFILE_CACHE_TTL_SECONDS: safety TTL of write-through profile entries."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, verifies_tokens: bool = True
    ) -> "ServiceSettings":
        """Read and check every variable; raise `SettingsError` on the first bad one.

        `verifies_tokens=False` is for workers: no key is read, so none need be deployed
        to pods that never see a client's token.
        """
        env = _Environment(environ)
        iam_auth = env.flag("DATABASE_IAM_AUTH", default=False)
        return cls(
            database_url=env.url("DATABASE_URL", ("postgresql", "postgres")),
            database_replica_urls=env.urls("DATABASE_REPLICA_URLS", ("postgresql", "postgres")),
            database_iam_auth=iam_auth,
            aws_region=env.region("AWS_REGION", required=iam_auth),
            redis_url=env.url("REDIS_URL", ("redis", "rediss")),
            redis_cluster=env.flag("REDIS_CLUSTER", default=False),
            jwt_secret=(
                env.secret("JWT_SECRET", min_length=_MIN_JWT_SECRET) if verifies_tokens else ""
            ),
            jwt_ttl_seconds=env.integer("JWT_TTL_SECONDS", 3600, low=60, high=86400),
            cors_origins=env.origins("CORS_ORIGINS"),
            log_level=env.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
            pool_max_size=env.integer("DATABASE_POOL_MAX_SIZE", 10, low=1, high=200),
            pool_timeout_seconds=env.number("DATABASE_POOL_TIMEOUT_SECONDS", 5.0, low=0.1, high=60),
            max_body_bytes=env.integer("MAX_BODY_BYTES", 1_000_000, low=1024, high=100_000_000),
            login_max_failures=env.integer("LOGIN_MAX_FAILURES", 5, low=1, high=100),
            login_lockout_seconds=env.integer("LOGIN_LOCKOUT_SECONDS", 300, low=1, high=86400),
            content_cache_ttl_seconds=env.integer(
                "CONTENT_CACHE_TTL_SECONDS", 60, low=1, high=86400
            ),
            catalogue_max_age_seconds=env.integer(
                "CATALOGUE_MAX_AGE_SECONDS", 30, low=0, high=86400
            ),
            read_your_writes_seconds=env.number("READ_YOUR_WRITES_SECONDS", 5.0, low=0, high=300),
            profile_cache_ttl_seconds=env.integer(
                "PROFILE_CACHE_TTL_SECONDS", 86400, low=1, high=604800
            ),
        )


class _Environment:
    """Typed reads of one environment mapping, each failing with a one-line reason."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def _required(self, name: str, allowed: str) -> str:
        value = self._raw(name)
        if value is None:
            raise SettingsError(f"{name} is not set: expected {allowed}")
        return value

    def url(self, name: str, schemes: tuple[str, ...]) -> str:
        allowed = " or ".join(f"{scheme}://..." for scheme in schemes)
        value = self._required(name, f"a URL ({allowed})")
        _check_url(name, value, schemes)
        return value

    def urls(self, name: str, schemes: tuple[str, ...]) -> tuple[str, ...]:
        value = self._raw(name)
        if value is None:
            return ()
        urls = tuple(part.strip() for part in value.split(",") if part.strip())
        for url in urls:
            _check_url(name, url, schemes)
        return urls

    def secret(self, name: str, *, min_length: int) -> str:
        value = self._required(name, f"a random string of at least {min_length} characters")
        if len(value) < min_length:
            raise SettingsError(
                f"{name} is too short ({len(value)} characters): use at least {min_length}"
            )
        return value

    def flag(self, name: str, *, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise SettingsError(f"{name}={value!r} is not a boolean: use true or false")

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        return self._bounded(name, default, int, "a whole number", low, high)

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        return self._bounded(name, default, float, "a number", low, high)

    def _bounded(  # noqa: PLR0917 - private; the public readers name every argument
        self,
        name: str,
        default: _T,
        cast: Callable[[str], _T],
        kind: str,
        low: float,
        high: float,
    ) -> _T:
        value = self._raw(name)
        if value is None:
            return default
        try:
            parsed = cast(value)
        except ValueError:
            raise SettingsError(
                f"{name}={value!r} is not {kind}: use {kind} from {low} to {high}"
            ) from None
        number = float(parsed)  # type: ignore[arg-type]
        if not math.isfinite(number) or not low <= number <= high:
            raise SettingsError(
                f"{name}={value!r} is out of range: use {kind} from {low} to {high}"
            )
        return parsed

    def region(self, name: str, *, required: bool) -> str | None:
        value = self._raw(name)
        if value is None:
            if required:
                raise SettingsError(f"{name} is not set: DATABASE_IAM_AUTH needs the AWS region")
            return None
        if not _REGION.match(value):
            raise SettingsError(f"{name}={value!r} is not an AWS region: use e.g. eu-west-1")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self._raw(name)
        if value is None:
            return default
        if value.upper() not in allowed:
            raise SettingsError(f"{name}={value!r} is not allowed: use one of {', '.join(allowed)}")
        return value.upper()

    def origins(self, name: str) -> tuple[str, ...]:
        value = self._raw(name)
        if value is None:
            return ()
        origins = tuple(part.strip() for part in value.split(",") if part.strip())
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise SettingsError(
                    f"{name} has {origin!r}: use origins like https://app.example.com, "
                    "comma-separated, without a path"
                )
        return origins


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        port, parts = None, None
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        shown = parts.scheme if parts is not None and parts.scheme else "no scheme"
        raise SettingsError(
            f"{name} is not a valid URL ({shown}): use {' or '.join(schemes)}://host[:port]/..."
        )
    del port
