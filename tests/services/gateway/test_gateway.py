"""The local gateway: Kong's routes, limits and CORS, generated from the same definitions.

The upstream here is a small real ASGI app (it echoes what it received), served to the
gateway through httpx's ASGI transport, so these tests check the proxy itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest

from components.kong_config import declarative_config
from contracts.gateway import CORS, DEFAULT_LIMITS, GatewayLimits, route_policies
from contracts.routes import ROUTES
from services.gateway.app import Gateway, create_app
from services.gateway.rate_limit import MinuteWindows
from services.gateway.settings import GatewaySettings
from services.runtime.settings import SettingsError
from stacks.compute_sections import GatewayConfig

pytestmark = pytest.mark.anyio
UPSTREAMS = {
    "auth": "http://auth.local:8000",
    "course": "http://course.local:8000",
    "ai-orchestrator": "http://ai.local:8000",
}
ORIGIN = "http://localhost:3000"


async def echo(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """An upstream that answers with what it was sent, and a header of its own."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    payload = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "body_bytes": len(body),
    }
    encoded = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 201 if scope["method"] == "POST" else 200,
            "headers": [(b"content-type", b"application/json"), (b"x-upstream", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": encoded})


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        upstreams=UPSTREAMS,
        requests_per_minute=5,
        strict_requests_per_minute=2,
        max_body_mb=1,
        cors_origins=(ORIGIN,),
    )
    app = create_app(settings, transport=httpx.ASGITransport(app=echo))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.local"
    ) as client:
        yield client


def test_the_local_gateway_and_kong_route_and_limit_alike():
    """For every route: the same service, paths and per-minute limit; the same CORS and size."""
    stack_defaults = GatewayConfig()
    limits = GatewayLimits(
        requests_per_minute=stack_defaults.requests_per_minute,
        strict_requests_per_minute=stack_defaults.strict_requests_per_minute,
        max_body_mb=stack_defaults.max_body_mb,
    )
    assert limits == DEFAULT_LIMITS  # the local gateway's defaults are the stack's
    kong = declarative_config(
        ROUTES,
        {name: (f"{name}.svc", 8000) for name in UPSTREAMS},
        {
            "requests_per_minute": limits.requests_per_minute,
            "strict_requests_per_minute": limits.strict_requests_per_minute,
            "max_body_mb": limits.max_body_mb,
            "cors_origins": [ORIGIN],
        },
        {"host": "redis", "port": 6379},
    )
    kong_routes = {
        route["name"]: (service["name"], tuple(route["paths"]), plugin["config"]["minute"])
        for service in kong["services"]
        for route in service["routes"]
        for plugin in route["plugins"]
        if plugin["name"] == "rate-limiting"
    }
    local = Gateway(GatewaySettings(upstreams=UPSTREAMS, cors_origins=(ORIGIN,)))
    local_routes = {p.name: (p.service, p.paths, p.requests_per_minute) for p in local.policies}
    assert local_routes == kong_routes
    assert set(kong_routes) == {route.name for route in ROUTES}
    assert kong_routes["auth"][2] == 30  # strict, as /auth must be
    plugins = {plugin["name"]: plugin["config"] for plugin in kong["plugins"]}
    assert plugins["cors"] == {
        "origins": list(local.settings.cors_origins),
        "methods": list(CORS.methods),
        "headers": list(CORS.headers),
        "exposed_headers": list(CORS.exposed_headers),
        "credentials": CORS.credentials,
        "max_age": CORS.max_age,
    }
    assert plugins["request-size-limiting"]["allowed_payload_size"] == (
        local.settings.limits.max_body_mb
    )
    assert plugins["request-size-limiting"]["size_unit"] == "megabytes"


def test_every_path_of_the_route_table_reaches_its_service_by_prefix_as_in_kong():
    local = Gateway(GatewaySettings(upstreams=UPSTREAMS))
    for route in ROUTES:
        for path in route.paths:
            for probe in (path, f"{path}/x/y", f"{path}?q=1"):
                policy = local.route_for(probe)
                assert policy is not None
                assert policy.service == route.service
    assert local.route_for("/") is None
    assert local.route_for("/schema") is None


async def test_requests_are_forwarded_with_host_query_body_and_forwarding_headers(gateway):
    response = await gateway.post(
        "/courses/abc/lessons?draft=1",
        content=b"x" * 1000,
        headers={"X-Request-ID": "req-123", "Authorization": "Bearer t"},
    )
    assert response.status_code == 201
    seen = response.json()
    assert seen["path"] == "/courses/abc/lessons"
    assert seen["query"] == "draft=1"
    assert seen["body_bytes"] == 1000
    assert seen["headers"]["host"] == "api.local"  # preserve_host
    assert seen["headers"]["authorization"] == "Bearer t"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-request-id"] == "req-123"
    assert response.headers["x-request-id"] == "req-123"  # echoed downstream, once
    assert response.headers.get_list("x-request-id") == ["req-123"]
    assert response.headers["x-upstream"] == "yes"
    assert response.headers["ratelimit-limit"] == "5"
    assert response.headers["ratelimit-remaining"] == "4"


async def test_a_request_id_is_made_when_the_caller_sends_none_or_a_bad_one(gateway):
    response = await gateway.get("/courses", headers={"X-Request-ID": "bad id with spaces"})
    made = response.headers["x-request-id"]
    assert made != "bad id with spaces"
    assert response.json()["headers"]["x-request-id"] == made


async def test_an_unknown_path_is_a_404_problem_document(gateway):
    response = await gateway.get("/billing/invoices")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert problem["title"] == "Not found"
    assert problem["instance"] == "/billing/invoices"
    assert "/billing/invoices" in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_the_strict_limit_refuses_with_429_and_retry_after_per_route(gateway):
    for _ in range(2):
        assert (await gateway.post("/auth/login", content=b"{}")).status_code == 201
    refused = await gateway.post("/auth/login", content=b"{}")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.json()["status"] == 429
    assert "2 requests a minute" in refused.json()["detail"]
    # Counted per route, as Kong's plugin is attached per route: courses still pass.
    assert (await gateway.get("/courses")).status_code == 200


async def test_a_body_over_the_limit_is_refused_with_413(gateway):
    too_big = b"x" * (1024 * 1024 + 1)
    response = await gateway.post("/ai/documents", content=too_big)
    assert response.status_code == 413
    assert "1 MB" in response.json()["detail"]
    assert (await gateway.post("/ai/documents", content=b"x" * 1024 * 1024)).status_code == 201


async def test_a_cors_preflight_is_answered_by_the_gateway_for_allowed_origins(gateway):
    preflight = await gateway.options(
        "/courses",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Idempotency-Key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"].split(",")
    assert "Idempotency-Key" in preflight.headers["access-control-allow-headers"].split(",")
    assert preflight.headers["access-control-max-age"] == str(CORS.max_age)
    assert "x-upstream" not in preflight.headers  # never reached the service

    actual = await gateway.get("/courses", headers={"Origin": ORIGIN})
    assert actual.headers["access-control-allow-origin"] == ORIGIN
    assert "Retry-After" in actual.headers["access-control-expose-headers"]


async def test_a_foreign_origin_gets_no_cors_grant(gateway):
    preflight = await gateway.options(
        "/courses",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    actual = await gateway.get("/courses", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in actual.headers


async def test_an_unreachable_service_is_a_502_naming_it():
    settings = GatewaySettings(upstreams={**UPSTREAMS, "course": "http://127.0.0.1:9"})
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.local"
    ) as client:
        response = await client.get("/courses")
        ready = await client.get("/health/ready")
    assert response.status_code == 502
    assert "course service is not reachable" in response.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["services"]["course"] == "unreachable"


def test_every_routed_service_needs_an_upstream():
    with pytest.raises(SettingsError, match="no upstream for ai-orchestrator"):
        GatewaySettings.from_env(
            {"GATEWAY_UPSTREAMS": "auth=http://127.0.0.1:1,course=http://127.0.0.1:2"}
        )
    with pytest.raises(SettingsError, match="GATEWAY_UPSTREAMS='auth=ftp://x' is not allowed"):
        GatewaySettings.from_env({"GATEWAY_UPSTREAMS": "auth=ftp://x"})
    with pytest.raises(SettingsError, match="GATEWAY_MAX_BODY_MB"):
        GatewaySettings.from_env(
            {
                "GATEWAY_UPSTREAMS": ",".join(f"{k}={v}" for k, v in UPSTREAMS.items()),
                "GATEWAY_MAX_BODY_MB": "lots",
            }
        )


def test_the_minute_window_counts_per_client_and_resets_at_the_minute():
    now = [120.0 + 45]  # 45 s into a minute
    windows = MinuteWindows(clock=lambda: now[0])
    assert windows.hit("auth", "1.1.1.1", 2).remaining == 1
    assert windows.hit("auth", "1.1.1.1", 2).remaining == 0
    refused = windows.hit("auth", "1.1.1.1", 2)
    assert not refused.allowed
    assert refused.reset_seconds == 15
    assert windows.hit("auth", "2.2.2.2", 2).allowed  # another client
    now[0] = 180.0  # the next minute
    assert windows.hit("auth", "1.1.1.1", 2).allowed


def test_route_policies_follow_the_route_classes():
    policies = {p.name: p for p in route_policies(ROUTES, GatewayLimits(7, 3, 1))}
    assert policies["auth"].requests_per_minute == 3
    assert policies["courses"].requests_per_minute == 7
