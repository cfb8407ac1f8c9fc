"""What a write transaction costs PostgreSQL's CPU, on the services' own write paths.

The capacity plan sizes the primary at 400 write transactions per vCPU (pgbench
tpcb-like, lowered for RDS Multi-AZ's synchronous standby). That number bakes in the
commit's I/O, which this machine cannot reproduce (a local disk, no standby), so the plan
does not read these figures. They answer the CPU half of the question (docs/capacity.md,
"The USD 20,000 goal"): how many of *our* transactions one core of PostgreSQL runs.

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
import uuid
from collections.abc import Callable

import psycopg
from psycopg.rows import dict_row

from benchmarks.figures import Figure
from benchmarks.harness import fresh_database
from benchmarks.postgres_cpu import CONNECTIONS, Step, path_figures, work_per_cpu_second
from benchmarks.seed import seed_courses
from services.auth.refresh_tokens import rotate, start_family
from services.course.quizzes import create_quiz, grade_attempt
from services.course.schemas import Question, QuizCreate
from services.runtime.database import Connection
from services.runtime.tokens import Principal

SECONDS = 10
COURSES = 2_000
USERS = 10_000
QUESTIONS = 5
TTL_SECONDS = 3600


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


def _paths(quizzes: list[uuid.UUID], users: list[uuid.UUID]) -> dict[str, Callable[[], Step]]:
    def quiz_attempt() -> Step:
        async def write(conn: Connection, draw: random.Random) -> int:
            learner = Principal(user_id=draw.choice(users), role="student")
            answers = [draw.randrange(4) for _ in range(QUESTIONS)]
            await grade_attempt(conn, draw.choice(quizzes), learner, answers)
            return 1

        return write

    def refresh() -> Step:
        token: list[str] = []  # this connection's chain: each token is spent once

        async def write(conn: Connection, draw: random.Random) -> int:
            if not token:
                issued = await start_family(conn, draw.choice(users), TTL_SECONDS)
                token.append(issued.token)
            rotation = await rotate(conn, token[0], TTL_SECONDS)
            token[0] = rotation.successor.token
            return 1

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
            loop = work_per_cpu_second(url, writes, seconds, warm_up=20, with_background=True)
            rates[name] = asyncio.run(loop)
    labels = {
        "quiz_attempt": f"quiz attempt graded and stored ({QUESTIONS} questions)",
        "refresh": "refresh token rotated (UPDATE + INSERT)",
    }
    return path_figures("database_writes", labels, rates, "tx/s", f"{CONNECTIONS} connections")
