"""One read replica dies: the Course service keeps reading from the others, never the writer.

This is the services' half of the reader endpoint's failover (the other half is Route 53
leaving the dead replica out of its answers, see test_reader_health.py): with several
replica URLs in DATABASE_REPLICA_URLS and one of them dead, `Databases.reader()` and
`Databases.replica()` skip the dead pool after DATABASE's replica wait and take the next
replica. Catalogue reads fall back to the writer only when no replica answers, and
reports never do. Real PostgreSQL databases stand for the writer and the live replica; the
test "replicates" by copying, so a read that the replica served visibly misses rows that
exist only on the writer.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from service_harness import database_url, replicate, settings_for

from services.course.app import create_app
from services.runtime.settings import ServiceSettings
from services.runtime.tokens import Principal, TokenIssuer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

DEAD_REPLICAS = {
    "database-gone": database_url("no_such_replica_database"),
    "nothing-listening": "postgresql://eduscale@127.0.0.1:1/replica",
}
READS = 4
"""Reads per phase: the pools are taken in turn, so half of them start at the dead one."""


def headers_for(settings: ServiceSettings, role: str, user_id: uuid.UUID) -> dict[str, str]:
    principal = Principal(user_id=user_id, role=role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {TokenIssuer(settings).issue(principal)}"}


async def new_course(client: httpx.AsyncClient, headers: dict[str, str], title: str) -> Any:
    response = await client.post(
        "/courses", json={"title": title, "description": "Numbers"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("dead", sorted(DEAD_REPLICAS))
async def test_with_one_replica_dead_reads_come_from_the_live_one(
    core_db: str, replica_db: str, dead: str
) -> None:
    replicas = (DEAD_REPLICAS[dead], replica_db)
    settings = settings_for(core_db, replicas=replicas, read_your_writes_seconds=0.0)
    owner = uuid.uuid4()
    instructor = headers_for(settings, "instructor", owner)
    async with AsyncTestClient(create_app(settings)) as client:
        courses = [await new_course(client, instructor, f"Course {n}") for n in range(READS)]

        # Only on the writer so far: every read misses, so the live replica served it,
        # whichever replica the rotation tried first (the writer would have found it).
        for course in courses:
            assert (await client.get(f"/courses/{course['id']}")).status_code == 404

        replicate(core_db, replica_db)
        for course in courses:
            detail = await client.get(f"/courses/{course['id']}")
            assert detail.status_code == 200
            assert detail.json()["title"] == course["title"]

        # Reports read replicas only: with one alive they succeed every time (no 503).
        for course in courses[:2]:
            report = await client.get(f"/courses/{course['id']}/report", headers=instructor)
            assert report.status_code == 200, report.text

        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert (checks["writer"], checks["replica-0"], checks["replica-1"]) == (True, False, True)


async def test_with_every_replica_dead_the_catalogue_uses_the_writer_and_reports_refuse(
    core_db: str,
) -> None:
    settings = settings_for(
        core_db, replicas=tuple(sorted(DEAD_REPLICAS.values())), read_your_writes_seconds=0.0
    )
    instructor = headers_for(settings, "instructor", uuid.uuid4())
    async with AsyncTestClient(create_app(settings)) as client:
        course = await new_course(client, instructor, "Course")
        assert (await client.get(f"/courses/{course['id']}")).status_code == 200  # the writer
        report = await client.get(f"/courses/{course['id']}/report", headers=instructor)
        assert report.status_code == 503
        assert report.headers["retry-after"]
