"""Time-series reports of a course's activity, read from the daily aggregates.

Days are UTC days. A week bucket starts on Monday and counts only the days of the range
inside it (so the first and last weeks may be partial). Every bucket of the range is in
the series, with zeros where nothing happened. `active_learners` counts distinct users
who viewed the course, read a lesson or answered a quiz in the bucket (a learner active
on three days of a week counts once in that week); `mean_score` is the mean share of
questions answered right (0 to 1) over the bucket's attempts, null without attempts.
"""

import uuid
from datetime import date, timedelta
from typing import Literal

import msgspec

from services.analytics.store import AnalyticsStore
from services.runtime.errors import FieldError, InvalidInput

__all__ = [
    "FIRST_DAY",
    "LAST_DAY",
    "ActivityPoint",
    "Bucket",
    "CourseActivity",
    "check_range",
    "course_activity",
]

Bucket = Literal["day", "week"]
_DEFAULT_DAYS = 30
FIRST_DAY = date(1970, 2, 1)
"""The earliest day a report may start (ClickHouse's `Date` begins in 1970)."""
LAST_DAY = date(2149, 5, 31)
"""The last day a report may end (ClickHouse's `Date` ends in June 2149)."""


class ActivityPoint(msgspec.Struct, kw_only=True):
    """One bucket of the series."""

    start: date
    """The bucket's first day (a Monday for weeks; the range's start if later)."""
    active_learners: int
    lessons_read: int
    quiz_attempts: int
    mean_score: float | None
    """Mean share of questions right, 0 to 1; null without attempts."""


class CourseActivity(msgspec.Struct, kw_only=True):
    """A course's activity from `from` to `to` (UTC days, both included)."""

    course_id: uuid.UUID
    from_: date = msgspec.field(name="from")
    to: date
    bucket: Bucket
    series: list[ActivityPoint]


def check_range(
    start: date | None, end: date | None, *, today: date, max_days: int
) -> tuple[date, date]:
    """The range to report; 422 naming the parameter that is wrong.

    A range is wrong when it is reversed, longer than `max_days`, or outside the days
    ClickHouse's `Date` holds.
    """
    for name, day in (("from", start), ("to", end)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidInput(
                [
                    FieldError(
                        name, f"must be from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
                    )
                ]
            )
    end = end or today
    start = start or end - timedelta(days=_DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput([FieldError("from", f"must not be after `to` ({end.isoformat()})")])
    days = (end - start).days + 1
    if days > max_days:
        raise InvalidInput(
            [FieldError("to", f"the range covers {days} days; at most {max_days} are allowed")]
        )
    return start, end


def _bucket_start(day: date, bucket: Bucket, start: date) -> date:
    if bucket == "day":
        return day
    return max(day - timedelta(days=day.weekday()), start)


async def course_activity(
    store: AnalyticsStore, course_id: uuid.UUID, start: date, end: date, bucket: Bucket
) -> CourseActivity:
    """The series, one query over the daily aggregates of this course and range."""
    bucket_expr = "day" if bucket == "day" else "greatest(toMonday(day), {start:Date})"
    rows = await store.query(
        f"SELECT {bucket_expr} AS start,"  # noqa: S608 - only our own two expressions
        " uniqExactMerge(learners) AS active_learners,"
        " sum(lessons_read) AS lessons_read,"
        " sum(attempts) AS quiz_attempts,"
        " sum(score_sum) AS score_sum"
        f" FROM {store.schema.daily}"
        " WHERE course_id = {course:UUID} AND day >= {start:Date} AND day <= {end:Date}"
        " GROUP BY start ORDER BY start",
        {"course": course_id, "start": start, "end": end},
    )
    found = {date.fromisoformat(str(row["start"])): row for row in rows}
    series: list[ActivityPoint] = []
    seen: set[date] = set()
    day = start
    while day <= end:
        first = _bucket_start(day, bucket, start)
        day += timedelta(days=1)
        if first in seen:
            continue
        seen.add(first)
        row = found.get(first)
        attempts = int(row["quiz_attempts"]) if row else 0
        series.append(
            ActivityPoint(
                start=first,
                active_learners=int(row["active_learners"]) if row else 0,
                lessons_read=int(row["lessons_read"]) if row else 0,
                quiz_attempts=attempts,
                mean_score=(
                    round(float(row["score_sum"]) / attempts, 4) if row and attempts else None
                ),
            )
        )
    return CourseActivity(course_id=course_id, from_=start, to=end, bucket=bucket, series=series)
