"""Requests/s and latency of the hot HTTP endpoints, against a bare ASGI app (suite `http`).

Every server is one uvicorn worker process started as a pod starts it (`eduscale serve`,
see `servers.py`), pinned to one CPU, on real PostgreSQL and Redis, with the production
log level (one JSON access line per request). wrk drives it from another process pinned
to another CPU (`wrk.py`). The reference, `bare_asgi`, is the same server answering the
course's exact bytes without routing, middleware or I/O: the ceiling for any Python
handler on this machine.

The services run with analytics on, as in production: their `EventEmitter` sends to a
Tansu broker started for the suite, holding `analytics.events` with prod's partition
count. Every `GET /courses/{id}` emits a `course_viewed` event, which the pod buffers,
encodes and produces (zstd batches) on its own CPU: a per-request cost the Course figures,
and the pods the capacity plan sizes from them, must carry. Without a broker the emitter
would drop each event at `emit()` and the figure would leave that cost out. So this is
checked, not assumed: the broker's end offsets on the topic count the events it received
while each Course endpoint ran (one endpoint runs at a time, and the topic is let settle
after each), `events_per_request` (about 1) is recorded with the figure, and a run in
which the broker did not get one event per request is refused. The analytics sink is
not the pod's work (in production it is its own deployment, writing to a ClickHouse
server), so the servers do not run it (`ANALYTICS_LOCAL_SINK=false`). Auth emits no events.

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

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.event_wire import PARTITIONS as PROD_PARTITIONS
from benchmarks.figures import Figure
from benchmarks.harness import JWT_SECRET, REDIS_URL, Broker, flushed_redis, fresh_database
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
from contracts.topics import ANALYTICS_EVENTS
from services.analytics.settings import AnalyticsSettings

__all__ = ["run"]

SHORTEST_TTL = "1"
"""The smallest TTL the settings accept: an uncached run's entries die within a second."""
CONNECTIONS = 32
LOGIN_CONNECTIONS = 8
"""Argon2id takes 64 MiB per verification; more parallel logins only queue on the CPU."""
WARMUP_SHARE = 5
"""A pool's last fifth warms up; the rest is measured."""
SETTLE_SECONDS = 5 * AnalyticsSettings().flush_interval_ms / 1000
"""The analytics topic is settled once its end offsets held this long: five hand-overs."""
SETTLE_LIMIT_SECONDS = 30.0
_END_OF_PARTITION = KafkaError._PARTITION_EOF  # noqa: SLF001 - a public constant


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
    runs: int = 0
    """wrk runs so far, warm-up included."""
    events: int | None = None
    """Events the broker received while this endpoint ran (None: not counted)."""


@dataclass(frozen=True)
class _ServerSpec:
    """A service server: which service, with which settings, on its own database copy."""

    service: str
    overrides: dict[str, str] = field(default_factory=dict)
    emits: bool = False
    """Sends an analytics event per request (`course_viewed`): the broker must get each."""


_SERVERS = {
    "course": _ServerSpec("course", emits=True),
    "course-uncached": _ServerSpec(
        "course", {"CONTENT_CACHE_TTL_SECONDS": SHORTEST_TTL}, emits=True
    ),
    "auth": _ServerSpec("auth"),
    "auth-uncached": _ServerSpec("auth", {"PROFILE_CACHE_TTL_SECONDS": SHORTEST_TTL}),
    "auth-login": _ServerSpec("auth"),
    "auth-refresh": _ServerSpec("auth"),
}


def _environ(
    database_url: str, overrides: dict[str, str], kafka: Mapping[str, str]
) -> dict[str, str]:
    """A service server's environment; `kafka` is the broker's (`Broker.environ()`)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "INFO",  # production's: one access line per request is part of the cost
        # Analytics on, as in production: each event is buffered, encoded and produced on
        # the pod's CPU. The sink is not the pod's work (in production it is its own
        # deployment, writing to a ClickHouse server): with the embedded store the Course
        # service would run it in-process, on the measured CPU.
        **kafka,
        "ANALYTICS_LOCAL_SINK": "false",
        **overrides,
    }


class AnalyticsBroker(Broker):
    """Tansu holding the topic the services emit to, with prod's partition count."""

    def create_topics(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        topic = ANALYTICS_EVENTS.name
        admin.create_topics([NewTopic(topic, PROD_PARTITIONS, 1)])[topic].result(10)


@contextmanager
def analytics_broker() -> Iterator[AnalyticsBroker]:
    """A broker for the suite's servers, stopped (its data lost) at the end.

    Started on wrk's CPU: Tansu and this process's relay threads (created by the start)
    inherit it, and keep off the measured server's core. A pod does not share its core
    with a broker, and the bare app, the figures' reference, sends it nothing: left to
    the scheduler, the broker's work during a course round landed partly on the server's
    core and was counted against the course read.
    """
    broker = AnalyticsBroker()
    if WRK_CPU is None or not hasattr(os, "sched_setaffinity"):
        broker.start()
    else:
        everywhere = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {WRK_CPU})  # this thread only: what it starts inherits it
        try:
            broker.start()
        finally:
            os.sched_setaffinity(0, everywhere)
    try:
        yield broker
    finally:
        broker.stop()


WATERMARK_ATTEMPTS = 5
"""Tries at one partition's high watermark before the run is given up."""


class EventCount:
    """The events the broker holds on the analytics topic, partition by partition.

    A partition's end is the offset after its last record (one offset per event, from 0:
    the broker is fresh). Its high watermark alone will not do on Tansu, which answers
    the last batch's first offset plus one; so the last batch is read, from that offset
    to the partition's end. On Kafka the same reading finds the high watermark.
    """

    def __init__(self, bootstrap: str) -> None:
        self.topic = ANALYTICS_EVENTS.name
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "bench-http-events",  # never joined: partitions are assigned
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "log_level": 0,
            }
        )
        metadata = self._consumer.list_topics(self.topic, timeout=10)
        partitions = metadata.topics[self.topic].partitions
        self._partitions = [TopicPartition(self.topic, number) for number in partitions]

    def _watermarks(self) -> list[int]:
        """Each partition's high watermark: it moves with every batch the broker takes."""
        return [self._watermark(partition) for partition in self._partitions]

    def _watermark(self, partition: TopicPartition) -> int:
        """One partition's high watermark, asking again after a metadata refresh.

        librdkafka answers "unknown partition" while its metadata of the topic is being
        refreshed (seen here against a busy Tansu); the partition did not go away.
        """
        for _ in range(WATERMARK_ATTEMPTS - 1):
            try:
                return int(
                    self._consumer.get_watermark_offsets(partition, timeout=10, cached=False)[1]
                )
            except KafkaException as error:
                if error.args[0].code() != KafkaError._UNKNOWN_PARTITION:  # noqa: SLF001
                    raise
                self._consumer.list_topics(self.topic, timeout=10)
                time.sleep(0.2)
        return int(self._consumer.get_watermark_offsets(partition, timeout=10, cached=False)[1])

    def total(self) -> int:
        """Events on the topic now: every partition's last record's offset plus one."""
        starts = {
            partition.partition: high - 1
            for partition, high in zip(self._partitions, self._watermarks(), strict=True)
            if high > 0
        }
        ends = dict.fromkeys(starts, 0)
        self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])
        deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
        try:
            while starts:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.topic}: partitions {sorted(starts)} never ended")
                message = self._consumer.poll(0.5)
                if message is None:
                    continue
                error, number = message.error(), message.partition()
                if error is not None and error.code() == _END_OF_PARTITION:
                    starts.pop(number, None)
                elif error is not None:
                    raise KafkaException(error)
                else:
                    ends[number] = max(ends[number], message.offset() + 1)
        finally:
            self._consumer.unassign()
        return sum(ends.values())

    def settled(self) -> int:
        """The total once the topic stopped growing: the emitters handed over what they held."""
        marks, since = self._watermarks(), time.monotonic()
        deadline = since + SETTLE_LIMIT_SECONDS
        while time.monotonic() - since < SETTLE_SECONDS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.topic} kept growing for {SETTLE_LIMIT_SECONDS} s")
            time.sleep(0.1)
            now = self._watermarks()
            if now != marks:
                marks, since = now, time.monotonic()
        return self.total()

    def close(self) -> None:
        self._consumer.close()


@contextmanager
def event_count(broker: AnalyticsBroker) -> Iterator[EventCount]:
    count = EventCount(broker.bootstrap)
    try:
        yield count
    finally:
        count.close()


def _emits(endpoint: _Endpoint) -> bool:
    spec = _SERVERS.get(endpoint.server)
    return spec is not None and spec.emits


def check_events(endpoint: _Endpoint, stats: Callable[[], str] = lambda: "") -> None:
    """`RuntimeError` unless the broker received an event per request the server answered.

    Up to one request per connection and run may have been answered after wrk stopped
    counting, so a few more events than requests are fine; fewer mean events were dropped
    (the emitter disabled, or losing them), and the figure would leave out their cost.
    `stats` says what the server's emitter counted, for the message.
    """
    events = endpoint.events or 0
    in_flight = endpoint.runs * endpoint.connections
    if not endpoint.sent <= events <= endpoint.sent + in_flight:
        raise RuntimeError(
            f"{endpoint.key}: the broker received {events} events on {ANALYTICS_EVENTS.name}"
            f" for {endpoint.sent} requests (up to {in_flight} more may have been in flight):"
            f" not one analytics event per request, as a pod sends them. {stats()}".rstrip()
        )


def _emitter_stats(server: Server) -> str:
    """What the server's emitter says it did (`/health/analytics`), for an error message."""
    try:
        return f"Its emitter: {httpx.get(server.url + '/health/analytics', timeout=5).text}"
    except httpx.HTTPError as error:
        return f"Its emitter's counters could not be read: {error}"


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
def _servers(
    databases: dict[str, str], scratch: Path, kafka: Mapping[str, str]
) -> Iterator[dict[str, Server]]:
    """Every server running: the services (on the broker), then the bare app (on nothing)."""
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                running_server(
                    service_command(spec.service),
                    _environ(databases[name], spec.overrides, kafka),
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


def _drive(
    endpoint: _Endpoint,
    server: Server,
    seconds: float,
    requests: Path,
    events: EventCount | None = None,
) -> WrkResult:
    """One run of wrk; with `events`, an emitting endpoint's events are counted and checked.

    Only one endpoint runs at a time and the topic is settled after each emitting one, so
    what the topic gained meanwhile is this endpoint's.
    """
    counter = events if _emits(endpoint) else None
    before = counter.total() if counter is not None else 0
    load = _load(seconds, endpoint.connections)
    result = run_wrk(server.url, load, requests, method=endpoint.method, script=endpoint.script)
    wait_idle(server)  # what the server still had queued must not land on the next run
    if endpoint.check is not None:
        endpoint.check(result)
    endpoint.sent += result.requests
    endpoint.runs += 1
    if counter is not None:
        endpoint.events = (endpoint.events or 0) + counter.settled() - before
        check_events(endpoint, lambda: _emitter_stats(server))
    return result


def _measure(
    endpoints: list[_Endpoint], servers: dict[str, Server], plan: _Plan, events: EventCount
) -> None:
    events.settled()  # the servers' start-up requests (the bare app's bytes) are not counted
    for endpoint in endpoints:
        server = servers[endpoint.server]
        _drive(endpoint, server, plan.warmup_seconds, endpoint.requests.warmup, events)
    for number in range(1, plan.rounds + 1):
        print(f"   round {number} of {plan.rounds}", file=sys.stderr, flush=True)
        for endpoint in endpoints:
            server = servers[endpoint.server]
            requests = endpoint.requests.rounds[number - 1]
            endpoint.rounds.append(_drive(endpoint, server, plan.round_seconds, requests, events))


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
    if endpoint.events is not None:
        extra["events_per_request"] = round(endpoint.events / max(endpoint.sent, 1), 3)
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
            with (
                analytics_broker() as broker,
                event_count(broker) as events,
                _servers(databases, Path(scratch), broker.environ()) as servers,
            ):
                _measure(endpoints, servers, plan, events)
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
