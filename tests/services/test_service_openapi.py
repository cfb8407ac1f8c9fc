"""The OpenAPI documents of both services, and the routing errors around them.

Generated clients name their methods after `operationId` and group them by tag, and the
documentation lists operations by summary, so each must be there and unique. Unknown
routes and wrong methods answer in the same problem+json shape as every other error.
None of this touches a database: the apps are built, but the test clients are not used as
context managers, so the lifespan (which opens the pools) never runs, and none of these
requests reaches a handler.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from service_harness import database_url, settings_for

from services.auth.app import create_app as create_auth_app
from services.course.app import create_app as create_course_app
from services.runtime.settings import ServiceSettings

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
FACTORIES: dict[str, Callable[[ServiceSettings], Litestar]] = {
    "auth": create_auth_app,
    "course": create_course_app,
}
SERVICES = sorted(FACTORIES)
ZERO_ID = "00000000-0000-0000-0000-000000000000"


def build(service: str) -> Litestar:
    """The app with settings pointing at a database it never opens."""
    return FACTORIES[service](settings_for(database_url("eduscale_never_opened")))


def document(service: str) -> dict[str, Any]:
    schema: dict[str, Any] = build(service).openapi_schema.to_schema()
    return schema


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    return problem


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_has_a_unique_id_a_tag_and_a_summary(service: str) -> None:
    found = operations(document(service))
    assert len(found) >= 3, found
    for method, path, operation in found:
        where = f"{service}: {method} {path}"
        assert isinstance(operation.get("operationId"), str), where
        assert operation["operationId"], where
        assert operation.get("tags"), where
        assert all(isinstance(tag, str) and tag for tag in operation["tags"]), where
        assert isinstance(operation.get("summary"), str), where
        assert operation["summary"].strip(), where
    ids = Counter(operation["operationId"] for _, _, operation in found)
    assert [name for name, count in ids.items() if count > 1] == []


def test_operation_ids_are_unique_across_both_services() -> None:
    # Both sit behind one gateway; a client generated from both documents needs them apart.
    ids = Counter(
        operation["operationId"]
        for service in SERVICES
        for _, path, operation in operations(document(service))
        if not path.startswith("/health/")  # the same probe on every service, by design
    )
    assert [name for name, count in ids.items() if count > 1] == []


@pytest.mark.parametrize("service", SERVICES)
def test_both_health_endpoints_are_documented(service: str) -> None:
    paths = document(service)["paths"]
    for path in ("/health/live", "/health/ready"):
        assert path in paths, sorted(paths)
        assert "get" in paths[path]
        assert "health" in paths[path]["get"]["tags"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_served_document_is_the_generated_one(service: str) -> None:
    app = build(service)
    response = TestClient(app).get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    served = response.json()
    assert served["info"]["title"] == f"eduscale {service}"
    assert served["paths"].keys() == app.openapi_schema.to_schema()["paths"].keys()


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("auth", "/no/such/route"),
        ("auth", "/auth/nope"),
        ("auth", "/courses"),  # the other service's route
        ("course", "/no/such/route"),
        ("course", "/courses/not-a-uuid"),
        ("course", "/quizzes/not-a-uuid"),
        ("course", "/auth/me"),
    ],
)
def test_unknown_routes_are_problem_json_404(service: str, path: str) -> None:
    response = TestClient(build(service)).get(path)
    problem = assert_problem(response, 404)
    assert problem["instance"] == path


@pytest.mark.parametrize(
    ("service", "method", "path", "allowed"),
    [
        ("auth", "DELETE", "/auth/me", {"GET", "PATCH"}),
        ("auth", "GET", "/auth/login", {"POST"}),
        ("auth", "PUT", "/auth/register", {"POST"}),
        ("auth", "POST", "/health/live", {"GET"}),
        ("course", "DELETE", "/courses", {"GET", "POST"}),
        ("course", "PUT", f"/courses/{ZERO_ID}", {"GET", "PATCH"}),
        ("course", "GET", f"/quizzes/{ZERO_ID}/attempts", {"POST"}),
        ("course", "POST", "/health/ready", {"GET"}),
    ],
)
def test_wrong_methods_are_problem_json_405_naming_the_allowed_ones(
    service: str, method: str, path: str, allowed: set[str]
) -> None:
    response = TestClient(build(service)).request(method, path)
    problem = assert_problem(response, 405)
    assert problem["instance"] == path
    listed = {name.strip() for name in response.headers["allow"].split(",")}
    assert allowed <= listed
    assert method not in listed
