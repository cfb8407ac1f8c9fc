"""The fast lane of `GET /auth/me`: the cached profile answered before the router, and
every token the handler refuses still refused there, in the one error shape.

Real PostgreSQL and Redis.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio.to_thread
import httpx
import pytest
from fast_lane_harness import route_answers, served_fixture
from hand_made_tokens import signed_token, tampered
from litestar import Litestar
from service_harness import JWT_SECRET, settings_for

from services.auth.app import create_app
from services.auth.fast_reads import auth_fast_routes
from services.auth.profiles import profile_key
from services.runtime.hot_path import FastRequest
from services.runtime.settings import ServiceSettings
from services.runtime.tokens import Principal, TokenIssuer

pytestmark = [pytest.mark.anyio, pytest.mark.server, pytest.mark.usefixtures("redis_client")]
PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(core_db: str) -> ServiceSettings:
    return settings_for(core_db)


served = served_fixture(create_app)


async def signed_in(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    registered = await client.post(
        "/auth/register",
        json={"email": "ann@example.com", "password": PASSWORD, "display_name": "Ann"},
    )
    assert registered.status_code == 201, registered.text
    login = await client.post(
        "/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
    )
    return registered.json(), login.json()["access_token"]


async def lane_answers(client: Any, app: Litestar, authorization: str) -> Any:
    """What the fast route answers (None: it hands over to Litestar), on the app's loop."""
    route = auth_fast_routes(app).exact["/auth/me"]
    request = FastRequest("/auth/me", {b"authorization": authorization.encode()}, {})
    return await route_answers(client, route, request)


async def test_the_cached_profile_is_answered_by_the_lane_as_the_handler_answers_it(
    served, redis_client
) -> None:
    client, app = served
    profile, token = await signed_in(client)
    answer = await lane_answers(client, app, f"Bearer {token}")
    assert answer is not None
    assert answer.status == 200
    fast = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert fast.status_code == 200
    assert fast.content == answer.body
    assert fast.json() == profile
    assert fast.headers["content-type"] == "application/json"
    assert fast.headers["x-request-id"]

    # The same read through the handler: a corrupt entry is not the lane's to serve.
    key = profile_key(uuid.UUID(profile["id"]))
    redis_client.set(key, b"not a cached profile")
    assert await lane_answers(client, app, f"Bearer {token}") is None
    routed = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert routed.status_code == 200
    assert routed.content == fast.content
    assert routed.headers["content-type"] == fast.headers["content-type"]
    assert routed.headers["content-length"] == fast.headers["content-length"]


def _expiring_token(settings: ServiceSettings, user_id: str, *, in_seconds: float) -> str:
    """A valid token whose expiry, leeway included, is `in_seconds` away."""
    issuer = TokenIssuer(settings)
    issued = time.time() - settings.jwt_ttl_seconds - 5 + in_seconds
    principal = Principal(user_id=uuid.UUID(user_id), role="student")
    return issuer.issue(principal, now=issued)


async def test_bad_expired_and_forged_tokens_get_the_one_401(served, settings) -> None:
    client, app = served
    profile, token = await signed_in(client)
    assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).is_success
    forged = signed_token(profile["id"], "student", key="another-secret-" + "y" * 40, valid_for=600)
    expired = _expiring_token(settings, profile["id"], in_seconds=-1)
    for authorization in (
        None,
        "Basic abc",
        "Bearer not.a.token",
        f"Bearer {tampered(token)}",
        f"Bearer {forged}",
        f"Bearer {expired}",
    ):
        headers = {} if authorization is None else {"Authorization": authorization}
        if authorization is not None:
            assert await lane_answers(client, app, authorization) is None
        response = await client.get("/auth/me", headers=headers)
        assert response.status_code == 401, authorization
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 401
        assert problem["title"]
        assert problem["request_id"] == response.headers["x-request-id"]
    assert JWT_SECRET not in forged


async def test_a_token_the_lane_has_verified_is_refused_once_it_expires(served, settings) -> None:
    client, app = served
    profile, _ = await signed_in(client)
    token = _expiring_token(settings, profile["id"], in_seconds=1.5)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/auth/me", headers=headers)).status_code == 200
    assert await lane_answers(client, app, f"Bearer {token}") is not None
    await anyio.sleep(2)
    assert await lane_answers(client, app, f"Bearer {token}") is None
    late = await client.get("/auth/me", headers=headers)
    assert late.status_code == 401
    assert "expired" in late.json()["detail"]


async def test_a_profile_edit_is_read_at_once(served) -> None:
    client, _ = served
    _, token = await signed_in(client)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/auth/me", headers=headers)).json()["bio"] == ""
    edited = await client.patch("/auth/me", json={"bio": "edited"}, headers=headers)
    assert edited.status_code == 200
    assert (await client.get("/auth/me", headers=headers)).json()["bio"] == "edited"


async def test_other_auth_routes_go_to_litestar(served) -> None:
    client, _ = served
    await signed_in(client)
    assert (await client.get("/auth/me/")).status_code in {401, 404}
    assert (await client.post("/auth/logout", json={"refresh_token": "x" * 20})).status_code == 204
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200
