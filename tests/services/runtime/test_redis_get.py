"""The hot path's pipelined GET against the machine's Redis: order, misses, failures."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from service_harness import REDIS_URL

from services.runtime.redis_get import PipelinedGet, RedisGetFailed

pytestmark = [pytest.mark.anyio, pytest.mark.server]


async def test_concurrent_gets_each_get_their_own_value(redis_client: redis.Redis) -> None:
    values = {f"k{i}".encode(): f"value {i}".encode() * (i % 7 + 1) for i in range(500)}
    redis_client.mset(values)
    client = PipelinedGet(REDIS_URL, timeout=1.0)
    try:
        keys = [*values, b"never-set"]
        got = await asyncio.gather(*(client.get(key) for key in keys))
    finally:
        await client.aclose()
    assert got == [*values.values(), None]


async def test_it_reads_the_database_the_url_names(redis_client: redis.Redis) -> None:
    redis_client.set(b"only-in-this-db", b"here")
    other = REDIS_URL.rsplit("/", 1)[0] + "/0"
    in_url_db, elsewhere = PipelinedGet(REDIS_URL, timeout=1.0), PipelinedGet(other, timeout=1.0)
    try:
        assert await in_url_db.get(b"only-in-this-db") == b"here"
        if other != REDIS_URL:
            assert await elsewhere.get(b"only-in-this-db") is None
    finally:
        await in_url_db.aclose()
        await elsewhere.aclose()


async def test_an_error_reply_fails_only_its_own_get(redis_client: redis.Redis) -> None:
    redis_client.rpush(b"a-list", b"x")
    redis_client.set(b"a-string", b"fine")
    client = PipelinedGet(REDIS_URL, timeout=1.0)
    try:
        wrong, right = await asyncio.gather(
            client.get(b"a-list"), client.get(b"a-string"), return_exceptions=True
        )
        assert isinstance(wrong, RedisGetFailed)
        assert "WRONGTYPE" in str(wrong)
        assert right == b"fine"
    finally:
        await client.aclose()


async def test_a_killed_connection_is_replaced_on_the_next_get(redis_client: redis.Redis) -> None:
    redis_client.set(b"key", b"v1")
    client = PipelinedGet(REDIS_URL, timeout=1.0)
    try:
        assert await client.get(b"key") == b"v1"
        own = redis_client.client_id()
        db = str(redis_client.connection_pool.connection_kwargs.get("db", 0))
        # Only this test's connection: the Redis server is shared with other databases' users.
        clients: list[dict[str, str]] = redis_client.client_list()  # type: ignore[assignment]
        ours = [c for c in clients if c["db"] == db and c["cmd"] == "get"]
        assert ours
        for connection in ours:
            if int(connection["id"]) != own:
                redis_client.client_kill_filter(_id=connection["id"])
        await asyncio.sleep(0.05)  # the close reaches the client
        redis_client.set(b"key", b"v2")
        assert await client.get(b"key") == b"v2"
    finally:
        await client.aclose()


async def test_an_unreachable_redis_fails_fast_and_is_not_retried_per_request() -> None:
    client = PipelinedGet("redis://127.0.0.1:1/0", timeout=1.0)  # nothing listens on port 1
    try:
        started = time.monotonic()
        with pytest.raises(RedisGetFailed):
            await client.get(b"key")
        with pytest.raises(RedisGetFailed, match="a moment ago"):
            await client.get(b"key")
        assert time.monotonic() - started < 1.0
    finally:
        await client.aclose()
