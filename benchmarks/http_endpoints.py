"""Requests/s and latency of the hot HTTP endpoints, against a bare ASGI app (suite `http`).

Every server is one uvicorn worker process started as a pod starts it (`eduscale serve`,
see `servers.py`), pinned to one CPU, on real PostgreSQL (a fresh, migrated database)
and Redis, with the production log level (one JSON access line per request). wrk drives
it from another process pinned to another CPU (`wrk.py`). The reference, `bare_asgi`, is
the same server answering the course's exact bytes without routing, middleware or I/O:
the ceiling for any Python handler on this machine.

How "uncached" really misses the cache: wrk cannot delete a key before each request, so
the service runs with the shortest TTL its settings allow (1 s: CONTENT_CACHE_TTL_SECONDS,
PROFILE_CACHE_TTL_SECONDS) and wrk cycles through a pool of distinct courses (or users,
each with their own token) far larger than one second of requests: an id comes back only
after the whole pool, long after its entry expired. So every request takes the real miss
path (GET from Redis, nothing; read from PostgreSQL; SET with TTL). This is checked, not
assumed: PostgreSQL's own statistics count the index scans of `courses` (or `users`)
over the server's life, and `db_reads_per_request` (about 1 uncached, about 0 cached) is
recorded with the figure. "Cached" asks for one hot course (or one user) the whole run,
with the default TTLs.

`POST /auth/login` verifies a real Argon2id hash (RFC 9106 low-memory profile) on every
request, cycling through many accounts with the right password.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec

from benchmarks.figures import Figure
from benchmarks.harness import JWT_SECRET, REDIS_URL, flushed_redis, fresh_database
from benchmarks.seed import PASSWORD, seed_courses, seed_users, table_index_scans
from benchmarks.servers import (
    SERVER_CPU,
    SERVER_WORKERS,
    WRK_CPU,
    bare_command,
    running_server,
    service_command,
)
from benchmarks.wrk import WrkLoad, WrkResult, require_wrk, run_wrk, write_requests

__all__ = ["run"]

SHORTEST_TTL = "1"
"""The smallest TTL the settings accept: an uncached run's entries die within a second."""
CONNECTIONS = 32
LOGIN_CONNECTIONS = 8
"""Argon2id takes 64 MiB per verification; more parallel logins only queue on the CPU."""
WARMUP_SHARE = 5
"""One fifth of a pool warms up; the rest is measured."""


@dataclass(frozen=True)
class _Plan:
    seconds: float
    warmup_seconds: float
    pool: int
    """Courses and users cycled through by uncached runs."""


_QUICK = _Plan(seconds=4, warmup_seconds=1, pool=8_000)
_FULL = _Plan(seconds=15, warmup_seconds=3, pool=30_000)


@dataclass(frozen=True)
class _Requests:
    """Request files for wrk: one to warm the server up, one to measure."""

    warmup: Path
    measured: Path


@dataclass(frozen=True)
class _Data:
    database_url: str
    courses: list[uuid.UUID]
    users: list[tuple[uuid.UUID, str]]
    tokens: list[str]


def _environ(database_url: str, **overrides: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "INFO",  # production's: one access line per request is part of the cost
        **overrides,
    }


def _tokens(users: list[tuple[uuid.UUID, str]]) -> list[str]:
    from services.common.settings import ServiceSettings  # noqa: PLC0415
    from services.common.tokens import Principal, TokenIssuer  # noqa: PLC0415

    issuer = TokenIssuer(
        ServiceSettings.from_env(
            {
                "DATABASE_URL": "postgresql://unused/x",
                "REDIS_URL": REDIS_URL,
                "JWT_SECRET": JWT_SECRET,
            }
        )
    )
    return [issuer.issue(Principal(user_id=user_id, role="student")) for user_id, _ in users]


class _Bench:
    """One suite run: its data, plan, scratch directory and the figures so far."""

    def __init__(self, data: _Data, plan: _Plan, scratch: Path) -> None:
        self.data = data
        self.plan = plan
        self.scratch = scratch
        self.figures: list[Figure] = []

    def requests_file(self, name: str, lines: list[tuple[str, str, str]]) -> _Requests:
        """The warm-up's and the measurement's requests (disjoint when there are many).

        A pool's last fifth warms the server up and the rest is measured, so the measured
        run never meets an id the warm-up cached a moment before.
        """
        if len(lines) == 1:
            one = write_requests(self.scratch / f"{name}.tsv", lines)
            return _Requests(warmup=one, measured=one)
        split = len(lines) - len(lines) // WARMUP_SHARE
        return _Requests(
            warmup=write_requests(self.scratch / f"{name}.warmup.tsv", lines[split:]),
            measured=write_requests(self.scratch / f"{name}.tsv", lines[:split]),
        )

    def drive(
        self, url: str, requests: _Requests, *, method: str = "GET", connections: int = CONNECTIONS
    ) -> tuple[WrkResult, int]:
        """Warm up, then measure; also the number of requests sent in both."""
        warm = run_wrk(
            url, self._load(self.plan.warmup_seconds, connections), requests.warmup, method=method
        )
        measured = run_wrk(
            url, self._load(self.plan.seconds, connections), requests.measured, method=method
        )
        return measured, warm.requests + measured.requests

    @staticmethod
    def _load(seconds: float, connections: int) -> WrkLoad:
        return WrkLoad(seconds=seconds, connections=connections, threads=1, cpu=WRK_CPU)

    def record(
        self,
        key: str,
        label: str,
        result: WrkResult,
        connections: int,
        extra: dict[str, float | str] | None = None,
    ) -> None:
        print(
            f"   {key}: {result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f} ms,"
            f" p99 {result.p99_ms:.2f} ms",
            file=sys.stderr,
            flush=True,
        )
        self.figures.append(
            Figure(
                key,
                label,
                round(result.requests_per_second, 1),
                "req/s",
                reference=None if key == "bare_asgi" else "bare_asgi",
                p50_ms=round(result.p50_ms, 3),
                p99_ms=round(result.p99_ms, 3),
                extra={
                    "uvicorn_workers": SERVER_WORKERS,
                    "server_cpus": 1 if SERVER_CPU is not None else "unpinned",
                    "wrk_threads": 1,
                    "wrk_connections": connections,
                    "seconds": round(result.seconds, 2),
                    "requests": result.requests,
                    "p75_ms": round(result.p75_ms, 3),
                    "p90_ms": round(result.p90_ms, 3),
                    **(extra or {}),
                },
            )
        )

    def measure_service(
        self,
        key: str,
        label: str,
        service: str,
        requests: _Requests,
        *,
        table: str | None = None,
        method: str = "GET",
        connections: int = CONNECTIONS,
        **overrides: str,
    ) -> None:
        """Start the service, drive it, and (given `table`) count its database reads."""
        flushed_redis()
        before = table_index_scans(self.data.database_url, table) if table else 0
        with running_server(
            service_command(service), _environ(self.data.database_url, **overrides)
        ) as server:
            result, sent = self.drive(server.url, requests, method=method, connections=connections)
        extra: dict[str, float | str] = dict(overrides)
        if table:
            reads = table_index_scans(self.data.database_url, table) - before
            extra["db_reads_per_request"] = round(reads / max(sent, 1), 3)
        self.record(key, label, result, connections, extra)


@contextmanager
def _data(plan: _Plan) -> Iterator[_Data]:
    with fresh_database("bench_http") as database_url:
        print(f"   seeding {plan.pool:,} courses and users", file=sys.stderr, flush=True)
        courses = seed_courses(database_url, plan.pool + 1)
        users = seed_users(database_url, plan.pool + 1)
        yield _Data(database_url, courses, users, _tokens(users))


def _course_body(bench: _Bench, course_id: uuid.UUID) -> bytes:
    """The exact bytes `GET /courses/{id}` answers, for the bare app to send."""
    with running_server(service_command("course"), _environ(bench.data.database_url)) as server:
        response = httpx.get(f"{server.url}/courses/{course_id}", timeout=10)
    response.raise_for_status()
    return response.content


def _steps(bench: _Bench) -> list[Callable[[], None]]:
    data = bench.data
    hot_course, hot_user = data.courses[0], data.tokens[0]
    pool_courses, pool_tokens = data.courses[1:], data.tokens[1:]

    def bare() -> None:
        body = bench.scratch / "course.json"
        body.write_bytes(_course_body(bench, hot_course))
        requests = bench.requests_file("bare", [(f"/courses/{hot_course}", "", "")])
        with running_server(bare_command(body), {}, ready_path="/") as server:
            result, _ = bench.drive(server.url, requests)
        bench.record(
            "bare_asgi",
            "bare ASGI app, same bytes (ceiling)",
            result,
            CONNECTIONS,
            {"body_bytes": len(body.read_bytes())},
        )

    def course_cached() -> None:
        requests = bench.requests_file("course_hot", [(f"/courses/{hot_course}", "", "")])
        bench.measure_service(
            "course_get_cached",
            "GET /courses/{id}, cached",
            "course",
            requests,
            table="courses",
        )

    def course_uncached() -> None:
        lines = [(f"/courses/{course}", "", "") for course in pool_courses]
        bench.measure_service(
            "course_get_uncached",
            "GET /courses/{id}, uncached (cache miss)",
            "course",
            bench.requests_file("course_pool", lines),
            table="courses",
            CONTENT_CACHE_TTL_SECONDS=SHORTEST_TTL,
        )

    def me_cached() -> None:
        requests = bench.requests_file("me_hot", [("/auth/me", f"Bearer {hot_user}", "")])
        bench.measure_service(
            "auth_me_cached", "GET /auth/me, cached", "auth", requests, table="users"
        )

    def me_uncached() -> None:
        lines = [("/auth/me", f"Bearer {token}", "") for token in pool_tokens]
        bench.measure_service(
            "auth_me_uncached",
            "GET /auth/me, uncached (cache miss)",
            "auth",
            bench.requests_file("me_pool", lines),
            table="users",
            PROFILE_CACHE_TTL_SECONDS=SHORTEST_TTL,
        )

    def login() -> None:
        lines = [
            (
                "/auth/login",
                "",
                msgspec.json.encode({"email": email, "password": PASSWORD}).decode(),
            )
            for _, email in data.users
        ]
        bench.measure_service(
            "auth_login",
            "POST /auth/login (Argon2id verify)",
            "auth",
            bench.requests_file("login", lines),
            method="POST",
            connections=LOGIN_CONNECTIONS,
        )

    return [bare, course_cached, course_uncached, me_cached, me_uncached, login]


def run(quick: bool) -> list[Figure]:
    """Each endpoint, and the bare ASGI app, at saturation with one worker process."""
    require_wrk()
    plan = _QUICK if quick else _FULL
    with _data(plan) as data, tempfile.TemporaryDirectory(prefix="eduscale-bench-") as scratch:
        bench = _Bench(data, plan, Path(scratch))
        for step in _steps(bench):
            step()
        flushed_redis()
    return bench.figures
