"""A running service's start-up heap is out of the collector's full passes.

What a caller notices is the tail latency: a full collection walking the whole heap
stopped the loop for ~50 ms (services/runtime/startup_heap.py). What can be checked
without timing it: while the app runs, what start-up built (the app, its open
resources) is frozen, a full collection leaves it alone, and stopping the app hands it
back to the collector.
"""

from __future__ import annotations

import gc

import pytest
from litestar.testing import AsyncTestClient
from service_harness import settings_for

from services.auth.app import create_app

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]


def _in_collected_generations(target: object) -> bool:
    return any(candidate is target for candidate in gc.get_objects())


async def test_start_up_objects_are_frozen_while_serving_and_thawed_after(core_db: str) -> None:
    app = create_app(settings_for(core_db))
    async with AsyncTestClient(app) as client:
        resources = app.state.resources
        assert gc.get_freeze_count() > 0
        gc.collect()  # a full pass, as under load
        assert not _in_collected_generations(resources), "the collector still walks it"
        assert (await client.get("/health/ready")).status_code == 200
        made_after_start_up = [object()]
        assert _in_collected_generations(made_after_start_up)
    assert gc.get_freeze_count() == 0
    assert _in_collected_generations(resources)
