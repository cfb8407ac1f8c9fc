"""What every service gets from `services.runtime`, seen over HTTP: health, CORS, request ids.

The Auth app stands for all of them; they share one `build_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from psycopg.conninfo import conninfo_to_dict
from service_harness import POSTGRES_URL, settings_for

from services.auth.app import create_app
from services.runtime.settings import ServiceSettings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

PROBLEM_JSON = "application/problem+json"
ALLOWED = "https://app.example.com"


@pytest.fixture
def settings(core_db: str) -> ServiceSettings:
    return settings_for(core_db, cors_origins=(ALLOWED,))


@pytest.fixture
async def client(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(create_app(settings)) as client:
        yield client


async def test_live_and_ready_when_everything_answers(client) -> None:
    live = await client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"writer": True, "redis": True}


async def test_with_the_writer_gone_ready_is_503_and_live_stays_200(client, core_db) -> None:
    assert (await client.get("/health/ready")).status_code == 200
    name = conninfo_to_dict(core_db)["dbname"]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        # Ends the pool's sessions too, and no new one can be made.
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == PROBLEM_JSON
    assert ready.headers["retry-after"]
    problem = ready.json()
    assert problem["status"] == 503
    assert problem["checks"] == {"writer": False, "redis": True}
    assert "writer" in problem["detail"]
    # Liveness does no I/O: a database outage must not get the pod restarted.
    assert (await client.get("/health/live")).status_code == 200


async def test_a_problem_document_carries_the_request_id_of_its_response(client) -> None:
    generated = await client.get("/auth/me")
    assert generated.status_code == 401
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    assert generated.headers["x-request-id"]
    given = await client.get("/auth/me", headers={"X-Request-ID": "trace-abc-123"})
    assert given.headers["x-request-id"] == "trace-abc-123"
    assert given.json()["request_id"] == "trace-abc-123"


async def test_a_preflight_from_an_allowed_origin_is_answered(client) -> None:
    preflight = await client.options(
        "/auth/login",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code < 300
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    simple = await client.get("/health/live", headers={"Origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED


async def test_another_origin_is_not_allowed(client) -> None:
    other = "https://evil.example.com"
    preflight = await client.options(
        "/auth/login",
        headers={"Origin": other, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = await client.get("/health/live", headers={"Origin": other})
    assert "access-control-allow-origin" not in simple.headers
