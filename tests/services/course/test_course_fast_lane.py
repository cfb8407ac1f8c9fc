"""The fast lane of `GET /courses/{id}`: a cached course answered before the router,
exactly as the handler answers it, with its event, its ETag and read-your-writes.

Real PostgreSQL and Redis; the event test runs the Tansu broker.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import msgspec
import pytest
from analytics_harness import eventually, fast_settings
from course_harness import headers_for
from fast_lane_harness import route_answers, served_fixture
from kafka_broker import Broker
from litestar import Litestar
from litestar.testing import AsyncTestClient
from service_harness import settings_for

from services.course.app import create_app
from services.course.content_cache import course_key
from services.course.fast_reads import course_fast_routes
from services.runtime.hot_path import FastRequest, missed
from services.runtime.settings import ServiceSettings

pytestmark = [pytest.mark.anyio, pytest.mark.server, pytest.mark.usefixtures("redis_client")]
_COMPARED = ("content-type", "content-length", "etag", "cache-control", "vary")


@pytest.fixture
def settings(core_db: str) -> ServiceSettings:
    return settings_for(core_db)


served = served_fixture(create_app)


async def cached_course(client: httpx.AsyncClient, settings: ServiceSettings) -> str:
    instructor = headers_for(settings, "instructor")
    created = await client.post("/courses", json={"title": "Maths"}, headers=instructor)
    assert created.status_code == 201, created.text
    course_id: str = created.json()["id"]
    assert (await client.get(f"/courses/{course_id}")).status_code == 200  # fills the cache
    return course_id


async def lane_answers(
    client: Any, app: Litestar, path: str, state: dict[str, Any] | None = None
) -> Any:
    """What the course's fast route answers for `path` (None: it hands over to Litestar).

    Run on the test client's own event loop, where the app's Redis connection lives.
    """
    (route,) = [r for prefix, _, r in course_fast_routes(app).prefixes if prefix == "/courses/"]
    request = FastRequest(path, {}, {} if state is None else state)
    return await route_answers(client, route, request)


async def test_a_cached_course_is_answered_by_the_lane_as_the_handler_answers_it(
    served, settings, redis_client
) -> None:
    client, app = served
    course_id = await cached_course(client, settings)
    answer = await lane_answers(client, app, f"/courses/{course_id}")
    assert answer is not None
    assert answer.status == 200
    assert answer.body == redis_client.get(course_key(uuid.UUID(course_id)))

    fast = await client.get(f"/courses/{course_id}", headers={"X-Request-ID": "lane-1"})
    # Upper case: Litestar parses the id, the lane does not take it; same cache entry.
    routed = await client.get(f"/courses/{course_id.upper()}")
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert msgspec.json.decode(fast.content)["title"] == "Maths"
    assert {h: fast.headers.get(h) for h in _COMPARED} == {
        h: routed.headers.get(h) for h in _COMPARED
    }
    assert fast.headers["x-request-id"] == "lane-1"
    assert routed.headers["x-request-id"]


async def test_the_lane_answers_304_to_a_matching_etag(served, settings) -> None:
    client, _ = served
    course_id = await cached_course(client, settings)
    first = await client.get(f"/courses/{course_id}")
    etag = first.headers["etag"]
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await client.get(f"/courses/{course_id}", headers={"If-None-Match": if_none_match})
        assert again.status_code == 304, if_none_match
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == first.headers["cache-control"]
    stale = await client.get(f"/courses/{course_id}", headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200
    assert stale.content == first.content


async def test_an_edit_is_read_at_once_not_the_cached_copy(served, settings) -> None:
    client, app = served
    course_id = await cached_course(client, settings)
    before = await client.get(f"/courses/{course_id}")
    edit = await client.patch(
        f"/courses/{course_id}",
        json={"title": "Maths, revised"},
        headers=headers_for(settings, "instructor"),
    )
    assert edit.status_code == 403  # another instructor: not the owner
    owner = uuid.UUID(msgspec.json.decode(before.content)["owner_id"])
    edit = await client.patch(
        f"/courses/{course_id}",
        json={"title": "Maths, revised"},
        headers=headers_for(settings, "instructor", owner),
    )
    assert edit.status_code == 200, edit.text
    assert await lane_answers(client, app, f"/courses/{course_id}") is None  # the entry was dropped
    after = await client.get(f"/courses/{course_id}")
    assert after.json()["title"] == "Maths, revised"
    assert after.headers["etag"] != before.headers["etag"]
    assert await lane_answers(client, app, f"/courses/{course_id}") is not None  # refilled
    assert (await client.get(f"/courses/{course_id}")).json()["title"] == "Maths, revised"


async def test_other_routes_and_misses_go_to_litestar(served, settings) -> None:
    client, app = served
    course_id = await cached_course(client, settings)
    unknown = uuid.uuid4()
    state: dict[str, Any] = {}
    assert await lane_answers(client, app, f"/courses/{unknown}", state) is None
    assert missed(state, course_key(unknown))  # the handler will not GET it again
    missing = await client.get(f"/courses/{unknown}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    assert await lane_answers(client, app, f"/courses/{course_id}/report") is None
    assert (await client.get(f"/courses/{course_id}/report")).status_code == 401
    assert (await client.get("/courses/not-a-uuid")).status_code == 404
    listed = await client.get("/courses/")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == [course_id]
    assert (await client.head(f"/courses/{course_id}")).status_code in {200, 405}


async def test_with_cors_the_cached_read_still_carries_the_cors_headers(core_db: str) -> None:
    settings = settings_for(core_db, cors_origins=["https://app.example.com"])
    async with AsyncTestClient(create_app(settings)) as client:
        course_id = await cached_course(client, settings)
        response = await client.get(
            f"/courses/{course_id}", headers={"Origin": "https://app.example.com"}
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


async def test_every_cached_read_emits_its_course_viewed_event(
    core_db: str, kafka_broker: Broker, tmp_path
) -> None:
    settings = settings_for(core_db)
    viewer = uuid.uuid4()
    app = create_app(settings, fast_settings(tmp_path), kafka_broker.settings())
    async with AsyncTestClient(app) as client:
        course_id = await cached_course(client, settings)  # one view, a miss
        assert await lane_answers(client, app, f"/courses/{course_id}") is not None  # a view
        for headers in (
            headers_for(settings, "student", viewer),
            {"Authorization": "Bearer not.a.token"},  # a bad token views anonymously
            {},
        ):
            assert (await client.get(f"/courses/{course_id}", headers=headers)).status_code == 200
        store = app.state.analytics_reports.store
        rows = await eventually(
            lambda: store.query(
                "SELECT toString(course_id) AS course, toString(user_id) AS user"
                " FROM analytics.events WHERE kind = 'course_viewed'"
            ),
            lambda rows: len(list(rows)) == 5,
        )
        emitted = (await client.get("/health/analytics")).json()
    assert emitted["accepted"] == emitted["delivered"] == 5
    assert {row["course"] for row in rows} == {course_id}
    users = sorted(row["user"] for row in rows)
    assert users.count(str(viewer)) == 1
    assert len(set(users)) == 2  # the viewer, and the one anonymous id for the other four


def _served_count(metrics: str, route: str) -> float:
    """`http_server_request_duration_seconds_count` of GETs answered 200 on `route`."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "http_server_request_duration_seconds_count"
        and sample.labels
        == {
            "http_route": route,
            "http_request_method": "GET",
            "http_response_status_code": "200",
        }
    )


async def test_requests_the_lane_answers_are_measured_under_the_route_template(
    served, settings
) -> None:
    client, _ = served
    course_id = await cached_course(client, settings)
    before = (await client.get("/metrics")).text
    for _ in range(3):
        assert (await client.get(f"/courses/{course_id}")).status_code == 200
    after = (await client.get("/metrics")).text
    template = "/courses/{course_id}"
    assert _served_count(after, template) - _served_count(before, template) == 3
    assert _served_count(after, "") == _served_count(before, "")
    assert course_id not in after  # never a raw path
