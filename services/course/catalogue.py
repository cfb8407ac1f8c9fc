"""SQL for courses and lessons. The caller picks the connection (writer or replica)."""

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import msgspec
import psycopg.errors

from services.course.schemas import (
    Course,
    CoursePage,
    CourseSummary,
    Lesson,
    LessonTitle,
)
from services.runtime.database import Connection
from services.runtime.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from services.runtime.tokens import Principal

__all__ = [
    "add_lesson",
    "create_course",
    "decode_cursor",
    "encode_cursor",
    "list_courses",
    "load_course",
    "load_lesson",
    "require_owner",
    "update_course",
]

_COURSE_COLUMNS = "id, owner_id, title, description, created_at, updated_at"


def encode_cursor(created_at: datetime, course_id: uuid.UUID) -> str:
    """An opaque cursor for keyset pagination on (created_at, id)."""
    raw = msgspec.json.encode([created_at.isoformat(), str(course_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor stands for; 422 naming `cursor` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, course_id = msgspec.json.decode(raw, type=tuple[datetime, uuid.UUID])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput([FieldError("cursor", "not a cursor returned by this API")]) from None
    return created, course_id


async def create_course(
    conn: Connection, owner: Principal, title: str, description: str
) -> uuid.UUID:
    """Insert a course owned by `owner`."""
    course_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO courses (id, owner_id, title, description) VALUES (%s, %s, %s, %s)",
        (course_id, owner.user_id, title, description),
    )
    return course_id


async def require_owner(conn: Connection, course_id: uuid.UUID, principal: Principal) -> None:
    """404 for a missing course, 403 unless `principal` owns it."""
    cursor = await conn.execute("SELECT owner_id FROM courses WHERE id = %s", (course_id,))
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"No course {course_id}")
    if row["owner_id"] != principal.user_id:
        raise Forbidden("Only the course's owner may change it or see its report")


async def update_course(conn: Connection, course_id: uuid.UUID, changes: dict[str, str]) -> None:
    """Apply changes to title/description (fixed column names only)."""
    allowed = {"title", "description"}
    if not changes or not set(changes) <= allowed:
        raise ValueError(f"course changes must be a non-empty subset of {sorted(allowed)}")
    assignments = ", ".join(f"{column} = %({column})s" for column in sorted(changes))
    await conn.execute(
        f"UPDATE courses SET {assignments}, updated_at = now() WHERE id = %(id)s",  # noqa: S608
        {**changes, "id": course_id},
    )


async def load_course(conn: Connection, course_id: uuid.UUID) -> Course | None:
    """A course with its lessons' titles in order."""
    cursor = await conn.execute(
        f"SELECT {_COURSE_COLUMNS} FROM courses WHERE id = %s",  # noqa: S608
        (course_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    cursor = await conn.execute(
        "SELECT id, position, title FROM lessons WHERE course_id = %s ORDER BY position",
        (course_id,),
    )
    lessons = [LessonTitle(**lesson) for lesson in await cursor.fetchall()]
    return Course(**row, lessons=lessons)


async def list_courses(
    conn: Connection, *, limit: int, cursor: str | None, text: str | None
) -> CoursePage:
    """A page of the catalogue, newest first.

    `text` filters by a substring of the title or description (LIKE wildcards escaped).
    """
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if cursor:
        params["after_created"], params["after_id"] = decode_cursor(cursor)
        clauses.append("(created_at, id) < (%(after_created)s, %(after_id)s)")
    if text:
        params["pattern"] = "%" + _escape_like(text) + "%"
        clauses.append("(title ILIKE %(pattern)s OR description ILIKE %(pattern)s)")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await (
        await conn.execute(
            "SELECT id, title, description, created_at FROM courses "  # noqa: S608
            f"{where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            params,
        )
    ).fetchall()
    items = [CourseSummary(**row) for row in rows[:limit]]
    more = len(rows) > limit
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more and items else None
    return CoursePage(items=items, next_cursor=next_cursor)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def add_lesson(
    conn: Connection, course_id: uuid.UUID, title: str, body: str, position: int | None
) -> Lesson:
    """Insert a lesson at `position`, or after the last; 409 if the position is taken."""
    lesson_id = uuid.uuid4()
    try:
        cursor = await conn.execute(
            "INSERT INTO lessons (id, course_id, position, title, body) VALUES (%s, %s,"
            " COALESCE(%s, (SELECT COALESCE(max(position), 0) + 1 FROM lessons"
            " WHERE course_id = %s)), %s, %s) RETURNING id, course_id, position, title, body",
            (lesson_id, course_id, position, course_id, title, body),
        )
    except psycopg.errors.UniqueViolation:
        raise Conflict("A lesson already has this position in the course") from None
    row = await cursor.fetchone()
    assert row is not None  # noqa: S101 - RETURNING always yields the row
    return Lesson(**row)


async def load_lesson(
    conn: Connection, course_id: uuid.UUID, lesson_id: uuid.UUID
) -> Lesson | None:
    """A lesson of the course, or None."""
    cursor = await conn.execute(
        "SELECT id, course_id, position, title, body FROM lessons WHERE id = %s AND course_id = %s",
        (lesson_id, course_id),
    )
    row = await cursor.fetchone()
    return Lesson(**row) if row is not None else None
