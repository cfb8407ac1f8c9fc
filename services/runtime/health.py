"""Liveness and readiness, the same on every service.

`/health/live` does no I/O: it fails only when the process cannot answer at all, so a slow
database never gets healthy pods restarted. `/health/ready` checks what a request needs
(the writer pool and Redis) and answers 503 while either is down, so Kubernetes stops
routing to the pod until it recovers. Replicas are reported but not required: reads fall
back to the writer.
"""

from collections.abc import Awaitable
from typing import Any, cast

import msgspec
import redis.exceptions
from litestar import Request, Response, get
from litestar.di import NamedDependency

from services.runtime.errors import problem_response
from services.runtime.resources import Resources

__all__ = ["Liveness", "health_handlers"]


class Liveness(msgspec.Struct, frozen=True):
    """The process answers."""

    status: str


@get(
    "/health/live",
    operation_id="health_live",
    tags=["health"],
    summary="Liveness: the process answers",
    sync_to_thread=False,
)
def live() -> Liveness:
    """No I/O on purpose."""
    return Liveness(status="ok")


@get(
    "/health/ready",
    operation_id="health_ready",
    tags=["health"],
    summary="Readiness: the database writer and Redis answer",
)
async def ready(
    request: Request[Any, Any, Any], resources: NamedDependency[Resources]
) -> Response[Any]:
    """200 with each check when the pod can serve, 503 problem+json naming what is down."""
    checks = await resources.databases.check()
    try:
        checks["redis"] = bool(await cast("Awaitable[bool]", resources.redis.ping()))
    except (redis.exceptions.RedisError, OSError):
        checks["redis"] = False
    required = ("writer", "redis")
    down = [name for name in required if not checks.get(name)]
    if down:
        return problem_response(
            request,
            status=503,
            title="Service unavailable",
            detail=f"Not ready: {', '.join(down)} unavailable",
            headers={"Retry-After": "5"},
            extensions={"checks": checks},
        )
    return Response({"status": "ready", "checks": checks})


health_handlers = [live, ready]
