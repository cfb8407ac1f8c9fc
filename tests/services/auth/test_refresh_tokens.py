"""Refresh tokens end to end over HTTP, against the machine's PostgreSQL and Redis.

Login returns one; refreshing spends it and returns its successor; a spent token sent
again ends the whole login; tokens expire; logout and a password change revoke them; of
two refreshes racing with one token exactly one wins. The Argon2id parameters of the
stored password hashes are the documented ones.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from argon2 import extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from litestar.testing import AsyncTestClient
from service_harness import database_url, environment_for, settings_for

from contracts.gateway import DEFAULT_LIMITS
from services.auth import passwords
from services.auth.app import create_app
from services.gateway.app import Gateway
from services.gateway.settings import GatewaySettings
from services.runtime.settings import ServiceSettings, SettingsError

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"
TTL = 7 * 86400


@pytest.fixture
def settings(core_db: str) -> ServiceSettings:
    return settings_for(core_db, refresh_ttl_seconds=TTL)


@pytest.fixture
async def client(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(create_app(settings)) as client:
        await register(client)
        yield client


async def register(client: httpx.AsyncClient, email: str = "ann@example.com") -> Any:
    response = await client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "display_name": "Ann"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def login(client: httpx.AsyncClient, password: str = PASSWORD) -> Any:
    response = await client.post(
        "/auth/login", json={"email": "ann@example.com", "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/auth/me", headers={"Authorization": f"Bearer {access_token}"})


def assert_refused(response: httpx.Response, detail: str = "not valid") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


async def test_login_returns_a_refresh_token_stored_only_as_its_hash(client, core_db) -> None:
    body = await login(client)
    token = body["refresh_token"]
    assert len(token) >= 43  # 256 random bits, URL-safe base64
    assert token != body["access_token"]
    assert body["refresh_expires_in"] == TTL
    stored = rows(
        core_db,
        "SELECT token_hash, expires_at - issued_at, used_at FROM refresh_tokens",
    )
    assert len(stored) == 1
    digest, lifetime, used_at = stored[0]
    assert bytes(digest) == hashlib.sha256(token.encode()).digest()
    assert lifetime.total_seconds() == TTL
    assert used_at is None
    dump = repr(rows(core_db, "SELECT * FROM refresh_tokens")) + repr(
        rows(core_db, "SELECT * FROM refresh_families")
    )
    assert token not in dump


async def test_each_login_is_a_family_of_its_own(client, core_db) -> None:
    first, second = await login(client), await login(client)
    assert first["refresh_token"] != second["refresh_token"]
    assert rows(core_db, "SELECT count(*) FROM refresh_families") == [(2,)]


async def test_a_refresh_spends_the_token_and_returns_its_successor(client, core_db) -> None:
    token = (await login(client))["refresh_token"]
    seen = {token}
    for _ in range(3):
        response = await refresh(client, token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 3600
        assert body["refresh_expires_in"] == TTL
        assert body["refresh_token"] not in seen
        assert (await me(client, body["access_token"])).json()["email"] == "ann@example.com"
        token = body["refresh_token"]
        seen.add(token)
    tokens = rows(core_db, "SELECT used_at IS NOT NULL, family_id FROM refresh_tokens")
    assert sorted(used for used, _ in tokens) == [False, True, True, True]
    assert len({family for _, family in tokens}) == 1


async def test_a_spent_token_sent_again_ends_the_whole_login(client, core_db) -> None:
    other_device = (await login(client))["refresh_token"]
    first = (await login(client))["refresh_token"]
    second = (await refresh(client, first)).json()["refresh_token"]

    assert_refused(await refresh(client, first))  # replayed: someone else holds the chain
    assert_refused(await refresh(client, second))  # so the current token stops working too
    assert rows(
        core_db, "SELECT count(*) FROM refresh_families WHERE revoked_reason = 'reuse'"
    ) == [(1,)]
    # The user's other login is another family: untouched.
    assert (await refresh(client, other_device)).status_code == 200


async def test_unknown_tokens_are_refused(client) -> None:
    await login(client)
    for token in ("x", "A" * 43, "A" * 512):
        assert_refused(await refresh(client, token))


async def test_an_expired_token_is_refused(core_db: str) -> None:
    settings = settings_for(core_db, refresh_ttl_seconds=1)
    async with AsyncTestClient(create_app(settings)) as client:
        await register(client)
        body = await login(client)
        assert body["refresh_expires_in"] == 1
        fresh = (await refresh(client, body["refresh_token"])).json()["refresh_token"]
        await asyncio.sleep(1.2)
        assert_refused(await refresh(client, fresh), "expired")
    # Expiry is not reuse: the login ended quietly, nothing was revoked.
    assert rows(core_db, "SELECT count(*) FROM refresh_families WHERE revoked_at IS NULL") == [(1,)]


async def test_logout_revokes_the_login_and_only_that_login(client) -> None:
    kept = (await login(client))["refresh_token"]
    token = (await login(client))["refresh_token"]
    current = (await refresh(client, token)).json()["refresh_token"]

    response = await client.post("/auth/logout", json={"refresh_token": current})
    assert response.status_code == 204
    assert response.content == b""
    assert_refused(await refresh(client, current))
    assert (await refresh(client, kept)).status_code == 200
    # Unknown or already revoked tokens get the same answer: nothing to learn from it.
    for token_again in (current, "not a token"):
        again = await client.post("/auth/logout", json={"refresh_token": token_again})
        assert again.status_code == 204


async def test_a_password_change_ends_every_login_and_starts_one(client) -> None:
    laptop, phone = await login(client), await login(client)
    headers = {"Authorization": f"Bearer {laptop['access_token']}"}

    wrong = await client.post(
        "/auth/password",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert wrong.status_code == 403, wrong.text
    assert (await refresh(client, phone["refresh_token"])).status_code == 200  # nothing changed
    phone = await login(client)

    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert_refused(await refresh(client, laptop["refresh_token"]))
    assert_refused(await refresh(client, phone["refresh_token"]))
    assert (await refresh(client, changed.json()["refresh_token"])).status_code == 200
    old = await client.post("/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    assert old.status_code == 401
    assert (await login(client, NEW_PASSWORD))["refresh_token"]


async def test_a_password_change_needs_an_access_token_and_a_valid_new_password(
    client,
) -> None:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password", json=body)).status_code == 401
    refresh_token = (await login(client))["refresh_token"]
    as_bearer = {"Authorization": f"Bearer {refresh_token}"}  # the wrong kind of token
    assert (await client.post("/auth/password", json=body, headers=as_bearer)).status_code == 401
    access = {"Authorization": f"Bearer {(await login(client))['access_token']}"}
    short = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=access,
    )
    assert short.status_code == 422
    assert [error["field"] for error in short.json()["errors"]] == ["new_password"]


async def test_wrong_current_passwords_count_as_failed_logins(core_db: str) -> None:
    settings = settings_for(core_db, login_max_failures=2, login_lockout_seconds=60)
    async with AsyncTestClient(create_app(settings)) as client:
        await register(client)
        headers = {"Authorization": f"Bearer {(await login(client))['access_token']}"}
        guess = {"current_password": "guess number one", "new_password": NEW_PASSWORD}
        statuses = [
            (await client.post("/auth/password", json=guess, headers=headers)).status_code
            for _ in range(3)
        ]
        locked = await client.post(
            "/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
        )
    assert statuses == [403, 403, 429]
    assert locked.status_code == 429


async def _waiting_on_locks(url: str, count: int) -> None:
    """Return once `count` other sessions of this database wait on a row lock."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(500):
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            row = await cursor.fetchone()
            if row is not None and row[0] >= count:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"{count} refreshes never waited on the token's row together")


@pytest.fixture
async def concurrent_client(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on this test's event loop, so requests really run at the same time.

    Litestar's AsyncTestClient runs the app on a portal thread and blocks the calling loop
    for each request, which serialises them (and would deadlock with a lock held here).
    """
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type] # Litestar types ASGI narrower
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://auth.local") as client,
    ):
        await register(client)
        yield client


@pytest.mark.parametrize("racers", [2, 5])
async def test_of_concurrent_refreshes_with_one_token_exactly_one_wins(
    concurrent_client, core_db: str, racers: int
) -> None:
    client = concurrent_client
    token = (await login(client))["refresh_token"]
    digest = hashlib.sha256(token.encode()).digest()
    # Hold the token's row, so every refresh is inside its UPDATE, waiting, at the same time;
    # then let them all go at once.
    async with await psycopg.AsyncConnection.connect(core_db) as holder:
        await holder.execute(
            "SELECT 1 FROM refresh_tokens WHERE token_hash = %s FOR UPDATE", (digest,)
        )
        attempts = [asyncio.ensure_future(refresh(client, token)) for _ in range(racers)]
        await _waiting_on_locks(core_db, racers)
        await holder.rollback()
        responses = await asyncio.gather(*attempts)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * (racers - 1)
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert rows(core_db, "SELECT count(*) FROM refresh_tokens") == [(2,)]  # one successor
    # The losers presented a spent token: the login ends, the winner's successor with it.
    assert_refused(await refresh(client, winner["refresh_token"]))


async def test_stored_hashes_use_the_documented_parameters(client, core_db) -> None:
    (stored,) = rows(core_db, "SELECT password_hash FROM users")
    parameters = extract_parameters(stored[0])
    assert parameters == RFC_9106_LOW_MEMORY  # what the module's docstring claims
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (
        passwords.TIME_COST,
        passwords.MEMORY_COST_KIB,
        passwords.PARALLELISM,
    )
    assert (parameters.salt_len, parameters.hash_len) == (passwords.SALT_LEN, passwords.HASH_LEN)
    # At least OWASP's floor (m=19 MiB, t=2) in memory x passes.
    assert parameters.memory_cost * parameters.time_cost >= 19 * 1024 * 2
    # A changed password is hashed the same way.
    headers = {"Authorization": f"Bearer {(await login(client))['access_token']}"}
    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200
    (restored,) = rows(core_db, "SELECT password_hash FROM users")
    assert restored[0] != stored[0]
    assert extract_parameters(restored[0]) == RFC_9106_LOW_MEMORY


def test_refresh_ttl_seconds_is_read_from_the_environment() -> None:
    environ = environment_for(database_url("never_opened"))
    assert ServiceSettings.from_env(environ).refresh_ttl_seconds == 30 * 86400
    read = ServiceSettings.from_env({**environ, "REFRESH_TTL_SECONDS": "86400"})
    assert read.refresh_ttl_seconds == 86400
    with pytest.raises(SettingsError, match="REFRESH_TTL_SECONDS"):
        ServiceSettings.from_env({**environ, "REFRESH_TTL_SECONDS": "10"})


def test_every_auth_path_is_routed_to_auth_under_the_strict_limit() -> None:
    document = create_app(settings_for(database_url("never_opened"))).openapi_schema
    paths = [path for path in document.to_schema()["paths"] if path.startswith("/auth/")]
    assert {"/auth/refresh", "/auth/logout", "/auth/password"} <= set(paths)
    upstreams = {"auth": "http://a", "course": "http://c", "ai-orchestrator": "http://ai"}
    gateway = Gateway(GatewaySettings(upstreams=upstreams))
    for path in paths:
        policy = gateway.route_for(path)
        assert policy is not None, path
        assert policy.service == "auth"
        assert policy.requests_per_minute == DEFAULT_LIMITS.strict_requests_per_minute


def test_the_new_operations_are_documented() -> None:
    document = create_app(settings_for(database_url("never_opened"))).openapi_schema.to_schema()
    operations = {
        operation["operationId"]: (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for name, path in (
        ("refresh", "/auth/refresh"),
        ("logout", "/auth/logout"),
        ("change_password", "/auth/password"),
    ):
        method, documented_path, operation = operations[name]
        assert (method, documented_path) == ("POST", path)
        assert "requestBody" in operation
    login_response = operations["login"][2]["responses"]["200"]["content"]["application/json"]
    schema = login_response["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert {"refresh_token", "refresh_expires_in"} <= set(schema["required"])
    assert "204" in operations["logout"][2]["responses"]
