"""Benchmark data, inserted in bulk with SQL (the HTTP API would take minutes for it).

Rows look like what users create: courses with a description and three lessons, student
accounts with a real Argon2id hash of one known password (hashed once: every login still
verifies it at full cost). Pools are large so that "uncached" runs can cycle through more
ids than a short cache TTL can hold (see `http_endpoints.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

from benchmarks.harness import POSTGRES_URL, database_url

__all__ = ["LESSONS_PER_COURSE", "PASSWORD", "seed_courses", "seed_users", "table_index_scans"]

PASSWORD = "benchmark password 1"  # noqa: S105 - the seeded accounts' known password
LESSONS_PER_COURSE = 3
_DESCRIPTION = (
    "A first course in fractions: parts of a whole, equivalent fractions, comparing and "
    "adding them, with worked examples and short exercises after every lesson."
)
_LESSON_BODY = "A fraction names a part of a whole. " * 40


def seed_courses(database_url: str, count: int) -> list[uuid.UUID]:
    """`count` courses of one owner, each with three lessons; their ids in order."""
    owner = uuid.uuid4()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "INSERT INTO courses (id, owner_id, title, description)"
            " SELECT gen_random_uuid(), %s, 'Fractions ' || n, %s FROM generate_series(1, %s) n"
            " RETURNING id",
            (owner, _DESCRIPTION, count),
        ).fetchall()
        conn.execute(
            "INSERT INTO lessons (id, course_id, position, title, body)"
            " SELECT gen_random_uuid(), c.id, p, 'Lesson ' || p, %s"
            " FROM courses c, generate_series(1, %s) p",
            (_LESSON_BODY, LESSONS_PER_COURSE),
        )
        conn.execute("ANALYZE courses; ANALYZE lessons")
    return [row[0] for row in rows]


def seed_users(database_url: str, count: int) -> list[tuple[uuid.UUID, str]]:
    """`count` students who log in with `PASSWORD`; (id, email) in order."""
    password_hash = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY).hash(PASSWORD)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "INSERT INTO users (id, email, password_hash, display_name, role)"
            " SELECT gen_random_uuid(), 'student' || n || '@bench.example', %s,"
            " 'Student ' || n, 'student' FROM generate_series(1, %s) n RETURNING id, email",
            (password_hash, count),
        ).fetchall()
        conn.execute("ANALYZE users")
    return [(row[0], row[1]) for row in rows]


def table_index_scans(database_url: str, table: str) -> int:
    """Index scans of `table` so far, as PostgreSQL's statistics count them.

    Backends report their counts when they exit, so read this after the server stopped.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def database_copy(template_url: str, label: str) -> Iterator[str]:
    """A copy of the (idle) database at `template_url`, dropped afterwards.

    One per measured server, so PostgreSQL's per-database statistics count that server's
    reads alone.
    """
    source = urlsplit(template_url).path.lstrip("/")
    name = f"{source}_{label}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
