"""What a running service holds: its settings, pools and token issuer.

Created and closed by the app's lifespan (`services.common.app`), handed to handlers by
dependency injection under the name `resources`. Nothing here exists at import time.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.common.cache import Redis, open_redis
from services.common.database import Databases
from services.common.settings import ServiceSettings
from services.common.tokens import TokenIssuer

__all__ = ["Resources", "open_resources"]


@dataclass(frozen=True)
class Resources:
    """The live clients of one app instance."""

    settings: ServiceSettings
    databases: Databases
    redis: Redis
    tokens: TokenIssuer


@asynccontextmanager
async def open_resources(settings: ServiceSettings) -> AsyncIterator[Resources]:
    """Open the pools (the writer must answer), yield them, and close them on the way out."""
    databases = Databases(settings)
    redis = open_redis(settings)
    try:
        await databases.open()
        yield Resources(settings, databases, redis, TokenIssuer(settings))
    finally:
        await redis.aclose()
        await databases.close()
