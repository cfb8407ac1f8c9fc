"""What a running process holds: its pools, and for a service its settings and token issuer.

Created and closed by the app's lifespan (`services.runtime.app`) or the worker's run
loop, handed to handlers by dependency injection under the name `resources`. Nothing here
exists at import time. A worker serves no clients: it opens `DataPools` alone, from its
`DataSettings`, and never holds a token key.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.runtime.cache import Redis, open_redis
from services.runtime.database import Databases
from services.runtime.settings import DataSettings, ServiceSettings
from services.runtime.tokens import TokenIssuer

__all__ = ["DataPools", "RedisFactory", "Resources", "open_data_pools", "open_resources"]

RedisFactory = Callable[[DataSettings], Redis]
"""Makes the Redis client from the settings; `open_redis` unless a test hands in its own."""


@dataclass(frozen=True)
class DataPools:
    """The database pools and the Redis client of one process."""

    databases: Databases
    redis: Redis


@dataclass(frozen=True)
class Resources:
    """The live clients of one app instance."""

    settings: ServiceSettings
    databases: Databases
    redis: Redis
    tokens: TokenIssuer


@asynccontextmanager
async def open_data_pools(
    settings: DataSettings, *, open_cache: RedisFactory = open_redis
) -> AsyncIterator[DataPools]:
    """Open the pools (the writer must answer), yield them, and close them on the way out.

    `open_cache` exists so a test can put a client that fails on cue in front of the real
    Redis, and watch what the process does about it.
    """
    databases = Databases(settings)
    redis = open_cache(settings)
    try:
        await databases.open()
        yield DataPools(databases, redis)
    finally:
        await redis.aclose()
        await databases.close()


@asynccontextmanager
async def open_resources(
    settings: ServiceSettings, *, open_cache: RedisFactory = open_redis
) -> AsyncIterator[Resources]:
    """The data pools of a service, with its settings and token issuer."""
    async with open_data_pools(settings, open_cache=open_cache) as pools:
        yield Resources(settings, pools.databases, pools.redis, TokenIssuer(settings))
