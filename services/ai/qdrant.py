"""The process's Qdrant client: a server when QDRANT_URL is set, else embedded local mode.

Local mode keeps its data in this process (under QDRANT_PATH, which it locks, or in
memory for `:memory:`), so a second client on the same location would either see
nothing or fail on the lock. Every part of one process (orchestrator, indexer,
generation worker, as the tests and `eduscale dev up` run them) therefore shares one
local client per location, opened by the first user and closed by the last. That client
works on a thread of its own (`local_qdrant`): its searches and disk writes are Python
and SQLite on the caller's thread otherwise, and would stall every job in flight. Server
clients are cheap, independent and asynchronous already.

`course_index` is how every runtime gets the course index on that client: the server-only
layout (shards, replication, HNSW, the tenant index) is applied exactly when the
settings name a server, a decision made here once rather than by each runtime.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from qdrant_client import AsyncQdrantClient

from services.ai.local_qdrant import ThreadedLocalQdrant
from services.ai.settings import AISettings
from services.indexing.vector_index import CourseIndex

__all__ = ["course_index", "open_qdrant"]

_shared: dict[str, tuple[AsyncQdrantClient, int]] = {}


@asynccontextmanager
async def open_qdrant(settings: AISettings) -> AsyncIterator[AsyncQdrantClient]:
    """A client for `settings`, closed when the last user of its location is done."""
    if settings.qdrant_url:
        client = AsyncQdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
        try:
            yield client
        finally:
            await client.close()
        return
    location = settings.qdrant_path
    if location in _shared:
        client, users = _shared[location]
    else:
        client, users = ThreadedLocalQdrant(location or ":memory:"), 0
    _shared[location] = (client, users + 1)
    try:
        yield client
    finally:
        client, users = _shared[location]
        if users == 1:
            del _shared[location]
            await client.close()
        else:
            _shared[location] = (client, users - 1)


def course_index(qdrant: AsyncQdrantClient, settings: AISettings) -> CourseIndex:
    """The course index on `open_qdrant(settings)`'s client, as that client can hold it.

    Local mode has no shards, HNSW settings or payload indexes (and warns about them), so
    the layout's server-only parts are applied exactly when `settings` name a server.
    """
    return CourseIndex(qdrant, settings.layout, on_server=bool(settings.qdrant_url))
