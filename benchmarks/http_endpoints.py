"""Requests/s and latency of the hot HTTP endpoints, against a bare ASGI app (suite `http`).

Every server is one uvicorn worker process started as a pod starts it (`eduscale serve`,
see `servers.py`), pinned to one CPU, on real PostgreSQL and Redis, with the production
log level (one JSON access line per request). wrk drives it from another process pinned
to another CPU (`wrk.py`). The reference, `bare_asgi`, is the same server answering the
course's exact bytes without routing, middleware or I/O: the ceiling for any Python
handler on this machine.

Side by side, in rounds: all servers run at once (idle ones cost nothing) and each round
drives every endpoint in turn for a slice of the measuring time. A figure is the median
of its rounds, so a burst of load from elsewhere on a shared machine lands on one round
of every endpoint instead of on one endpoint's whole run, and the ratios hold.

How "uncached" really misses the cache: wrk cannot delete a key before each request, so
the service runs with the shortest TTL its settings allow (1 s: CONTENT_CACHE_TTL_SECONDS,
PROFILE_CACHE_TTL_SECONDS) and wrk cycles through a pool of distinct courses (or users,
each with their own token) far larger than one second of requests: an id comes back only
after the whole pool or in a later round, long after its entry expired. So every request
takes the real miss path (GET from Redis, nothing; read from PostgreSQL; SET with TTL).
This is checked, not assumed: every service server has its own copy of the database, and
PostgreSQL's statistics of that copy count the index scans of `courses` (or `users`);
`db_reads_per_request` (about 1 uncached, about 0 cached) is recorded with the figure.
"Cached" asks for one hot course (or one user) the whole run, with the default TTLs.

`POST /auth/login` verifies a real Argon2id hash (RFC 9106 low-memory profile) on every
request, cycling through many accounts with the right password.

`POST /auth/refresh` (`auth_refresh`, against `auth_login`: what a returning client costs
instead of a password) spends a real refresh token on every request: each is single-use,
so `lua/refresh.lua` chains them, sending the successor each answer carries, and the run is
refused unless every answer was a 200 with a new token and the server's database spent one
token per answer without revoking any family (`refresh_rotation.py`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec

from benchmarks.figures import Figure
from benchmarks.harness import JWT_SECRET, REDIS_URL, flushed_redis, fresh_database
from benchmarks.refresh_rotation import (
    REFRESH_SCRIPT,
    RESERVE_PER_CONNECTION,
    check_rotations,
    check_stored_rotations,
    issue_refresh_tokens,
    stored_rotations,
    write_reserves,
)
from benchmarks.seed import (
    PASSWORD,
    database_copy,
    seed_courses,
    seed_users,
    table_index_scans,
)
from benchmarks.servers import (
    SERVER_CPU,
    SERVER_WORKERS,
    WRK_CPU,
    Server,
    bare_command,
    running_server,
    service_command,
    wait_idle,
)
from benchmarks.wrk import (
    REQUESTS_SCRIPT,
    WrkLoad,
    WrkResult,
    require_wrk,
    run_wrk,
    write_requests,
)

__all__ = ["run"]

SHORTEST_TTL = "1"
"""The smallest TTL the settings accept: an uncached run's entries die within a second."""
CONNECTIONS = 32
LOGIN_CONNECTIONS = 8
"""Argon2id takes 64 MiB per verification; more parallel logins only queue on the CPU."""
WARMUP_SHARE = 5
"""A pool's last fifth warms up; the rest is measured."""


@dataclass(frozen=True)
class _Plan:
    rounds: int
    round_seconds: float
    warmup_seconds: float
    pool: int
    """Courses and users cycled through by uncached runs."""


_QUICK = _Plan(rounds=2, round_seconds=2, warmup_seconds=1, pool=5_000)
_FULL = _Plan(rounds=3, round_seconds=5, warmup_seconds=3, pool=30_000)


@dataclass(frozen=True)
class _Requests:
    """Request files for wrk: one to warm the server up, one per measured round."""

    warmup: Path
    rounds: tuple[Path, ...]


@dataclass
class _Endpoint:
    """One measured endpoint, the server it runs on, and its rounds so far."""

    key: str
    label: str
    server: str
    requests: _Requests
    method: str = "GET"
    connections: int = CONNECTIONS
    table: str | None = None
    """The table whose index scans count this endpoint's database reads."""
    reference: str = "bare_asgi"
    script: Path = REQUESTS_SCRIPT
    check: Callable[[WrkResult], None] | None = None
    """Refuses a run that did not measure what the figure says (besides wrk's own checks)."""
    rounds: list[WrkResult] = field(default_factory=list)
    sent: int = 0
    """Requests sent in warm-up and rounds (what the database reads are divided by)."""


@dataclass(frozen=True)
class _ServerSpec:
    """A service server: which service, with which settings, on its own database copy."""

    service: str
    overrides: dict[str, str] = field(default_factory=dict)


_SERVERS = {
    "course": _ServerSpec("course"),
    "course-uncached": _ServerSpec("course", {"CONTENT_CACHE_TTL_SECONDS": SHORTEST_TTL}),
    "auth": _ServerSpec("auth"),
    "auth-uncached": _ServerSpec("auth", {"PROFILE_CACHE_TTL_SECONDS": SHORTEST_TTL}),
    "auth-login": _ServerSpec("auth"),
    "auth-refresh": _ServerSpec("auth"),
}


def _environ(database_url: str, overrides: dict[str, str]) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "INFO",  # production's: one access line per request is part of the cost
        **overrides,
    }


def _tokens(users: list[tuple[uuid.UUID, str]]) -> list[str]:
    from services.runtime.settings import ServiceSettings  # noqa: PLC0415
    from services.runtime.tokens import Principal, TokenIssuer  # noqa: PLC0415

    settings = ServiceSettings.from_env(
        {"DATABASE_URL": "postgresql://unused/x", "REDIS_URL": REDIS_URL, "JWT_SECRET": JWT_SECRET}
    )
    issuer = TokenIssuer(settings)
    return [issuer.issue(Principal(user_id=user_id, role="student")) for user_id, _ in users]


def _requests(
    scratch: Path, name: str, lines: list[tuple[str, str, str]], rounds: int
) -> _Requests:
    """The warm-up's and the measurement's requests (disjoint when there are many).

    The warm-up takes a pool's last fifth, so the measurement never meets an id the
    warm-up cached a moment before. Every round cycles through the same requests.
    """
    if len(lines) == 1:
        one = write_requests(scratch / f"{name}.tsv", lines)
        return _Requests(warmup=one, rounds=(one,) * rounds)
    split = len(lines) - len(lines) // WARMUP_SHARE
    return _Requests(
        warmup=write_requests(scratch / f"{name}.warmup.tsv", lines[split:]),
        rounds=(write_requests(scratch / f"{name}.tsv", lines[:split]),) * rounds,
    )


def _refresh_requests(
    database_url: str, users: list[tuple[uuid.UUID, str]], rounds: int, scratch: Path
) -> _Requests:
    """Fresh refresh tokens (a family per user) for the warm-up and each round apart."""
    runs = rounds + 1
    count = runs * CONNECTIONS * RESERVE_PER_CONNECTION
    tokens = issue_refresh_tokens(database_url, [user for user, _ in users[:count]])
    warmup, *measured = write_reserves(scratch, "refresh", tokens, runs)
    return _Requests(warmup=warmup, rounds=tuple(measured))


def _refresh_endpoint(
    database_url: str, users: list[tuple[uuid.UUID, str]], rounds: int, scratch: Path
) -> _Endpoint:
    """`auth_refresh`: a rotation per request, refused otherwise, against `auth_login`."""
    return _Endpoint(
        "auth_refresh",
        "POST /auth/refresh (a rotation each)",
        "auth-refresh",
        _refresh_requests(database_url, users, rounds, scratch),
        method="POST",
        reference="auth_login",
        script=REFRESH_SCRIPT,
        check=check_rotations,
    )


def _endpoints(database_url: str, plan: _Plan, scratch: Path) -> list[_Endpoint]:
    """Seed the data and prepare every endpoint's requests (the bare app's first)."""
    pool, rounds = plan.pool, plan.rounds
    print(f"   seeding {pool:,} courses and users", file=sys.stderr, flush=True)
    courses = seed_courses(database_url, pool + 1)
    users = seed_users(database_url, pool + 1)
    tokens = _tokens(users)
    hot_course, hot_token = courses[0], tokens[0]
    logins = [
        ("/auth/login", "", msgspec.json.encode({"email": email, "password": PASSWORD}).decode())
        for _, email in users
    ]
    return [
        _Endpoint(
            "bare_asgi",
            "bare ASGI app, same bytes (ceiling)",
            "bare",
            _requests(scratch, "bare", [(f"/courses/{hot_course}", "", "")], rounds),
        ),
        _Endpoint(
            "course_get_cached",
            "GET /courses/{id}, cached",
            "course",
            _requests(scratch, "course_hot", [(f"/courses/{hot_course}", "", "")], rounds),
            table="courses",
        ),
        _Endpoint(
            "course_get_uncached",
            "GET /courses/{id}, uncached (cache miss)",
            "course-uncached",
            _requests(
                scratch, "course_pool", [(f"/courses/{c}", "", "") for c in courses[1:]], rounds
            ),
            table="courses",
        ),
        _Endpoint(
            "auth_me_cached",
            "GET /auth/me, cached",
            "auth",
            _requests(scratch, "me_hot", [("/auth/me", f"Bearer {hot_token}", "")], rounds),
            table="users",
        ),
        _Endpoint(
            "auth_me_uncached",
            "GET /auth/me, uncached (cache miss)",
            "auth-uncached",
            _requests(
                scratch, "me_pool", [("/auth/me", f"Bearer {t}", "") for t in tokens[1:]], rounds
            ),
            table="users",
        ),
        _Endpoint(
            "auth_login",
            "POST /auth/login (Argon2id verify)",
            "auth-login",
            _requests(scratch, "login", logins, rounds),
            method="POST",
            connections=LOGIN_CONNECTIONS,
        ),
        _refresh_endpoint(database_url, users, rounds, scratch),
    ]


@contextmanager
def _databases(template_url: str) -> Iterator[dict[str, str]]:
    """A copy of the seeded database per service server, so each one's reads count alone."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(database_copy(template_url, name.replace("-", "_")))
            for name in _SERVERS
        }


@contextmanager
def _servers(databases: dict[str, str], scratch: Path) -> Iterator[dict[str, Server]]:
    """Every server running: the services, then the bare app with the course's bytes."""
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                running_server(
                    service_command(spec.service), _environ(databases[name], spec.overrides)
                )
            )
            for name, spec in _SERVERS.items()
        }
        body = scratch / "course.json"
        body.write_bytes(_course_body(servers["course"], scratch))
        servers["bare"] = stack.enter_context(
            running_server(bare_command(body), {}, ready_path="/")
        )
        yield servers


def _course_body(course: Server, scratch: Path) -> bytes:
    """The exact bytes `GET /courses/{id}` answers, for the bare app to send."""
    path = (scratch / "course_hot.tsv").read_text().split("\t", 1)[0]
    response = httpx.get(course.url + path, timeout=10)
    response.raise_for_status()
    return response.content


def _load(seconds: float, connections: int) -> WrkLoad:
    return WrkLoad(seconds=seconds, connections=connections, threads=1, cpu=WRK_CPU)


def _drive(endpoint: _Endpoint, server: Server, seconds: float, requests: Path) -> WrkResult:
    load = _load(seconds, endpoint.connections)
    result = run_wrk(server.url, load, requests, method=endpoint.method, script=endpoint.script)
    wait_idle(server)  # what the server still had queued must not land on the next run
    if endpoint.check is not None:
        endpoint.check(result)
    endpoint.sent += result.requests
    return result


def _measure(endpoints: list[_Endpoint], servers: dict[str, Server], plan: _Plan) -> None:
    for endpoint in endpoints:
        server = servers[endpoint.server]
        _drive(endpoint, server, plan.warmup_seconds, endpoint.requests.warmup)
    for number in range(1, plan.rounds + 1):
        print(f"   round {number} of {plan.rounds}", file=sys.stderr, flush=True)
        for endpoint in endpoints:
            server = servers[endpoint.server]
            requests = endpoint.requests.rounds[number - 1]
            endpoint.rounds.append(_drive(endpoint, server, plan.round_seconds, requests))


def _rotations(endpoint: _Endpoint, database_url: str) -> dict[str, float | str]:
    """The database's account of a refresh run, checked against wrk's (once stopped)."""
    stored = stored_rotations(database_url)
    runs = len(endpoint.rounds) + 1
    check_stored_rotations(stored, endpoint.sent, in_flight=runs * endpoint.connections)
    non_200 = sum(r.script_counts.get("non_200", 0) for r in endpoint.rounds)
    return {
        "non_200": non_200,
        "rotations_in_db": stored.spent,
        "db_rotations_per_request": round(stored.spent / max(endpoint.sent, 1), 3),
        "families_revoked": stored.revoked_families,
    }


def _figure(
    endpoint: _Endpoint, reads: int | None, rotations: dict[str, float | str] | None = None
) -> Figure:
    rates = [r.requests_per_second for r in endpoint.rounds]
    median = statistics.median
    extra: dict[str, float | str] = {
        "uvicorn_workers": SERVER_WORKERS,
        "server_cpus": 1 if SERVER_CPU is not None else "unpinned",
        "wrk_threads": 1,
        "wrk_connections": endpoint.connections,
        "rounds": len(rates),
        "round_seconds": round(median(r.seconds for r in endpoint.rounds), 2),
        "round_req_s": " / ".join(f"{rate:.1f}" for rate in rates),
        "requests": sum(r.requests for r in endpoint.rounds),
        "p75_ms": round(median(r.p75_ms for r in endpoint.rounds), 3),
        "p90_ms": round(median(r.p90_ms for r in endpoint.rounds), 3),
        **_SERVERS.get(endpoint.server, _ServerSpec("bare")).overrides,
    }
    if reads is not None:
        extra["db_reads_per_request"] = round(reads / max(endpoint.sent, 1), 3)
    extra.update(rotations or {})
    figure = Figure(
        endpoint.key,
        endpoint.label,
        round(median(rates), 1),
        "req/s",
        reference=None if endpoint.key == "bare_asgi" else endpoint.reference,
        p50_ms=round(median(r.p50_ms for r in endpoint.rounds), 3),
        p99_ms=round(median(r.p99_ms for r in endpoint.rounds), 3),
        extra=extra,
    )
    print(
        f"   {figure.key}: {figure.value:,.1f} req/s (rounds {extra['round_req_s']}),"
        f" p50 {figure.p50_ms} ms, p99 {figure.p99_ms} ms",
        file=sys.stderr,
        flush=True,
    )
    return figure


def run(quick: bool) -> list[Figure]:
    """Each endpoint, and the bare ASGI app, at saturation with one worker process."""
    require_wrk()
    plan = _QUICK if quick else _FULL
    flushed_redis()
    with (
        fresh_database("bench_http") as template_url,
        tempfile.TemporaryDirectory(prefix="eduscale-bench-") as scratch,
    ):
        endpoints = _endpoints(template_url, plan, Path(scratch))
        with _databases(template_url) as databases:
            with _servers(databases, Path(scratch)) as servers:
                _measure(endpoints, servers, plan)
            # Read once the servers stopped: backends report their counts as they exit.
            reads = {
                e.key: table_index_scans(databases[e.server], e.table)
                for e in endpoints
                if e.table is not None
            }
            rotations = {
                e.key: _rotations(e, databases[e.server])
                for e in endpoints
                if e.script == REFRESH_SCRIPT
            }
        figures = [_figure(e, reads.get(e.key), rotations.get(e.key)) for e in endpoints]
    flushed_redis()
    return figures
