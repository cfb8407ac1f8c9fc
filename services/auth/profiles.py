"""User profiles behind a write-through cache in Redis.

Writes go to PostgreSQL first; only after the commit is the new profile written to Redis,
in the same request, so a reader never sees a value the database does not hold. A failed
Redis write is retried, then the key is deleted (the next read refills it from the
database); entries also carry a safety TTL, which bounds staleness should Redis refuse
even the delete. Reads try Redis, fall back to the database and refill. With Redis down,
profiles are served from the database: slower, never wrong.

Every entry carries the row's `profile_version` (bumped by each update, so it follows
commit order), and every write to Redis, write-through or refill, is one Lua script that
writes only over an older entry or none. Two updates that commit A then B but reach Redis
B then A therefore leave B cached, and a refill that read the database before a newer
write-through never overwrites it.
"""

import uuid
from typing import Any

import msgspec
import redis.exceptions
import structlog

from services.auth.schemas import UserProfile
from services.auth.users import VersionedProfile, load_profile, update_profile
from services.runtime.cache import Redis
from services.runtime.database import Databases

__all__ = ["ProfileStore", "profile_json", "profile_key"]

_WRITE_ATTEMPTS = 3
_CACHE_ERRORS = (redis.exceptions.RedisError, OSError)
_log = structlog.get_logger("eduscale.auth.profiles")
_decoder = msgspec.json.Decoder(UserProfile)

# An entry is b"<version>:<profile JSON>". KEYS[1] the key; ARGV: version, entry, TTL.
# One key per call, so it runs unchanged on a cluster-mode Redis.
_WRITE_IF_NEWER = b"""
local current = redis.call('GET', KEYS[1])
if current then
    local stored = tonumber(string.match(current, '^(%d+):'))
    if stored and stored >= tonumber(ARGV[1]) then
        return 0
    end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def profile_key(user_id: uuid.UUID) -> str:
    """The Redis key of a user's cached profile."""
    return f"auth:profile:{user_id}"


def _entry(stored: VersionedProfile) -> bytes:
    return b"%d:" % stored.version + msgspec.json.encode(stored.profile)


def _profile_of(entry: bytes) -> UserProfile:
    return _decoder.decode(_body_of(entry))


def _body_of(entry: bytes) -> bytes:
    version, separator, body = entry.partition(b":")
    if not (separator and version.isdigit()):
        raise msgspec.DecodeError("no version prefix")
    return body


def profile_json(entry: bytes) -> bytes:
    """The profile JSON of a cached entry, checked to decode; `DecodeError` if corrupt."""
    body = _body_of(entry)
    _decoder.decode(body)
    return body


class ProfileStore:
    """Profiles read through and written through the cache; one per app.

    Made once by the Auth app's lifespan, so the script is registered once per client
    (redis-py sends it by SHA, loading it on the server only when missing).
    """

    def __init__(self, databases: Databases, redis: Redis, ttl_seconds: int) -> None:
        self._databases = databases
        self._redis = redis
        self._ttl = ttl_seconds
        self._write_if_newer = redis.register_script(_WRITE_IF_NEWER)

    async def get(self, user_id: uuid.UUID, *, known_miss: bool = False) -> UserProfile | None:
        """The profile, from Redis when it holds it, else from the database.

        `known_miss`: the fast lane has just found no entry in this request; not asked again.
        """
        key = profile_key(user_id)
        cached = None
        if not known_miss:
            try:
                cached = await self._redis.get(key)
            except _CACHE_ERRORS as error:
                _log.warning("profile_cache_unavailable", op="get", error=type(error).__name__)
        if cached is not None:
            try:
                return _profile_of(cached)
            except msgspec.DecodeError:
                _log.warning("profile_cache_corrupt", user_id=str(user_id))
        async with self._databases.writer() as conn:
            stored = await load_profile(conn, user_id)
        if stored is None:
            return None
        try:
            await self._write(stored)
        except _CACHE_ERRORS as error:
            _log.warning("profile_cache_unavailable", op="fill", error=type(error).__name__)
        return stored.profile

    async def put(self, stored: VersionedProfile) -> None:
        """Write a just-committed profile through to Redis, or make sure no old copy stays."""
        key = profile_key(stored.profile.id)
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                await self._write(stored)
            except _CACHE_ERRORS as error:
                _log.warning("profile_cache_write_failed", attempt=attempt, error=str(error))
            else:
                return
        try:
            await self._redis.delete(key)
        except _CACHE_ERRORS:
            _log.exception(
                "profile_cache_stale_until_ttl", user_id=str(stored.profile.id), ttl=self._ttl
            )

    async def update(
        self, user_id: uuid.UUID, changes: dict[str, str | None]
    ) -> UserProfile | None:
        """Commit `changes`, then write the result through."""
        async with self._databases.writer() as conn:
            stored = await update_profile(conn, user_id, changes)
        if stored is None:
            return None
        await self.put(stored)
        return stored.profile

    async def _write(self, stored: VersionedProfile) -> Any:
        """Store `stored` unless Redis holds the same or a newer version."""
        return await self._write_if_newer(
            keys=[profile_key(stored.profile.id)],
            args=[stored.version, _entry(stored), self._ttl],
        )
