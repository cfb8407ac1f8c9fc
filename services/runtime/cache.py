"""The Redis client, owned by the app's lifespan.

ElastiCache runs Redis in cluster mode (shards), which needs the cluster client; locally a
single server does. Both expose the same single-key commands, the only ones the services
use, so callers never know which one they hold. Timeouts are short: a slow cache must
degrade to the database, not stall the request.
"""

from typing import Any

import redis.asyncio
import redis.asyncio.cluster

from services.runtime.settings import DataSettings

__all__ = ["TIMEOUT_SECONDS", "Redis", "open_redis"]

Redis = redis.asyncio.Redis
TIMEOUT_SECONDS = 1.0


def open_redis(settings: DataSettings) -> Redis:
    """A client for `REDIS_URL`; connections open lazily, on the first command."""
    options: dict[str, Any] = {
        "socket_timeout": TIMEOUT_SECONDS,
        "socket_connect_timeout": TIMEOUT_SECONDS,
        "decode_responses": False,
    }
    if settings.redis_cluster:
        # Same single-key command surface; the services use nothing else.
        return redis.asyncio.cluster.RedisCluster.from_url(settings.redis_url, **options)  # type: ignore[return-value]
    return redis.asyncio.Redis.from_url(settings.redis_url, health_check_interval=30, **options)
