"""What a write transaction costs PostgreSQL's CPU, on the services' own write paths.

The capacity plan sizes the primary at 400 write transactions per vCPU (pgbench
tpcb-like, lowered for RDS Multi-AZ's synchronous standby). That number bakes in the
commit's I/O, which this machine cannot reproduce (a local disk, no standby), so the plan
does not read these figures. They answer the CPU half of the question (docs/capacity.md,
"Short of USD 20,000"): how many of *our* transactions one core of PostgreSQL runs.

* `database_writes_quiz_attempt`: `grade_attempt` (the quiz and its questions read on the
  writer, then the attempt INSERTed), what `POST /quizzes/{id}/attempts` runs;
* `database_writes_refresh`: `rotate` (the spent token's UPDATE and its successor's
  INSERT in one transaction), what `POST /auth/refresh` runs, each token used once;
* `database_writes`: the lower of the two.

`CONNECTIONS` connections in a closed loop for `SECONDS` s each, with the server's
defaults (`synchronous_commit` on, `fsync` on); the CPU is that of exactly those
backends plus the server's background processes (WAL writer, checkpointer, background
writer, autovacuum), utime + stime from /proc, divided into the transactions run. Run it
with nothing else using this PostgreSQL: the background processes serve every database.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import psycopg
from psycopg.rows import dict_row

from benchmarks.database_reads import cpu_seconds
from benchmarks.figures import Figure
from benchmarks.harness import fresh_database
from benchmarks.seed import seed_courses
from services.auth.refresh_tokens import rotate, start_family
from services.course.quizzes import create_quiz, grade_attempt
from services.course.schemas import Question, QuizCreate
from services.runtime.database import Connection
from services.runtime.tokens import Principal

CONNECTIONS = 8
SECONDS = 10
COURSES = 2_000
USERS = 10_000
QUESTIONS = 5
TTL_SECONDS = 3600

Write = Callable[[Connection, random.Random], Awaitable[None]]
"""One write transaction; a factory per connection keeps any state it needs."""


async def _background_pids(conn: Connection) -> list[int]:
    cursor = await conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
    )
    return [row["pid"] for row in await cursor.fetchall()]


async def _loop(url: str, writes: Callable[[], Write], seconds: float) -> float:
    """Transactions per CPU-second of the backends and the server's background work."""
    conns = [
        await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
        for _ in range(CONNECTIONS)
    ]
    try:
        pids = [conn.info.backend_pid for conn in conns] + await _background_pids(conns[0])
        workers = [writes() for _ in conns]
        for conn, write in zip(conns, workers, strict=True):  # warm: plans cached
            for _ in range(20):
                await write(conn, random.Random())  # noqa: S311 - workload, not a secret
        stop = time.monotonic() + seconds
        before = cpu_seconds(pids)

        async def client(conn: Connection, write: Write, seed: int) -> int:
            draw, done = random.Random(seed), 0  # noqa: S311 - workload, not a secret
            while time.monotonic() < stop:
                await write(conn, draw)
                done += 1
            return done

        counts = await asyncio.gather(
            *(client(c, w, i) for i, (c, w) in enumerate(zip(conns, workers, strict=True)))
        )
        used = cpu_seconds(pids) - before
    finally:
        for conn in conns:
            await conn.close()
    if used <= 0:
        raise RuntimeError("the server used no measurable CPU; run longer")
    return sum(counts) / used


async def _quizzes(url: str, courses: list[uuid.UUID]) -> list[uuid.UUID]:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        cursor = await conn.execute(
            "SELECT DISTINCT ON (course_id) course_id, id FROM lessons ORDER BY course_id, position"
        )
        lessons = {row["course_id"]: row["id"] for row in await cursor.fetchall()}
        questions = [
            Question(prompt=f"Question {n}?", choices=["a", "b", "c", "d"], answer_index=n % 4)
            for n in range(QUESTIONS)
        ]
        return [
            (
                await create_quiz(
                    conn, course, QuizCreate(lesson_id=lessons[course], questions=questions)
                )
            ).id
            for course in courses
        ]


def _users(url: str, count: int) -> list[uuid.UUID]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "INSERT INTO users (id, email, password_hash, display_name, role)"
            " SELECT gen_random_uuid(), 'writer' || n || '@bench.example', 'not-a-hash',"
            " 'Writer ' || n, 'student' FROM generate_series(1, %s) n RETURNING id",
            (count,),
        ).fetchall()
        return [row[0] for row in rows]


def _paths(quizzes: list[uuid.UUID], users: list[uuid.UUID]) -> dict[str, Callable[[], Write]]:
    def quiz_attempt() -> Write:
        async def write(conn: Connection, draw: random.Random) -> None:
            learner = Principal(user_id=draw.choice(users), role="student")
            answers = [draw.randrange(4) for _ in range(QUESTIONS)]
            await grade_attempt(conn, draw.choice(quizzes), learner, answers)

        return write

    def refresh() -> Write:
        token: list[str] = []  # this connection's chain: each token is spent once

        async def write(conn: Connection, draw: random.Random) -> None:
            if not token:
                issued = await start_family(conn, draw.choice(users), TTL_SECONDS)
                token.append(issued.token)
            rotation = await rotate(conn, token[0], TTL_SECONDS)
            token[0] = rotation.successor.token

        return write

    return {"quiz_attempt": quiz_attempt, "refresh": refresh}


def run(quick: bool) -> list[Figure]:
    """Each write path in turn on one seeded database."""
    seconds = 3 if quick else SECONDS
    courses, users = (200, 1_000) if quick else (COURSES, USERS)
    with fresh_database("bench_writes") as url:
        print(f"  seeding {courses:,} courses with a quiz, {users:,} users...", file=sys.stderr)
        quizzes = asyncio.run(_quizzes(url, seed_courses(url, courses)))
        paths = _paths(quizzes, _users(url, users))
        rates = {}
        for name, writes in paths.items():
            print(f"  {name}: {CONNECTIONS} connections for {seconds} s...", file=sys.stderr)
            rates[name] = asyncio.run(_loop(url, writes, seconds))
    labels = {
        "quiz_attempt": f"quiz attempt graded and stored ({QUESTIONS} questions)",
        "refresh": "refresh token rotated (UPDATE + INSERT)",
    }
    figures = [
        Figure(f"database_writes_{name}", f"PostgreSQL tx per CPU-s: {labels[name]}", rate, "tx/s")
        for name, rate in rates.items()
    ]
    slowest = min(rates, key=rates.__getitem__)
    figures.append(
        Figure(
            "database_writes",
            f"PostgreSQL tx per CPU-s, the costliest write path ({CONNECTIONS} connections)",
            rates[slowest],
            "tx/s",
            extra={"write_path": slowest},
        )
    )
    return figures
