"""The Auth service end to end over HTTP, against the machine's PostgreSQL and Redis."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import msgspec
import psycopg
import pytest
import redis
import redis.asyncio
import structlog
import structlog.testing
import structlog.typing
from hand_made_tokens import signed_token, tampered
from litestar.testing import AsyncTestClient
from service_harness import JWT_SECRET, environment_for, settings_for

from services.auth.app import create_app
from services.auth.profiles import ProfileStore, profile_key
from services.auth.schemas import UserProfile
from services.auth.users import VersionedProfile
from services.runtime.access_log import access_log
from services.runtime.database import Databases
from services.runtime.settings import DataSettings, ServiceSettings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(core_db: str) -> ServiceSettings:
    return settings_for(core_db, login_max_failures=3, login_lockout_seconds=60)


@pytest.fixture
async def client(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(create_app(settings)) as client:
        yield client


async def register(client, email="ann@example.com", role="student", name="Ann") -> Any:
    response = await client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": name, "role": role},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def login(client, email="ann@example.com", password=PASSWORD) -> Any:
    return await client.post("/auth/login", json={"email": email, "password": password})


async def token_for(client, email="ann@example.com") -> Any:
    response = await login(client, email)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_login_me_journey(client) -> None:
    created = await register(client, email="Ann@Example.com")
    assert created["email"] == "Ann@example.com"  # domain normalised, local part kept
    assert created["role"] == "student"
    assert set(created) == {"id", "email", "display_name", "role", "bio", "avatar_url"}

    response = await login(client, "ANN@example.com")  # any letter case logs in
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600

    me = await client.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == created


async def test_jwt_ttl_seconds_sets_the_token_lifetime(core_db: str) -> None:
    settings = ServiceSettings.from_env({**environment_for(core_db), "JWT_TTL_SECONDS": "120"})
    async with AsyncTestClient(create_app(settings)) as client:
        await register(client)
        before = time.time()
        body = (await login(client)).json()
    assert body["expires_in"] == 120
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], audience="eduscale")
    assert claims["exp"] - claims["iat"] == 120
    assert before + 120 - 5 <= claims["exp"] <= time.time() + 120 + 5


async def test_instructors_register_as_such(client) -> None:
    created = await register(client, email="ivy@example.com", role="instructor")
    assert created["role"] == "instructor"
    claims = jwt.decode(
        await token_for(client, "ivy@example.com"),
        JWT_SECRET,
        algorithms=["HS256"],
        audience="eduscale",
    )
    assert claims["role"] == "instructor"
    assert claims["sub"] == created["id"]


async def test_duplicate_email_in_any_case_is_a_conflict(client) -> None:
    await register(client, email="bob@example.com")
    response = await client.post(
        "/auth/register",
        json={"email": "BOB@EXAMPLE.COM", "password": PASSWORD, "display_name": "Bob"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "display_name": "A"}, "email"),
        ({"email": "a@example.com", "password": "short", "display_name": "A"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": ""}, "display_name"),
        (
            {"email": "a@example.com", "password": PASSWORD, "display_name": "A", "role": "admin"},
            "role",
        ),
        (
            {"email": "a@example.com", "password": PASSWORD, "display_name": "A", "admin": True},
            "admin",
        ),
        ({"email": 7, "password": PASSWORD, "display_name": "A"}, "email"),
    ],
)
async def test_bad_registrations_are_422_naming_the_field(client, body, field) -> None:
    response = await client.post("/auth/register", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["status"] == 422
    assert [error["field"] for error in problem["errors"]] == [field]


async def test_unknown_email_and_wrong_password_look_the_same(client) -> None:
    await register(client)
    unknown = await login(client, "nobody@example.com")
    wrong = await login(client, password="wrong password here")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]
    assert unknown.headers["www-authenticate"].startswith("Bearer")


async def test_repeated_failures_throttle_the_account(client) -> None:
    await register(client)
    for _ in range(3):  # login_max_failures=3
        assert (await login(client, password="wrong password here")).status_code == 401
    locked = await login(client)  # even the right password, while locked
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 60
    # Another account is not affected.
    await register(client, email="other@example.com")
    assert (await login(client, "other@example.com")).status_code == 200


async def test_a_success_clears_earlier_failures(client) -> None:
    await register(client)
    for _ in range(2):
        await login(client, password="wrong password here")
    assert (await login(client)).status_code == 200
    for _ in range(2):
        await login(client, password="wrong password here")
    assert (await login(client)).status_code == 200


async def test_passwords_are_hashed_and_never_returned_or_logged(
    core_db: str, caplog, capsys
) -> None:
    # DEBUG, so no event a careless change might add is filtered out before the capture.
    app = create_app(settings_for(core_db, log_level="DEBUG"))
    caplog.set_level(logging.DEBUG)
    capture: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.format_exc_info,
    ]
    with structlog.testing.capture_logs(processors=capture) as events:
        async with AsyncTestClient(app) as client:
            registered = await client.post(
                "/auth/register",
                json={"email": "ann@example.com", "password": PASSWORD, "display_name": "Ann"},
            )
            accepted = await login(client)
            refused = await login(client, password="another wrong guess")
    assert (registered.status_code, accepted.status_code, refused.status_code) == (201, 200, 401)
    access_log.flush()
    printed = capsys.readouterr().out
    paths = [json.loads(line).get("path") for line in printed.splitlines()]
    assert paths.count("/auth/login") == 2  # the capture sees the service's access lines
    with psycopg.connect(core_db) as conn:
        row = conn.execute(
            "SELECT password_hash FROM users WHERE id = %s", (registered.json()["id"],)
        ).fetchone()
    assert row is not None
    (stored,) = row
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    for response in (registered, accepted, refused):
        assert PASSWORD not in response.text
    logged = repr(events) + caplog.text + printed
    assert PASSWORD not in logged
    assert "another wrong guess" not in logged


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not.a.token"},
    ],
)
@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_me_needs_a_valid_token(client, headers, method) -> None:
    await register(client)
    body = {"bio": "written without a token"} if method == "PATCH" else None
    response = await client.request(method, "/auth/me", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_expired_and_tampered_tokens_are_refused(client) -> None:
    created = await register(client)
    token = await token_for(client)
    assert (await client.get("/auth/me", headers=bearer(tampered(token)))).status_code == 401
    forged = signed_token(
        created["id"], "instructor", key="some other secret of enough length, 32+", valid_for=60
    )
    assert (await client.get("/auth/me", headers=bearer(forged))).status_code == 401
    expired = signed_token(
        created["id"], "student", key=JWT_SECRET, issued_ago=7200, valid_for=3600
    )
    response = await client.get("/auth/me", headers=bearer(expired))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_profile_update(client) -> None:
    await register(client)
    token = await token_for(client)
    response = await client.patch(
        "/auth/me",
        json={
            "display_name": "Ann B.",
            "bio": "Teaches maths",
            "avatar_url": "https://cdn.example.com/a.png",
        },
        headers=bearer(token),
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Ann B."
    me = (await client.get("/auth/me", headers=bearer(token))).json()
    assert (me["bio"], me["avatar_url"]) == ("Teaches maths", "https://cdn.example.com/a.png")
    cleared = await client.patch("/auth/me", json={"avatar_url": ""}, headers=bearer(token))
    assert cleared.json()["avatar_url"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"display_name": "   "}, "display_name"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"bio": "x" * 2001}, "bio"),
        ({"email": "new@example.com"}, "email"),
    ],
)
async def test_bad_profile_updates_are_422(client, body, field) -> None:
    await register(client)
    response = await client.patch("/auth/me", json=body, headers=bearer(await token_for(client)))
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_profile_reads_come_from_the_cache(client, core_db: str, redis_client) -> None:
    created = await register(client)
    token = await token_for(client)
    assert redis_client.exists(profile_key(uuid.UUID(created["id"])))  # written through
    with psycopg.connect(core_db) as conn:  # a change behind the service's back
        conn.execute(
            "UPDATE users SET display_name = 'Changed in SQL' WHERE id = %s", (created["id"],)
        )
    assert (await client.get("/auth/me", headers=bearer(token))).json()["display_name"] == "Ann"
    # A write through the API is visible at once: the cache is never stale after it.
    await client.patch("/auth/me", json={"bio": "new bio"}, headers=bearer(token))
    cached = redis_client.get(profile_key(uuid.UUID(created["id"])))
    assert cached is not None  # written through, not merely dropped
    assert b"new bio" in cached
    me = (await client.get("/auth/me", headers=bearer(token))).json()
    assert me["bio"] == "new bio"
    assert me["display_name"] == "Changed in SQL"  # the update returned the committed row


async def test_a_cache_miss_refills_from_the_database(client, core_db: str, redis_client) -> None:
    created = await register(client)
    token = await token_for(client)
    key = profile_key(uuid.UUID(created["id"]))
    redis_client.delete(key)
    with psycopg.connect(core_db) as conn:
        conn.execute("UPDATE users SET bio = 'from the database' WHERE id = %s", (created["id"],))
    assert (await client.get("/auth/me", headers=bearer(token))).json()[
        "bio"
    ] == "from the database"
    assert b"from the database" in redis_client.get(key)


async def test_with_redis_down_profiles_are_served_from_the_database(settings) -> None:
    down = settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0"}
    )  # nothing listens on port 1
    async with AsyncTestClient(create_app(down)) as client:
        assert (await client.get("/health/ready")).status_code == 503
        await register(client)
        token = await token_for(client)
        await client.patch("/auth/me", json={"bio": "still saved"}, headers=bearer(token))
        me = await client.get("/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["bio"] == "still saved"


class WritesFail(redis.asyncio.Redis):
    """The real client, except that its next `failures` writes (SET or a script) raise."""

    failures = 0
    injected = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.failures and str(args[0]).upper() in {"SET", "EVAL", "EVALSHA"}:
            self.failures -= 1
            self.injected += 1
            raise redis.ConnectionError("injected: the write never reached Redis")
        return await super().execute_command(*args, **options)


@pytest.fixture
async def flaky(settings: ServiceSettings) -> AsyncIterator[tuple[httpx.AsyncClient, WritesFail]]:
    """The Auth app on a Redis client whose writes the test makes fail; DEL and GET work."""
    made: list[WritesFail] = []

    def open_cache(settings: DataSettings) -> redis.asyncio.Redis:
        client = WritesFail.from_url(settings.redis_url)
        assert isinstance(client, WritesFail)
        made.append(client)
        return client

    async with AsyncTestClient(create_app(settings, open_cache=open_cache)) as client:
        yield client, made[0]


async def test_when_redis_refuses_every_write_the_old_entry_is_deleted(flaky, redis_client) -> None:
    client, cache = flaky
    created = await register(client)
    token = await token_for(client)
    key = profile_key(uuid.UUID(created["id"]))
    assert b"Ann" in redis_client.get(key)  # the entry a failed write would leave stale

    cache.failures = 1_000_000  # every write from now on
    response = await client.patch(
        "/auth/me", json={"display_name": "Ann B."}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert cache.injected > 0
    assert not redis_client.exists(key)
    me = await client.get("/auth/me", headers=bearer(token))
    assert me.json()["display_name"] == "Ann B."


async def test_a_write_that_fails_once_is_retried(flaky, redis_client) -> None:
    client, cache = flaky
    created = await register(client)
    token = await token_for(client)
    cache.failures = 1
    response = await client.patch(
        "/auth/me", json={"display_name": "Ann B."}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert cache.injected == 1
    cached = redis_client.get(profile_key(uuid.UUID(created["id"])))
    assert cached is not None
    assert b"Ann B." in cached


async def test_a_late_write_of_an_older_version_never_replaces_a_newer_one(
    client, settings: ServiceSettings, redis_client
) -> None:
    created = await register(client)  # version 1
    token = await token_for(client)
    older = VersionedProfile(msgspec.convert(created, UserProfile), version=1)
    await client.patch("/auth/me", json={"bio": "the newer bio"}, headers=bearer(token))
    # The request that committed version 1 reaches Redis only now, after version 2 did.
    connection = redis.asyncio.Redis.from_url(settings.redis_url)
    try:
        store = ProfileStore(Databases(settings), connection, ttl_seconds=60)
        await store.put(older)
    finally:
        await connection.aclose()
    cached = redis_client.get(profile_key(uuid.UUID(created["id"])))
    assert cached is not None
    assert b"the newer bio" in cached
    assert (await client.get("/auth/me", headers=bearer(token))).json()["bio"] == "the newer bio"
