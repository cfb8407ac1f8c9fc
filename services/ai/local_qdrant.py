"""Embedded Qdrant (local mode) on a thread of its own, so its work never stalls the event loop.

qdrant-client's local mode is Qdrant written in Python, and its `AsyncQdrantClient`
methods are coroutines in name only: a search evaluates the filter on every stored
point's payload in Python, and with a directory an upsert commits each point to SQLite
(a disk flush) before it returns, all on the caller's event loop. A worker with 64 jobs
in flight stopped all 64 for every one of those (the pipeline benchmark's profile: 20 %
of the worker's time waiting in SQLite commits, 10 % filtering).

`ThreadedLocalQdrant` is that same local client, created, used and closed on one
dedicated thread running its own event loop. Each call is handed to that thread and
awaited, so the caller's loop runs other jobs meanwhile; the waits (SQLite releases the
GIL) overlap their work. One thread, and calls run in the order they were made: the local
client is not thread-safe, and a job's write is visible to the reads it makes after it,
as before. A call cancelled before the thread reached it (a cache timeout) is not made.

With a directory, each point is its own SQLite transaction, and in SQLite's default mode
each commit waits for the disk (fsync, 3 to 16 ms per point on the benchmark machine), so
the one thread could write no more than 60 to 300 cache entries a second, and every job's
lookup queued behind the writes. The collections' databases are therefore switched to
write-ahead logging with `synchronous=NORMAL` (SQLite's documented pairing): a commit is
an append to the log, flushed at checkpoints. A process that crashes or is killed loses
nothing committed; only a power cut or OS crash may take back the last entries, which for
a cache of answers that can be asked again is no loss. qdrant-client has no option for
this, so it is set on the collections' connections (`_fast_commits`); should a later
release move them, entries are still written, only at the slower pace.

Only local mode is wrapped: a server client (`QDRANT_URL`, as pods use) does its I/O
asynchronously already and stays the plain `AsyncQdrantClient`.
"""

import asyncio
import inspect
import sqlite3
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from qdrant_client import AsyncQdrantClient
from qdrant_client.async_client_base import AsyncQdrantBase

__all__ = ["ThreadedLocalQdrant"]

_T = TypeVar("_T")


class _LoopThread:
    """One thread running an event loop; coroutines and calls run there, one at a time."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._stopped = False

    async def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """The result of `coroutine`, run on the thread; the caller's loop goes on meanwhile."""
        if self._stopped:
            coroutine.close()
            raise RuntimeError("the embedded Qdrant is closed")
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except BaseException:
            coroutine.close()
            raise
        return await asyncio.wrap_future(future)

    def call(self, function: Callable[[], _T]) -> _T:
        """`function()` run on the thread, the caller blocked until it returns."""
        if self._stopped:
            raise RuntimeError("the embedded Qdrant is closed")

        async def call() -> _T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """End the thread (what was handed to it first runs to its end); idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def _fast_commits(local: object, done: "weakref.WeakSet[object]") -> None:
    """Write-ahead logging for the SQLite database of each collection not yet switched.

    Reaches into qdrant-client's local mode (`collections[*].storage.storage`, the
    connection of each collection's `CollectionPersistence`); whatever is not there as
    expected (in-memory mode, another release) is left as it is.
    """
    for collection in list(getattr(local, "collections", {}).values()):
        persistence = getattr(collection, "storage", None)
        connection = getattr(persistence, "storage", None)
        if isinstance(connection, sqlite3.Connection) and persistence not in done:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            done.add(persistence)


class _OnThread:
    """Stands for the local client inside `AsyncQdrantClient`: every call runs on the thread."""

    def __init__(self, local: AsyncQdrantBase, thread: _LoopThread) -> None:
        self._local = local
        self._thread = thread
        self._switched: weakref.WeakSet[object] = weakref.WeakSet()
        """The collections' persistence objects already switched (gone when they close)."""
        thread.call(lambda: _fast_commits(local, self._switched))  # the collections it loaded

    async def _call(
        self, method: Callable[..., Coroutine[Any, Any, _T]], *args: Any, **kwargs: Any
    ) -> _T:
        try:
            return await method(*args, **kwargs)
        finally:  # a collection may have been created (or re-created)
            _fast_commits(self._local, self._switched)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._local, name)
        if inspect.iscoroutinefunction(attribute):

            async def on_thread(*args: Any, **kwargs: Any) -> Any:
                return await self._thread.run(self._call(attribute, *args, **kwargs))

            return on_thread
        if callable(attribute):
            # The few plain methods (batch uploads) block their caller, as they did.
            return lambda *args, **kwargs: self._thread.call(lambda: attribute(*args, **kwargs))
        return attribute


class ThreadedLocalQdrant(AsyncQdrantClient):
    """`AsyncQdrantClient(location=":memory:")` or `(path=...)`, working on its own thread.

    Everything else is the client's own: the same methods, errors, warnings and
    `init_options` (so it is recognised as local mode).
    """

    def __init__(self, location: str) -> None:
        thread = _LoopThread(name="qdrant-local")
        memory = location == ":memory:"

        def create() -> None:  # on the thread: the SQLite connections it opens are used there
            if memory:
                AsyncQdrantClient.__init__(self, location=location)
            else:
                AsyncQdrantClient.__init__(self, path=location)

        try:
            thread.call(create)
        except BaseException:
            thread.stop()
            raise
        self._thread = thread
        self._client = cast("AsyncQdrantBase", _OnThread(self._client, thread))

    async def close(self, grpc_grace: float | None = None, **kwargs: Any) -> None:
        """Close the local client (on its thread), then end the thread; idempotent."""
        if self._thread.stopped:
            return
        try:
            await super().close(grpc_grace=grpc_grace, **kwargs)
        finally:
            self._thread.stop()
