"""`GET /courses/{id}/analytics`: the course's activity over time, for its instructor.

Ownership is checked on a read replica and the series comes from ClickHouse, so the
report never touches the PostgreSQL writer.
"""

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from services.analytics.reports import Bucket, CourseActivity, check_range, course_activity
from services.analytics.service import ReportSource
from services.analytics.store import StoreUnavailable
from services.course.catalogue import require_owner
from services.runtime.errors import Unavailable
from services.runtime.resources import Resources
from services.runtime.tokens import Principal, require_instructor

__all__ = ["AnalyticsController"]


class AnalyticsController(Controller):
    """Course activity time series (from the analytics store)."""

    path = "/courses"
    tags = ["analytics"]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        "/{course_id:uuid}/analytics",
        operation_id="course_analytics",
        summary="Active learners, lessons read, attempts and mean score per day or week",
    )
    async def activity(  # noqa: PLR0917 - Litestar injects these by name
        self,
        course_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
        analytics_reports: NamedDependency[ReportSource],
        start: Annotated[date | None, QueryParameter(name="from")] = None,
        end: Annotated[date | None, QueryParameter(name="to")] = None,
        bucket: FromQuery[Bucket] = "day",
    ) -> CourseActivity:
        """`from`/`to` are UTC days (default: the last 30); the course's instructor only."""
        require_instructor(principal)
        start, end = check_range(
            start, end, today=datetime.now(UTC).date(), max_days=analytics_reports.max_days
        )
        async with resources.databases.replica() as conn:
            await require_owner(conn, course_id, principal)
        try:
            return await course_activity(analytics_reports.store, course_id, start, end, bucket)
        except StoreUnavailable as error:
            raise Unavailable(f"Analytics are unavailable: {error}", retry_after=30) from None
