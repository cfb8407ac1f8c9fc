"""The fast lane's GET on a real Redis Cluster: routing by slot, resharding, a lost node.

Three password-protected primaries started from the machine's redis-server
(tests/redis_cluster.py); values are written with redis-py's cluster client, as the app
writes them, and read back with `PipelinedClusterGet`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio
from redis.crc import key_slot
from redis_cluster import Cluster, running_cluster

from services.runtime.redis_cluster_get import PipelinedClusterGet
from services.runtime.redis_get import (
    ClientGet,
    PipelinedGet,
    RedisGetFailed,
    open_cached_get,
)
from services.runtime.settings import DataSettings

pytestmark = pytest.mark.anyio

_REFRESH_WAIT_SECONDS = 3.0
"""How long a test waits for the slot map to be read again (RETRY_AFTER_SECONDS is 1)."""


@pytest.fixture
def cluster(redis_cluster: Cluster) -> Iterator[Cluster]:
    """The session's cluster, emptied after the test."""
    yield redis_cluster
    redis_cluster.flush()


def _write(cluster: Cluster, values: dict[bytes, bytes]) -> None:
    with cluster.client() as client:
        for key, value in values.items():
            client.set(key, value)


async def _get_after_refresh(client: PipelinedClusterGet, key: bytes) -> bytes | None:
    """GET `key` until the client stops failing it (its slot map has been read again)."""
    deadline = time.monotonic() + _REFRESH_WAIT_SECONDS
    while True:
        try:
            return await client.get(key)
        except RedisGetFailed:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_it_reads_keys_on_every_shard_and_a_course_key(cluster: Cluster) -> None:
    course = f"course:{{{uuid.uuid4()}}}:detail".encode()
    values = {
        cluster.key_on(port, f"shard{port}-"): f"from {port}".encode() for port in cluster.ports
    }
    values[course] = b'{"title": "Cluster course"}'
    _write(cluster, values)
    assert len({cluster.owner(key_slot(key)) for key in values}) == 3  # all three shards
    client = PipelinedClusterGet(cluster.url, timeout=1.0)
    try:
        keys = [*values, b"never-set"]
        got = await asyncio.gather(*(client.get(key) for key in keys))
    finally:
        await client.aclose()
    assert got == [*values.values(), None]


async def test_a_moved_slot_fails_one_get_then_reads_from_its_new_owner(cluster: Cluster) -> None:
    key = cluster.key_on(cluster.ports[0], "moving-")
    _write(cluster, {key: b"still here"})
    client = PipelinedClusterGet(cluster.url, timeout=1.0)
    try:
        assert await client.get(key) == b"still here"  # the map now says ports[0]
        cluster.move_slot(key_slot(key), cluster.ports[1], finish=True)
        with pytest.raises(RedisGetFailed, match="MOVED"):
            await client.get(key)
        assert await _get_after_refresh(client, key) == b"still here"
    finally:
        await client.aclose()
    assert cluster.owner(key_slot(key)) == cluster.ports[1]


async def test_a_slot_being_migrated_fails_its_gets_until_it_has_moved(cluster: Cluster) -> None:
    key = cluster.key_on(cluster.ports[1], "migrating-")
    _write(cluster, {key: b"in transit"})
    client = PipelinedClusterGet(cluster.url, timeout=1.0)
    try:
        assert await client.get(key) == b"in transit"
        slot = key_slot(key)
        cluster.move_slot(slot, cluster.ports[2], finish=False)
        with pytest.raises(RedisGetFailed, match="ASK"):
            await client.get(key)
        cluster.finish_move(slot, cluster.ports[2])
        assert await _get_after_refresh(client, key) == b"in transit"
    finally:
        await client.aclose()


@pytest.mark.server  # starts a cluster of its own: it kills one of its nodes
async def test_a_killed_primary_fails_its_gets_at_once_and_not_the_others(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path) as cluster:
        victim, survivor = cluster.ports[2], cluster.ports[1]
        lost, kept = cluster.key_on(victim, "lost-"), cluster.key_on(survivor, "kept-")
        _write(cluster, {lost: b"gone", kept: b"kept"})
        client = PipelinedClusterGet(cluster.url, timeout=2.0)
        try:
            assert await client.get(lost) == b"gone"  # its connection is open
            cluster.processes[victim].kill()
            cluster.processes[victim].wait()
            started = time.monotonic()
            with pytest.raises(RedisGetFailed):
                await asyncio.wait_for(client.get(lost), timeout=5.0)
            # Well inside the 2 s timeout: the lost connection says so, nothing waits it out.
            assert time.monotonic() - started < 1.0
            assert await client.get(kept) == b"kept"
        finally:
            await client.aclose()


def _settings(redis_url: str, *, cluster: bool) -> DataSettings:
    return DataSettings(
        database_url="postgresql://app@127.0.0.1:5432/test",
        redis_url=redis_url,
        redis_cluster=cluster,
    )


async def test_open_cached_get_picks_the_client_for_the_settings() -> None:
    app_client = redis.asyncio.Redis()  # never connects: no GET is sent
    single = _settings("redis://127.0.0.1:6379/0", cluster=False)
    cluster = _settings("rediss://:token@clustercfg.example:6379", cluster=True)
    # DataSettings' URL check accepts only redis(s)://; model_copy does not validate, so
    # this is how the unix: branch of open_cached_get can be reached here.
    local = single.model_copy(update={"redis_url": "unix:///run/redis.sock"})
    opened = [open_cached_get(s, app_client) for s in (single, cluster, local)]
    try:
        assert [type(get) for get in opened] == [PipelinedGet, PipelinedClusterGet, ClientGet]
    finally:
        for get in opened:
            await get.aclose()
        await app_client.aclose()
