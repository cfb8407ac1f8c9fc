"""Kong's declarative configuration, generated from the route table."""

import pytest

from components.kong_config import GatewayLimitsArgs, RedisArgs, declarative_config
from contracts.routes import ROUTES, Route

LIMITS: GatewayLimitsArgs = {
    "requests_per_minute": 600,
    "strict_requests_per_minute": 30,
    "max_body_mb": 50,
    "cors_origins": ["https://learn.example.com"],
}
REDIS: RedisArgs = {"host": "clustercfg.redis.example", "port": 6379}
UPSTREAMS = {
    "auth": ("auth.eduscale.svc.cluster.local", 8000),
    "course": ("course.eduscale.svc.cluster.local", 8000),
    "ai-orchestrator": ("ai-orchestrator.eduscale.svc.cluster.local", 8000),
}


def test_a_route_to_a_service_without_upstream_is_an_error_not_a_404():
    with pytest.raises(ValueError, match="routes name services with no upstream: billing"):
        declarative_config(
            [*ROUTES, Route("billing", ("/billing",), "billing")], UPSTREAMS, LIMITS, REDIS
        )


def test_each_service_appears_once_with_all_its_routes():
    config = declarative_config(ROUTES, UPSTREAMS, LIMITS, REDIS)
    course = next(s for s in config["services"] if s["name"] == "course")
    assert [r["name"] for r in course["routes"]] == ["courses"]
    assert course["routes"][0]["paths"] == ["/courses", "/quizzes"]
    assert all(r["protocols"] == ["https"] for s in config["services"] for r in s["routes"])


@pytest.mark.parametrize("path", ["courses", "/courses/", ""])
def test_malformed_paths_are_refused(path: str):
    with pytest.raises(ValueError, match="must start and not end with /"):
        Route("x", (path,), "course")


def test_the_redis_password_is_a_vault_reference_to_the_pods_environment():
    config = declarative_config(ROUTES, UPSTREAMS, LIMITS, REDIS)
    plugin = config["services"][0]["routes"][0]["plugins"][0]
    reference = "{vault://env/kong-redis-password}"
    assert plugin["config"]["redis"]["password"] == reference


def test_tracing_adds_the_opentelemetry_plugin_with_w3c_propagation():
    assert "opentelemetry" not in {
        p["name"] for p in declarative_config(ROUTES, UPSTREAMS, LIMITS, REDIS)["plugins"]
    }
    endpoint = "http://collector.tracing.svc.cluster.local:4318/v1/traces"
    config = declarative_config(
        ROUTES, UPSTREAMS, LIMITS, REDIS, {"traces_endpoint": endpoint, "sampling_rate": 0.25}
    )
    plugins = {p["name"]: p["config"] for p in config["plugins"]}
    assert plugins["opentelemetry"]["traces_endpoint"] == endpoint
    assert plugins["opentelemetry"]["sampling_rate"] == 0.25
    assert plugins["opentelemetry"]["propagation"]["extract"] == ["w3c"]
    assert plugins["opentelemetry"]["propagation"]["inject"] == ["w3c"]


def test_a_sampling_rate_outside_0_to_1_is_refused():
    with pytest.raises(ValueError, match=r"sampling_rate must be between 0 and 1, got 2\.0"):
        declarative_config(
            ROUTES, UPSTREAMS, LIMITS, REDIS, {"traces_endpoint": "http://c/v1", "sampling_rate": 2}
        )
