"""One Redis GET per cached read, pipelined on one shared connection.

redis-py's asyncio client checks a connection out of its pool for every command, awaits
the answer on it alone, and records it under a retry and a timeout: measured, that was
a tenth of a cached read's CPU and one socket write and read per request. Redis answers
the commands of a connection in order, so the hot path sends every GET on one
connection and hands the replies back in order (what client libraries call
auto-pipelining), with at most one write in flight: GETs asked for while one is
unanswered wait and leave together when its replies are in. An idle server gets each
GET at once; a busy one gets them in batches as large as the round trip is long, so
the write and read system calls (on loopback, where most of a GET's CPU went) are
shared by the batch. hiredis, Redis's own reply parser, reads the replies.

Only GET. On a cluster-mode Redis (REDIS_CLUSTER, prod's ElastiCache with shards) the
same connection is kept to each primary and every GET goes to its key's shard
(`PipelinedClusterGet`, services/runtime/redis_cluster_get.py): the benchmark measures
this client, so prod must run it too, not redis-py's cluster client (a pool checkout, a
retry and a timeout per command, several times the CPU of a hit). Only a unix socket
(`unix://`, local runs) goes through the app's redis-py client (`ClientGet`).

Any failure (no connection, an error reply, no answer within the timeout) raises
`RedisGetFailed` to the caller, which then takes the ordinary path (redis-py, and the
database behind it): this client never decides what a request answers, it only makes
the hit cheap. After a failed connection it refuses for `RETRY_AFTER_SECONDS` rather
than reconnect per request while Redis is away.
"""

import asyncio
import collections
import ssl
import time
from dataclasses import dataclass
from typing import Any, Protocol

import hiredis
import redis.exceptions
from redis.asyncio.connection import SSLConnection, parse_url

from services.runtime.cache import TIMEOUT_SECONDS, Redis
from services.runtime.settings import DataSettings

__all__ = [
    "CachedGet",
    "ClientGet",
    "ErrorReply",
    "PipelinedGet",
    "RedisGetFailed",
    "Server",
    "open_cached_get",
]

RETRY_AFTER_SECONDS = 1.0
_WATCH_SECONDS = 0.25
_GET = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n"


class RedisGetFailed(Exception):
    """The GET got no answer; the caller takes its ordinary path."""


class ErrorReply(RedisGetFailed):
    """Redis answered with an error (WRONGTYPE, or on a cluster MOVED, ASK, CLUSTERDOWN)."""


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    out.extend(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
    return b"".join(out)


class _Connection(asyncio.Protocol):
    """One connection; replies are matched to requests by order."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._outgoing: list[bytes] = []
        self._unanswered = 0
        self._flush_scheduled = False
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._watch: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._watch = self._loop.call_later(_WATCH_SECONDS, self._check_deadlines)

    def request(self, command: bytes) -> "asyncio.Future[Any]":
        if self.closed or self._transport is None:
            raise RedisGetFailed("the connection is closed")
        future: asyncio.Future[Any] = self._loop.create_future()
        self._outgoing.append(command)
        self._waiting.append((future, time.monotonic() + self._timeout))
        if not self._unanswered and not self._flush_scheduled:
            # After this turn of the loop: the other requests of the turn join the write.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._outgoing and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._outgoing))
            self._unanswered += len(self._outgoing)
        self._outgoing.clear()

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while (reply := reader.gets()) is not False:
            if not waiting:
                self.fail("an answer nobody asked for")
                return
            future, _ = waiting.popleft()
            self._unanswered -= 1
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ErrorReply(str(reply)))
            else:
                future.set_result(reply)
        if not self._unanswered and self._outgoing and not self._flush_scheduled:
            self._flush()  # the batch that waited for these replies

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost: {exc}" if exc else "connection closed")

    def _check_deadlines(self) -> None:
        if self.closed:
            return
        if self._waiting and self._waiting[0][1] < time.monotonic():
            self.fail("no answer within the timeout")
            return
        self._watch = self._loop.call_later(_WATCH_SECONDS, self._check_deadlines)

    def fail(self, why: str) -> None:
        """Fail every request in flight and close: order cannot be trusted any more."""
        self.closed = True
        if self._watch is not None:
            self._watch.cancel()
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(RedisGetFailed(why))
        self._outgoing.clear()
        if self._transport is not None:
            self._transport.close()


class CachedGet(Protocol):
    """A GET for the hot path: bytes, None when unset, `RedisGetFailed` otherwise."""

    async def get(self, key: bytes) -> bytes | None: ...  # noqa: D102

    async def aclose(self) -> None: ...  # noqa: D102


class ClientGet:
    """GET through the app's redis-py client (cluster mode: it knows the shards)."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def get(self, key: bytes) -> bytes | None:
        """The value of `key`, None when it is not set; `RedisGetFailed` if Redis did not say."""
        try:
            value: bytes | None = await self._client.get(key)
        except (redis.exceptions.RedisError, OSError) as error:
            raise RedisGetFailed(str(error)) from None
        return value

    async def aclose(self) -> None:
        """Nothing of its own to close: the client belongs to the app's resources."""


def open_cached_get(settings: DataSettings, client: Redis) -> CachedGet:
    """The hot path's GET for these settings: pipelined on TCP (one server or a cluster)."""
    if settings.redis_url.startswith("unix:"):
        return ClientGet(client)
    if settings.redis_cluster:
        # Not imported at the top: the cluster client is built on this module's classes.
        from services.runtime.redis_cluster_get import PipelinedClusterGet  # noqa: PLC0415

        return PipelinedClusterGet(settings.redis_url, timeout=TIMEOUT_SECONDS)
    return PipelinedGet(settings.redis_url, timeout=TIMEOUT_SECONDS)


@dataclass(frozen=True, slots=True)
class Server:
    """Where a pipelined connection goes, and what it sends first (AUTH, SELECT)."""

    host: str
    port: int
    tls: bool
    hello: tuple[bytes, ...]

    @classmethod
    def of_url(cls, url: str, *, select_db: bool = True) -> "Server":
        """The server of a `redis://` or `rediss://` URL; a unix socket is refused."""
        options = parse_url(url)
        if "path" in options:
            raise ValueError("the pipelined GET speaks TCP only, not a unix socket")
        hello: list[bytes] = []
        password, username = options.get("password"), options.get("username")
        if password is not None:
            credentials = (
                [username.encode(), password.encode()] if username else [password.encode()]
            )
            hello.append(_command(b"AUTH", *credentials))
        if select_db and int(options.get("db", 0)):
            hello.append(_command(b"SELECT", str(options["db"]).encode()))
        return cls(
            host=options.get("host", "localhost"),
            port=int(options.get("port", 6379)),
            tls=options.get("connection_class") is SSLConnection,
            hello=tuple(hello),
        )


class PipelinedGet:
    """GETs from the Redis of `url` over one lazily opened, pipelined connection.

    `url` may be a `Server` instead: the cluster client keeps one of these per primary.
    """

    def __init__(self, url: str | Server, *, timeout: float) -> None:
        server = Server.of_url(url) if isinstance(url, str) else url
        self._host = server.host
        self._port = server.port
        self._tls = server.tls
        self._hello = server.hello
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._refuse_until = 0.0

    async def get(self, key: bytes) -> bytes | None:
        """The value of `key`, None when it is not set; `RedisGetFailed` if Redis did not say."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        reply: bytes | None = await connection.request(
            b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
        )
        return reply

    async def command(self, *parts: bytes) -> Any:
        """Any other command's reply, on the same connection (CLUSTER SLOTS)."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        return await connection.request(_command(*parts))

    async def aclose(self) -> None:
        """Close the connection (the app's lifespan ends)."""
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.fail("the client is closed")

    async def _connect(self) -> _Connection:
        if time.monotonic() < self._refuse_until:
            raise RedisGetFailed("Redis was unreachable a moment ago")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        except RedisGetFailed:
            raise
        except (OSError, TimeoutError) as error:
            raise RedisGetFailed(f"cannot connect: {error}") from None
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self._tls else None
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._timeout), self._host, self._port, ssl=context
                )
                for command in self._hello:
                    await connection.request(command)
        except BaseException:
            self._refuse_until = time.monotonic() + RETRY_AFTER_SECONDS
            if connection is not None:
                connection.fail("could not start the connection")
            raise
        self._connection = connection
        return connection
