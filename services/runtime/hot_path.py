"""The fast lane: a service's cached reads answered before Litestar's router.

A cached read is a token check, one Redis GET and bytes already encoded; through
Litestar it also paid for routing, dependency injection, the request and response
objects, the exception-handling layers and the middleware stack, about half of its CPU
in the profile (docs/benchmarks.md). A service names its cached reads (`FastRoutes`);
the HTTP metrics, the app's outermost handler inside Litestar, ask the lane first
(`HTTPMetrics(first_responder=...)`), so an answered request is timed and counted like
every other, without the send wrapper the app's responses need, and the app's lifespan,
state and test client are unchanged.

A fast route answers only the case it is sure of: a hit, with a valid token where one is
needed. It returns None for anything else (a miss, a bad or expired token, Redis not
answering, an unexpected error) and the request goes on to Litestar untouched, whose
handler does exactly what it did before: the miss path, read-your-writes, the 401 and
every other error in the one problem+json shape. Only GETs are considered, and none that
carries an `Origin` header (CORS stays Litestar's). An answered request gets what the
middleware gives every other one: an `X-Request-ID` (the caller's, or a new one) and one
access line.
"""

import random
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from services.runtime.access_log import access_log
from services.runtime.logs import REQUEST_ID_HEADER, incoming_request_id
from services.runtime.redis_get import CachedGet, RedisGetFailed

__all__ = [
    "CACHE_MISS",
    "Answer",
    "FastLane",
    "FastRequest",
    "FastRoute",
    "FastRoutes",
    "Recent",
    "missed",
]

_log = structlog.get_logger("eduscale.hot_path")
_random_bits = random.getrandbits
"""Request ids need to be unique, not secret: no system call per request (`os.urandom`)."""
_REQUEST_ID = REQUEST_ID_HEADER.encode()
Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
"""ASGI as plain mappings: the lane reads a few keys, Litestar's types need not apply."""
CACHE_MISS = "eduscale.cache_miss"
"""The state key under which a fast route leaves the cache key it found missing."""
K = TypeVar("K")
V = TypeVar("V")
_READ_HEADERS = frozenset({b"authorization", b"if-none-match", b"origin", _REQUEST_ID})


@dataclass(slots=True)
class FastRequest:
    """What a fast route may look at: the path and the few headers the lane collects.

    Not frozen: a frozen dataclass sets each field through `object.__setattr__`, which
    doubles its construction, once per cached read.
    """

    path: str
    headers: Mapping[bytes, bytes]
    """Lower-case names: authorization, if-none-match, x-request-id (others dropped)."""
    state: dict[str, Any]
    """The request's ASGI state, which Litestar's request sees (`note_miss`)."""

    def note_miss(self, key: str) -> None:
        """Tell the handler this key just missed, so it does not GET it again."""
        self.state[CACHE_MISS] = key


def missed(state: Mapping[str, Any], key: str) -> bool:
    """Whether the fast lane found `key` missing from the cache for this request."""
    return state.get(CACHE_MISS) == key


async def cached_entry(cached_get: CachedGet, request: FastRequest, key: str) -> bytes | None:
    """The cache entry a fast route answers from; None hands the request to Litestar.

    None when Redis fails (the handler answers as it would without the lane) and when the
    key is unset; a miss is noted on the request, so the handler reads the database
    without asking Redis again.
    """
    try:
        entry = await cached_get.get(key.encode())
    except RedisGetFailed:
        return None
    if entry is None:
        request.note_miss(key)
    return entry


class Recent(Generic[K, V]):
    """What a fast route worked out for recently seen inputs (a path, a body).

    Bounded: when full it starts again empty, so a flood of distinct inputs (made-up ids)
    costs memory once and the hot ones come back at their next read.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._known: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """What was remembered for `key`, if it still is."""
        return self._known.get(key)

    def remember(self, key: K, value: V) -> V:
        """Keep `value` for `key` and return it."""
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[key] = value
        return value


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete response: status, headers (without X-Request-ID) and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


FastRoute = Callable[[FastRequest], Awaitable[Answer | None]]
"""Answers a GET it is sure of, or returns None to hand the request to Litestar."""


@dataclass(frozen=True)
class FastRoutes:
    """A service's cached reads: by exact path, or by path prefix with its route template.

    The template (`/courses/{course_id}`) is what Litestar's router would have written into
    `scope["path_template"]`: the HTTP metrics label an answered request by it.
    """

    exact: Mapping[str, FastRoute] = field(default_factory=dict)
    prefixes: Sequence[tuple[str, str, FastRoute]] = ()


class FastLane:
    """Answers the hits of a service's fast routes; declines everything else.

    Called by `HTTPMetrics` ahead of the app (`first_responder`): an answered request is
    timed and counted there like any other, without the app's send wrapper.
    """

    def __init__(self, routes: FastRoutes) -> None:
        self._exact = dict(routes.exact)
        self._prefixes = tuple(routes.prefixes)

    def _route(self, path: str) -> tuple[str, FastRoute] | None:
        route = self._exact.get(path)
        if route is not None:
            return path, route
        for prefix, template, candidate in self._prefixes:
            if path.startswith(prefix):
                return template, candidate
        return None

    async def answer(self, scope: Scope, send: Send) -> int | None:
        """Answer a fast route's hit and return its status, or None: the app answers."""
        if scope["method"] != "GET":
            return None
        path: str = scope["path"]
        found = self._route(path)
        if found is None:
            return None
        template, route = found
        started = time.perf_counter()
        headers = {name: value for name, value in scope["headers"] if name in _READ_HEADERS}
        if b"origin" in headers:
            return None
        try:
            answer = await route(FastRequest(path, headers, scope.setdefault("state", {})))
        except Exception:  # noqa: BLE001 - Litestar answers instead, in the one error shape
            _log.warning("fast_lane_error", path=path, exc_info=True)
            return None
        if answer is None:
            return None
        request_id = (
            incoming_request_id([(_REQUEST_ID, headers[_REQUEST_ID])])
            if _REQUEST_ID in headers
            else None
        ) or _random_bits(128).to_bytes(16).hex()  # as uuid4().hex, a third of its cost
        scope["path_template"] = template  # as the router would have: the metrics' route
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [*answer.headers, (_REQUEST_ID, request_id.encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
        access_log.record(
            "GET",
            path,
            answer.status,
            round((time.perf_counter() - started) * 1000, 2),
            request_id,
        )
        return answer.status
