"""Throttling of repeated failed logins for one account, shared through Redis.

Every pod counts failures in the same Redis key (per account, hashed so no email sits in
the cache), so an attacker gains nothing by spreading guesses across pods. The first
failure starts the window; at the limit the account answers 429 with Retry-After until
the window ends; a successful login clears it. If Redis is down, logins still work
(failing closed would let a cache outage lock every user out) and the event is logged.
"""

import hashlib

import redis.exceptions
import structlog

from services.runtime.cache import Redis
from services.runtime.errors import TooManyRequests

__all__ = ["LoginThrottle"]

_CACHE_ERRORS = (redis.exceptions.RedisError, OSError)
_log = structlog.get_logger("eduscale.auth.throttle")


class LoginThrottle:
    """Counts failed logins per account."""

    def __init__(self, redis: Redis, *, max_failures: int, window_seconds: int) -> None:
        self._redis = redis
        self._max_failures = max_failures
        self._window = window_seconds

    @staticmethod
    def _key(email: str) -> str:
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return f"auth:login-failures:{digest}"

    async def check(self, email: str) -> None:
        """Raise `TooManyRequests` while the account is locked."""
        key = self._key(email)
        try:
            failures = await self._redis.get(key)
            if failures is None or int(failures) < self._max_failures:
                return
            remaining = await self._redis.ttl(key)
        except _CACHE_ERRORS as error:
            _log.warning("login_throttle_unavailable", error=type(error).__name__)
            return
        raise TooManyRequests(
            "Too many failed logins for this account; try again later",
            retry_after=remaining if remaining > 0 else self._window,
        )

    async def failed(self, email: str) -> None:
        """Count one failure; the window starts at the first."""
        key = self._key(email)
        try:
            await self._redis.incr(key)
            await self._redis.expire(key, self._window, nx=True)
        except _CACHE_ERRORS as error:
            _log.warning("login_throttle_unavailable", error=type(error).__name__)

    async def succeeded(self, email: str) -> None:
        """Forget earlier failures."""
        try:
            await self._redis.delete(self._key(email))
        except _CACHE_ERRORS as error:
            _log.warning("login_throttle_unavailable", error=type(error).__name__)
