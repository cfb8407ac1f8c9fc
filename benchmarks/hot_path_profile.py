"""Where a cached read's CPU goes: py-spy samples of a service under wrk load.

Usage: `python -m benchmarks.hot_path_profile [--seconds 10]` (PostgreSQL, Redis and wrk
as for the `http` suite; py-spy is a dev dependency). It starts the Course and Auth
services exactly as the `http` suite does (`eduscale serve`, one worker, pinned to one
CPU, production log level, learning events sent to a Tansu broker: without one the
emitter drops each event at `emit()` and the profile leaves out building and producing
it), drives the cached `GET /courses/{id}` and `GET /auth/me`
with wrk, and samples the server's Python stacks with py-spy meanwhile (non-blocking,
so the sampler does not slow the server it measures). Each sample is charged to the
first part of the stack, from the leaf up, that a rule below names (the logging of an
access line is "logging" though its leaf is `json.dumps`), and the table gives each
part's share of the busy samples. docs/benchmarks.md publishes the result.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx

from benchmarks.harness import flushed_redis, fresh_database
from benchmarks.http_endpoints import _environ as service_environ
from benchmarks.http_endpoints import _tokens, analytics_broker
from benchmarks.seed import seed_courses, seed_users
from benchmarks.servers import WRK_CPU, Server, bare_command, running_server, service_command
from benchmarks.wrk import WrkLoad, run_wrk, write_requests

__all__ = ["EVENT_LOOP", "PARTS", "charge", "main"]

PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fast lane (services/runtime/hot_path*)", ("services/runtime/hot_path",)),
    ("access log", ("structlog/", "/logging/", "services/runtime/logs.py", "access_log")),
    ("HTTP metrics", ("services/runtime/http_metrics", "prometheus_client/")),
    ("Redis client", ("redis/", "hiredis", "services/runtime/redis_")),
    ("token verification", ("jwt/", "services/runtime/tokens.py")),
    ("analytics event", ("services/analytics/",)),
    ("profile/content cache", ("services/auth/profiles.py", "services/course/content_cache")),
    ("handlers and responses", ("services/course/", "services/auth/")),
    ("Litestar (routing, DI, response)", ("litestar/",)),
    ("msgspec", ("msgspec",)),
    ("uvicorn (HTTP protocol, ASGI cycle)", ("uvicorn/protocols/", "uvicorn/middleware/")),
)
"""Parts of the stack, tried from the leaf frame up; the first match is charged."""
EVENT_LOOP = "event loop (uvloop, sockets)"
"""Samples no part claims, in asyncio's frames: the loop's own work (its C code, I/O)."""


def charge(stack: list[str]) -> str:
    """The part a sample's stack (root first) is charged to.

    asyncio's frames are skipped on the way up (a stream write is the Redis client's),
    so a sample is the loop's own only when nothing above it is named.
    """
    for frame in reversed(stack):
        for part, needles in PARTS:
            if any(needle in frame for needle in needles):
                return part
    if any("asyncio/" in frame or "uvloop" in frame for frame in stack):
        return EVENT_LOOP
    return "other"


def _profile(pid: int, seconds: float, output: Path) -> None:
    subprocess.run(  # noqa: S603 - our own command line
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(round(seconds)),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        check=True,
        capture_output=True,
    )


def _shares(collapsed: Path) -> tuple[int, dict[str, int]]:
    parts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        parts[charge(stack.split(";"))] += samples
    return total, dict(parts.most_common())


def _print(name: str, rate: float, total: int, parts: dict[str, int]) -> None:
    print(f"\n{name}: {rate:,.0f} req/s under the profiler, {total:,} busy samples")
    for part, samples in parts.items():
        print(f"  {part:<42} {100 * samples / total:5.1f} %")


def _sampled(server: Server, requests: Path, seconds: float, output: Path) -> float:
    """Warm `server` up, then drive it for `seconds` while py-spy samples it; its req/s."""
    run_wrk(server.url, WrkLoad(seconds=2, connections=32, cpu=WRK_CPU), requests)
    sampler = threading.Thread(target=_profile, args=(server.process.pid, seconds, output))
    sampler.start()
    result = run_wrk(server.url, WrkLoad(seconds=seconds, connections=32, cpu=WRK_CPU), requests)
    sampler.join()
    return result.requests_per_second


def main(argv: list[str] | None = None) -> int:
    """Profile each cached read, then the bare app, and print where their samples go."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks in this folder")
    args = parser.parse_args(argv)
    flushed_redis()
    with (
        analytics_broker() as broker,
        fresh_database("bench_profile") as database_url,
        tempfile.TemporaryDirectory(prefix="eduscale-profile-") as scratch_name,
    ):
        scratch = Path(scratch_name)
        course = seed_courses(database_url, 1)[0]
        token = _tokens(seed_users(database_url, 1))[0]
        environ = service_environ(database_url, {}, broker.environ())
        reads = {
            "course": ("GET /courses/{id}, cached", (f"/courses/{course}", "", "")),
            "auth": ("GET /auth/me, cached", ("/auth/me", f"Bearer {token}", "")),
            "bare": ("bare ASGI app, the course's bytes", (f"/courses/{course}", "", "")),
        }
        body = scratch / "course.json"
        for service, (name, request) in reads.items():
            requests = write_requests(scratch / f"{service}.tsv", [request])
            if service == "bare":
                command, ready = bare_command(body), "/"
            else:
                command, ready = service_command(service), "/health/ready"
            with running_server(command, environ, ready_path=ready) as server:
                if service == "course":
                    body.write_bytes(httpx.get(server.url + request[0], timeout=10).content)
                output = scratch / f"{service}.txt"
                rate = _sampled(server, requests, args.seconds, output)
                _print(name, rate, *_shares(output))
                if args.raw:
                    args.raw.mkdir(parents=True, exist_ok=True)
                    (args.raw / output.name).write_bytes(output.read_bytes())
    flushed_redis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
