"""User profiles behind a write-through cache in Redis.

Writes go to PostgreSQL first; only after the commit is the new profile written to Redis,
in the same request, so a reader never sees a value the database does not hold. A failed
Redis write is retried, then the key is deleted (the next read refills it from the
database); entries also carry a safety TTL, which bounds staleness should Redis refuse
even the delete. Reads try Redis, fall back to the database and refill with SET NX, so a
refill that raced a newer write-through never overwrites it. With Redis down, profiles
are served from the database: slower, never wrong.
"""

import uuid

import msgspec
import redis.exceptions
import structlog

from services.auth.schemas import UserProfile
from services.auth.users import load_profile, update_profile
from services.common.cache import Redis
from services.common.database import Databases

__all__ = ["ProfileStore", "profile_key"]

_WRITE_ATTEMPTS = 3
_CACHE_ERRORS = (redis.exceptions.RedisError, OSError)
_log = structlog.get_logger("eduscale.auth.profiles")
_decoder = msgspec.json.Decoder(UserProfile)


def profile_key(user_id: uuid.UUID) -> str:
    """The Redis key of a user's cached profile."""
    return f"auth:profile:{user_id}"


class ProfileStore:
    """Profiles read through and written through the cache."""

    def __init__(self, databases: Databases, redis: Redis, ttl_seconds: int) -> None:
        self._databases = databases
        self._redis = redis
        self._ttl = ttl_seconds

    async def get(self, user_id: uuid.UUID) -> UserProfile | None:
        """The profile, from Redis when it holds it, else from the database."""
        key = profile_key(user_id)
        try:
            cached = await self._redis.get(key)
        except _CACHE_ERRORS as error:
            _log.warning("profile_cache_unavailable", op="get", error=type(error).__name__)
            cached = None
        if cached is not None:
            try:
                return _decoder.decode(cached)
            except msgspec.DecodeError:
                _log.warning("profile_cache_corrupt", user_id=str(user_id))
        async with self._databases.writer() as conn:
            profile = await load_profile(conn, user_id)
        if profile is not None:
            try:
                await self._redis.set(key, msgspec.json.encode(profile), ex=self._ttl, nx=True)
            except _CACHE_ERRORS as error:
                _log.warning("profile_cache_unavailable", op="fill", error=type(error).__name__)
        return profile

    async def put(self, profile: UserProfile) -> None:
        """Write a just-committed profile through to Redis, or make sure no old copy stays."""
        key = profile_key(profile.id)
        payload = msgspec.json.encode(profile)
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                await self._redis.set(key, payload, ex=self._ttl)
            except _CACHE_ERRORS as error:
                _log.warning("profile_cache_write_failed", attempt=attempt, error=str(error))
            else:
                return
        try:
            await self._redis.delete(key)
        except _CACHE_ERRORS:
            _log.exception("profile_cache_stale_until_ttl", user_id=str(profile.id), ttl=self._ttl)

    async def update(
        self, user_id: uuid.UUID, changes: dict[str, str | None]
    ) -> UserProfile | None:
        """Commit `changes`, then write the result through."""
        async with self._databases.writer() as conn:
            profile = await update_profile(conn, user_id, changes)
        if profile is not None:
            await self.put(profile)
        return profile
