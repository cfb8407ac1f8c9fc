"""The embedded Qdrant the runtimes open (`open_qdrant` without QDRANT_URL) works off the loop.

A worker runs many jobs on one event loop; the embedded Qdrant's searches and SQLite
commits used to run on it, so every job stood still while one job's cache entry was
written. These check what a worker's jobs notice: the loop keeps running during a write,
many jobs' entries written at once are all found again (also after a restart, and after
the process was killed), the directory is free again once the last user is done, and
errors arrive as the client's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient, models

from services.ai.embedding_cache import CachedEmbedder
from services.ai.local_qdrant import ThreadedLocalQdrant
from services.ai.qdrant import open_qdrant
from services.ai.semantic_cache import CacheScope, OpenAIEmbedder, SemanticCache
from services.ai.settings import AISettings

pytestmark = pytest.mark.anyio

JOBS = 64
"""The workers' default WORKER_CONCURRENCY."""


def settings(path: Path) -> AISettings:
    return AISettings.from_env({"QDRANT_PATH": str(path)})


def scope(job: int) -> CacheScope:
    return CacheScope(
        course_id=f"course-{job % 7}",
        lesson_id=f"lesson-{job}",
        lesson_hash="hash",
        kind="quiz",
        prompt_version="v1",
        model="gpt-4o-mini",
    )


def answer(job: int) -> str:
    return f'{{"questions": [{{"prompt": "job {job}", "choices": ["a", "b"], "answer_index": 0}}]}}'


def local_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "qdrant-local"]


async def test_other_jobs_keep_running_while_the_embedded_qdrant_writes(tmp_path: Path):
    async with open_qdrant(settings(tmp_path / "qdrant")) as qdrant:
        await qdrant.create_collection(
            "chunks", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
        )
        steps = 0

        async def another_job() -> None:  # awaits again and again, as a job awaiting I/O does
            nonlocal steps
            while True:
                await asyncio.sleep(0)
                steps += 1

        other = asyncio.create_task(another_job())
        await asyncio.sleep(0)
        # A document's worth of chunks: 300 points, each its own SQLite commit.
        points = [
            models.PointStruct(id=n, vector=[1.0, 0.0, 0.0, float(n)], payload={"n": n})
            for n in range(300)
        ]
        before = steps
        await qdrant.upsert("chunks", points=points)
        during = steps - before
        other.cancel()
        assert (await qdrant.count("chunks")).count == len(points)
    # On the loop's own thread the write never yields: the other job would not move at all.
    assert during > 0


async def test_entries_stored_by_many_jobs_at_once_are_all_found_also_after_a_restart(
    tmp_path: Path, openai_client: AsyncOpenAI
):
    def cache_on(qdrant: AsyncQdrantClient) -> SemanticCache:
        # as the generation worker embeds: one provider call per distinct text
        embedder = CachedEmbedder(
            OpenAIEmbedder(openai_client, model="text-embedding-3-small", dimensions=256)
        )
        return SemanticCache(qdrant, embedder, collection="semantic_cache")

    async with open_qdrant(settings(tmp_path / "qdrant")) as qdrant:
        assert isinstance(qdrant, ThreadedLocalQdrant)
        cache = cache_on(qdrant)
        assert await cache.ensure_collection()
        await asyncio.gather(*(cache.store(scope(job), "quiz: default", answer(job)) for job in range(JOBS)))  # fmt: skip
        found = await asyncio.gather(*(cache.lookup(scope(job), "quiz: default") for job in range(JOBS)))  # fmt: skip
        assert found == [answer(job) for job in range(JOBS)]
        assert (cache.stores, cache.hits, cache.errors) == (JOBS, JOBS, 0)
    assert local_threads() == []  # the last user closed it, and its thread ended

    async with open_qdrant(settings(tmp_path / "qdrant")) as qdrant:  # the directory is free
        again = cache_on(qdrant)
        found = await asyncio.gather(*(again.lookup(scope(job), "quiz: default") for job in range(JOBS)))  # fmt: skip
        assert found == [answer(job) for job in range(JOBS)]


async def test_a_job_reads_its_own_write_while_other_jobs_write():
    qdrant = ThreadedLocalQdrant(":memory:")
    try:
        await qdrant.create_collection(
            "c", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
        )

        async def job(n: int) -> int:
            await qdrant.upsert("c", points=[models.PointStruct(id=n, vector=[1.0, n], payload={})])
            (point,) = await qdrant.retrieve("c", ids=[n])
            return int(point.id)

        assert await asyncio.gather(*(job(n) for n in range(JOBS))) == list(range(JOBS))
    finally:
        await qdrant.close()


async def test_errors_arrive_as_the_local_clients_own_and_a_closed_client_refuses(
    tmp_path: Path,
):
    qdrant = ThreadedLocalQdrant(str(tmp_path / "qdrant"))
    with pytest.raises(ValueError, match="Collection missing not found"):
        await qdrant.get_collection("missing")
    await qdrant.close()
    await qdrant.close()  # twice is fine, as for the plain client
    with pytest.raises(RuntimeError, match="closed"):
        await qdrant.collection_exists("missing")
    assert local_threads() == []


WRITER = """
import asyncio, sys
from qdrant_client import models
from services.ai.local_qdrant import ThreadedLocalQdrant

async def main() -> None:
    qdrant = ThreadedLocalQdrant(sys.argv[1])
    await qdrant.create_collection(
        "c", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    for n in range(64):
        await qdrant.upsert("c", points=[models.PointStruct(id=n, vector=[1.0, n], payload={})])
    print("written", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.server
def test_entries_written_before_the_process_is_killed_are_there_after_a_restart(tmp_path: Path):
    """Commits go to SQLite's write-ahead log without waiting for the disk: a killed
    process (kill -9, no close) must still lose none of them."""
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "qdrant")], stdout=subprocess.PIPE
    ) as writer:
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline() == b"written\n"
        finally:
            writer.kill()

    async def count() -> int:
        qdrant = ThreadedLocalQdrant(str(tmp_path / "qdrant"))
        try:
            return (await qdrant.count("c")).count
        finally:
            await qdrant.close()

    assert asyncio.run(count()) == 64
    with contextlib.closing(
        sqlite3.connect(tmp_path / "qdrant" / "collection" / "c" / "storage.sqlite")
    ) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
