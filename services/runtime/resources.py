"""What a running service holds: its settings, pools and token issuer.

Created and closed by the app's lifespan (`services.runtime.app`), handed to handlers by
dependency injection under the name `resources`. Nothing here exists at import time.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.runtime.cache import Redis, open_redis
from services.runtime.database import Databases
from services.runtime.settings import ServiceSettings
from services.runtime.tokens import TokenIssuer

__all__ = ["RedisFactory", "Resources", "open_resources"]

RedisFactory = Callable[[ServiceSettings], Redis]
"""Makes the Redis client from the settings; `open_redis` unless a test hands in its own."""


@dataclass(frozen=True)
class Resources:
    """The live clients of one app instance."""

    settings: ServiceSettings
    databases: Databases
    redis: Redis
    tokens: TokenIssuer


@asynccontextmanager
async def open_resources(
    settings: ServiceSettings, *, open_cache: RedisFactory = open_redis
) -> AsyncIterator[Resources]:
    """Open the pools (the writer must answer), yield them, and close them on the way out.

    `open_cache` exists so a test can put a client that fails on cue in front of the real
    Redis, and watch what the service does about it.
    """
    databases = Databases(settings)
    redis = open_cache(settings)
    try:
        await databases.open()
        yield Resources(settings, databases, redis, TokenIssuer(settings))
    finally:
        await redis.aclose()
        await databases.close()
