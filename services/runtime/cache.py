"""The Redis client, owned by the app's lifespan.

ElastiCache runs Redis in cluster mode (shards), which needs the cluster client; locally a
single server does. Both expose the same single-key commands, the only ones the services
use, so callers never know which one they hold. Timeouts are short: a slow cache must
degrade to the database, not stall the request.

Every failed command is counted on /metrics (`eduscale_redis_errors`, by command) where
it fails, in the client, so no caller that degrades quietly hides an outage.
"""

from typing import Any

import redis.asyncio
import redis.asyncio.cluster
import redis.exceptions

from services.runtime.metrics import REDIS_FAILURES
from services.runtime.settings import DataSettings

__all__ = ["TIMEOUT_SECONDS", "Redis", "open_redis"]

Redis = redis.asyncio.Redis
TIMEOUT_SECONDS = 1.0


def _counted_failure(args: tuple[Any, ...]) -> None:
    command = args[0] if args else "unknown"
    name = command.decode() if isinstance(command, bytes) else str(command)
    REDIS_FAILURES.labels(name.upper()).inc()


class _CountingRedis(redis.asyncio.Redis):
    """The single-server client, counting failed commands."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)
        except (redis.exceptions.RedisError, OSError):
            _counted_failure(args)
            raise


class _CountingRedisCluster(redis.asyncio.cluster.RedisCluster):
    """The cluster client, counting failed commands."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except (redis.exceptions.RedisError, OSError):
            _counted_failure(args)
            raise


def open_redis(settings: DataSettings) -> Redis:
    """A client for `REDIS_URL`; connections open lazily, on the first command."""
    options: dict[str, Any] = {
        "socket_timeout": TIMEOUT_SECONDS,
        "socket_connect_timeout": TIMEOUT_SECONDS,
        "decode_responses": False,
    }
    if settings.redis_cluster:
        # Same single-key command surface; the services use nothing else.
        return _CountingRedisCluster.from_url(settings.redis_url, **options)  # type: ignore[return-value]
    return _CountingRedis.from_url(settings.redis_url, health_check_interval=30, **options)
