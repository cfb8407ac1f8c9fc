"""The fast lane's tests: a service's app on the test client, and what a fast route answers.

A fast route runs inside the app, on the event loop where the app's lifespan opened its
Redis connection; a test calls it there, through the test client's portal, and compares
its answer with what the handler behind it answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from services.runtime.hot_path import Answer, FastRequest, FastRoute
from services.runtime.settings import ServiceSettings

__all__ = ["Served", "route_answers", "served_fixture"]

Served = tuple[AsyncTestClient[Litestar], Litestar]
"""The test client, and the app behind it (whose fast routes a test calls)."""


def served_fixture(create_app: Callable[[ServiceSettings], Litestar]) -> Any:
    """A module's `served` fixture: `create_app(settings)` on a test client, with the app.

    `settings` is the module's own fixture. Use: `served = served_fixture(create_app)`.
    """

    @pytest.fixture
    async def served(settings: ServiceSettings) -> AsyncIterator[Served]:
        app = create_app(settings)
        async with AsyncTestClient(app) as client:
            yield client, app

    return served


async def route_answers(client: Any, route: FastRoute, request: FastRequest) -> Answer | None:
    """What `route` answers (None: it hands over to Litestar), on the test client's loop."""
    answer: Answer | None = await anyio.to_thread.run_sync(
        client.blocking_portal.call, route, request
    )
    return answer
