"""What a read costs PostgreSQL: queries per CPU-second of the server, by read path.

The capacity plan sizes read replicas by the reads that miss the cache. How many reads a
vCPU of PostgreSQL serves was a planning guess (a tenth of pgbench -S); this measures it
for the queries the services actually send, with the services' own functions:

* `database_reads_course`: `load_course` (the course row, then its lessons: two queries)
  for random courses, what a cache miss of `GET /courses/{id}` runs;
* `database_reads_catalogue`: `list_courses`, a page of 20 newest first from a random
  cursor, what `GET /courses` runs (title searches are not in the workload model);
* `database_reads_profile`: `load_profile`, a user row by id (`GET /auth/me`, missed);
* `database_reads`: the lowest of the three, the rate the plan sizes replicas by.

Each runs `CONNECTIONS` connections in a closed loop for `SECONDS` s on a fresh, migrated
and analysed database (`COURSES` courses of three lessons, `USERS` users, so the indexes
are not toy-sized) and divides the queries run by the CPU time their server processes
used (utime + stime from /proc, read for exactly those backends: other databases' load on
a shared machine is not counted). Figures are queries per CPU-second of one core: the
`reads_per_vcpu` of the model. Network and client time are not in the figure; the
server's parse, plan, execute and send are.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid

import psycopg

from benchmarks.figures import Figure
from benchmarks.harness import fresh_database
from benchmarks.postgres_cpu import CONNECTIONS, Step, path_figures, work_per_cpu_second
from benchmarks.seed import seed_courses
from services.auth.users import load_profile
from services.course.catalogue import encode_cursor, list_courses, load_course
from services.runtime.database import Connection

SECONDS = 10
COURSES = 20_000
USERS = 100_000
PAGE = 20


def _paths(courses: list[uuid.UUID], users: list[uuid.UUID], cursors: list[str]) -> dict[str, Step]:
    async def course(conn: Connection, draw: random.Random) -> int:
        if await load_course(conn, draw.choice(courses)) is None:
            raise RuntimeError("a seeded course is missing")
        return 2  # the course row, then its lessons

    async def catalogue(conn: Connection, draw: random.Random) -> int:
        page = await list_courses(conn, limit=PAGE, cursor=draw.choice(cursors), text=None)
        if len(page.items) != PAGE:
            raise RuntimeError("a catalogue page came back short")
        return 1

    async def profile(conn: Connection, draw: random.Random) -> int:
        if await load_profile(conn, draw.choice(users)) is None:
            raise RuntimeError("a seeded user is missing")
        return 1

    return {"course": course, "catalogue": catalogue, "profile": profile}


def _seed(url: str, courses: int, users: int) -> tuple[list[uuid.UUID], list[uuid.UUID], list[str]]:
    course_ids = seed_courses(url, courses)
    with psycopg.connect(url, autocommit=True) as conn:
        user_ids = [
            row[0]
            for row in conn.execute(
                "INSERT INTO users (id, email, password_hash, display_name, role)"
                " SELECT gen_random_uuid(), 'reader' || n || '@bench.example', 'not-a-hash',"
                " 'Reader ' || n, 'student' FROM generate_series(1, %s) n RETURNING id",
                (users,),
            ).fetchall()
        ]
        newest_first = conn.execute(
            "SELECT created_at, id FROM courses ORDER BY created_at DESC, id DESC"
        ).fetchall()
        conn.execute("VACUUM ANALYZE")
    # A cursor anywhere in the catalogue but the last page.
    cursors = [encode_cursor(at, id_) for at, id_ in newest_first[: -PAGE - 1]]
    return course_ids, user_ids, cursors


def run(quick: bool) -> list[Figure]:
    """Each read path in turn on one seeded database."""
    seconds = 3 if quick else SECONDS
    courses, users = (2_000, 10_000) if quick else (COURSES, USERS)
    with fresh_database("bench_reads") as url:
        print(f"  seeding {courses:,} courses and {users:,} users...", file=sys.stderr)
        paths = _paths(*_seed(url, courses, users))
        rates = {}
        for name, read in paths.items():
            print(f"  {name}: {CONNECTIONS} connections for {seconds} s...", file=sys.stderr)
            loop = work_per_cpu_second(url, lambda read=read: read, seconds, warm_up=50)
            rates[name] = asyncio.run(loop)
    shape = f"{CONNECTIONS} connections, {courses:,} courses, {users:,} users"
    labels = {
        "course": "course row + lessons (load_course)",
        "catalogue": f"catalogue page of {PAGE} (list_courses)",
        "profile": "user row by id (load_profile)",
    }
    return path_figures("database_reads", labels, rates, "queries/s", shape)
