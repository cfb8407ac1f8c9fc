"""What Prometheus reads from a running service's /metrics: the HTTP server metrics.

A real uvicorn process of the Course and Auth apps, configured only by environment, as
`eduscale serve` and `dev up` start them; the samples are parsed with Prometheus's own
text parser, as the scraper reads them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
from child_process import running, wait_ready
from prometheus_client.parser import text_string_to_metric_families
from service_harness import JWT_SECRET, REDIS_URL

from contracts.platform_metrics import HTTP_ACTIVE_REQUESTS, HTTP_REQUEST_DURATION

pytestmark = [pytest.mark.server, pytest.mark.usefixtures("redis_client")]

COUNT = HTTP_REQUEST_DURATION.part("count")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: str, database_url: str) -> Iterator[str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
    with running(command, env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/health/live", process)
        yield base


def samples(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the scrape: (name, labels) -> value."""
    response = httpx.get(f"{base}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_of(scrape: dict, route: str, method: str, status: int) -> float:
    labels = frozenset(
        {
            "http_route": route,
            "http_request_method": method,
            "http_response_status_code": str(status),
        }.items()
    )
    return float(scrape.get((COUNT, labels), 0.0))


def test_requests_are_counted_per_route_template_method_and_status(core_db: str) -> None:
    with serving("services.course.app:app", core_db) as base:
        before = samples(base)
        for _ in range(3):
            assert httpx.get(f"{base}/courses", timeout=5).status_code == 200
        missing = [uuid.uuid4() for _ in range(2)]
        for course_id in missing:
            assert httpx.get(f"{base}/courses/{course_id}", timeout=5).status_code == 404
        assert httpx.get(f"{base}/no/such/route", timeout=5).status_code == 404
        after = samples(base)

    assert (
        requests_of(after, "/courses", "GET", 200) - requests_of(before, "/courses", "GET", 200)
        == 3
    )
    template = "/courses/{course_id}"
    assert requests_of(after, template, "GET", 404) - requests_of(before, template, "GET", 404) == 2
    # A path no route matches has no route label, as the convention says; never the raw path.
    assert requests_of(after, "", "GET", 404) - requests_of(before, "", "GET", 404) == 1
    routes = {dict(labels).get("http_route") for name, labels in after if name == COUNT}
    assert not any(str(course_id) in str(routes) for course_id in missing)
    assert "/no/such/route" not in routes
    # The durations are a histogram over OpenTelemetry's boundaries, summing to the count.
    bucket = HTTP_REQUEST_DURATION.part("bucket")
    infinite = frozenset(
        {
            "http_route": "/courses",
            "http_request_method": "GET",
            "http_response_status_code": "200",
            "le": "+Inf",
        }.items()
    )
    assert after[(bucket, infinite)] == requests_of(after, "/courses", "GET", 200)


@pytest.mark.anyio
async def test_active_requests_rise_while_slow_requests_are_in_progress(core_db: str) -> None:
    with serving("services.auth.app:app", core_db) as base:
        release = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b'{"email": "slow@example.com", '
            await release.wait()  # a slow client: the request stays in progress
            yield b'"password": "long enough password"}'

        active = frozenset({"http_request_method": "POST"}.items())
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            idle = samples(base).get((HTTP_ACTIVE_REQUESTS.name, active), 0.0)
            slow = [
                asyncio.create_task(client.post("/auth/login", content=slow_body()))
                for _ in range(5)
            ]
            busy = idle
            deadline = time.monotonic() + 10
            while busy < idle + 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                busy = (await asyncio.to_thread(samples, base))[(HTTP_ACTIVE_REQUESTS.name, active)]
            release.set()
            answers = await asyncio.gather(*slow)
            done = (await asyncio.to_thread(samples, base))[(HTTP_ACTIVE_REQUESTS.name, active)]
    assert busy == idle + 5
    assert done == idle
    assert {answer.status_code for answer in answers} == {401}
