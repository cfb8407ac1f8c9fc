"""`HTTPMetrics` around a Litestar app, in process: what each request adds to the series."""

from __future__ import annotations

import time

from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from contracts.platform_metrics import HTTP_ACTIVE_REQUESTS, HTTP_REQUEST_DURATION
from services.runtime.http_metrics import HTTPMetrics

COUNT = HTTP_REQUEST_DURATION.part("count")


@get("/widgets/{widget_id:int}", sync_to_thread=False)
def widget(widget_id: FromPath[int]) -> dict[str, int]:
    return {"id": widget_id}


@get("/broken", sync_to_thread=False)
def broken() -> None:
    raise RuntimeError("a bug")


def metered_app() -> Litestar:
    app = Litestar(route_handlers=[widget, broken], openapi_config=None, logging_config=None)
    app.asgi_handler = HTTPMetrics(app.asgi_handler)
    return app


def count(route: str, method: str, status: int) -> float:
    labels = {
        "http_route": route,
        "http_request_method": method,
        "http_response_status_code": str(status),
    }
    return REGISTRY.get_sample_value(COUNT, labels) or 0.0


def test_each_request_is_counted_once_under_its_template_method_and_status() -> None:
    cases = [
        ("/widgets/{widget_id}", "GET", 200),
        ("", "POST", 405),
        ("/broken", "GET", 500),
        ("", "GET", 404),
        ("", "_OTHER", 404),
    ]
    before = {case: count(*case) for case in cases}
    with TestClient(metered_app(), raise_server_exceptions=False) as client:
        assert client.get("/widgets/1").status_code == 200
        assert client.get("/widgets/2").status_code == 200
        assert client.post("/widgets/1").status_code == 405
        assert client.get("/broken").status_code == 500
        assert client.get("/nowhere/3").status_code == 404
        assert client.request("BREW", "/nowhere").status_code == 404
    added = {case: count(*case) - before[case] for case in cases}
    assert added == {
        ("/widgets/{widget_id}", "GET", 200): 2,
        ("", "POST", 405): 1,
        ("/broken", "GET", 500): 1,
        ("", "GET", 404): 1,
        ("", "_OTHER", 404): 1,
    }
    for method in ("GET", "POST", "_OTHER"):  # nothing left in progress
        assert (
            REGISTRY.get_sample_value(HTTP_ACTIVE_REQUESTS.name, {"http_request_method": method})
            == 0
        )


@get("/slow", sync_to_thread=False)
def slow() -> None:
    time.sleep(0.03)


def bucket(route: str, le: str) -> float:
    labels = {
        "http_route": route,
        "http_request_method": "GET",
        "http_response_status_code": "200",
        "le": le,
    }
    return REGISTRY.get_sample_value(HTTP_REQUEST_DURATION.part("bucket"), labels) or 0.0


def test_a_request_lands_in_the_buckets_its_duration_reaches_and_apps_of_a_process_add_up() -> None:
    def slow_app() -> Litestar:
        app = Litestar(route_handlers=[slow], openapi_config=None, logging_config=None)
        app.asgi_handler = HTTPMetrics(app.asgi_handler)
        return app

    before = {le: bucket("/slow", le) for le in ("0.025", "0.05", "+Inf")}
    total_before = (
        REGISTRY.get_sample_value(
            HTTP_REQUEST_DURATION.part("sum"),
            {
                "http_route": "/slow",
                "http_request_method": "GET",
                "http_response_status_code": "200",
            },
        )
        or 0.0
    )
    with TestClient(slow_app()) as first, TestClient(slow_app()) as second:
        assert first.get("/slow").status_code == 200
        assert second.get("/slow").status_code == 200
    added = {le: bucket("/slow", le) - before[le] for le in before}
    # 30 ms: above the 25 ms bound, within 50 ms (and under +Inf); both apps counted
    assert added == {"0.025": 0, "0.05": 2, "+Inf": 2}
    total = REGISTRY.get_sample_value(
        HTTP_REQUEST_DURATION.part("sum"),
        {"http_route": "/slow", "http_request_method": "GET", "http_response_status_code": "200"},
    )
    assert total is not None
    assert 0.06 <= total - total_before < 0.1
