"""Course content behind a TTL cache in Redis, with read-your-writes after a change.

Content is read far more often than written, so rendered JSON is kept in Redis for
`CONTENT_CACHE_TTL_SECONDS`, filled from a read replica on a miss. A write to a course
deletes the course's cached entries and leaves a short-lived "recently written" marker;
while it lives, misses for that course are filled from the writer, so neither the author
nor anyone else reads the course as it was before the write while the replicas catch up
(`READ_YOUR_WRITES_SECONDS` is that lag budget). Responses carry a strong ETag of the
bytes, so clients and the CDN revalidate with `If-None-Match` for a 304. With Redis
down, reads go to the database: slower, never wrong.
"""

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import redis.exceptions
import structlog

from services.runtime.cache import Redis
from services.runtime.database import Connection, Databases

__all__ = ["ContentCache", "course_key", "etag_of", "lesson_key", "quiz_key"]

_CACHE_ERRORS = (redis.exceptions.RedisError, OSError)
_log = structlog.get_logger("eduscale.course.cache")


def course_key(course_id: uuid.UUID) -> str:
    """The cached course detail (with lesson titles).

    The id sits in a hash tag (`{...}`) so all of a course's keys share one cluster slot and
    one DEL can drop them on a cluster-mode Redis.
    """
    return f"course:{{{course_id}}}:detail"


def lesson_key(course_id: uuid.UUID, lesson_id: uuid.UUID) -> str:
    """A cached lesson."""
    return f"course:{{{course_id}}}:lesson:{lesson_id}"


def quiz_key(quiz_id: uuid.UUID) -> str:
    """A cached quiz, answers removed."""
    return f"quiz:{quiz_id}"


def _marker(course_id: uuid.UUID) -> str:
    return f"course:{{{course_id}}}:written"


def etag_of(body: bytes) -> str:
    """A strong validator of exactly these bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class ContentCache:
    """Rendered course content, cached with a TTL."""

    def __init__(
        self,
        databases: Databases,
        redis: Redis,
        *,
        ttl_seconds: int,
        read_your_writes_seconds: float,
    ) -> None:
        self._databases = databases
        self._redis = redis
        self._ttl = ttl_seconds
        self._fresh_ms = int(read_your_writes_seconds * 1000)

    async def read(
        self,
        key: str,
        course_id: uuid.UUID | None,
        load: Callable[[Connection], Awaitable[Any]],
        *,
        known_miss: bool = False,
    ) -> bytes | None:
        """The JSON of `key`, from Redis or else loaded, encoded and cached.

        Loaded from a replica, or from the writer right after a write to `course_id`. None
        when `load` finds nothing. `known_miss`: the fast lane has just asked Redis for
        `key` in this request and found nothing, so it is not asked again.
        """
        cached: bytes | None = None
        if not known_miss:
            try:
                cached = await self._redis.get(key)
            except _CACHE_ERRORS as error:
                _log.warning("content_cache_unavailable", op="get", error=type(error).__name__)
        if cached is not None:
            return cached
        fresh = course_id is not None and await self._recently_written(course_id)
        source = self._databases.writer() if fresh else self._databases.reader()
        async with source as conn:
            value = await load(conn)
        if value is None:
            return None  # never cache an absence: it may be replication lag
        body = msgspec.json.encode(value)
        await self.store(key, body)
        return body

    async def store(self, key: str, body: bytes) -> None:
        """Cache `body` under `key` for the TTL (write-through of immutable content)."""
        try:
            await self._redis.set(key, body, ex=self._ttl)
        except _CACHE_ERRORS as error:
            _log.warning("content_cache_unavailable", op="set", error=type(error).__name__)

    async def written(self, course_id: uuid.UUID, *keys: str) -> None:
        """After a committed write to the course: mark it fresh and drop its cached entries."""
        try:
            if self._fresh_ms > 0:
                await self._redis.set(_marker(course_id), b"1", px=self._fresh_ms)
            await self._redis.delete(course_key(course_id), *keys)
        except _CACHE_ERRORS as error:
            # The entries expire within the TTL; that is the staleness bound of this cache.
            _log.warning("content_cache_invalidation_failed", error=type(error).__name__)

    async def _recently_written(self, course_id: uuid.UUID) -> bool:
        try:
            return bool(await self._redis.exists(_marker(course_id)))
        except _CACHE_ERRORS:
            return True  # cannot tell: the writer is always right
