"""Measured servers as separate processes, started as a pod starts them.

A service runs through `eduscale serve` (uvicorn, one worker process, the Dockerfile's
flags); the bare reference through the same `serve()` (see `bare_asgi.py`). On a machine
with two or more CPUs the server is pinned to one CPU, the pod's CPU limit here, and the
load generator to another, so the two do not trade places mid-run; PostgreSQL and Redis
run where the OS puts them. Output goes to a log file, shown when the server fails (and
kept when BENCH_KEEP_LOGS is set).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "SERVER_CPU",
    "SERVER_WORKERS",
    "WRK_CPU",
    "Server",
    "bare_command",
    "free_port",
    "llm_command",
    "running_server",
    "service_command",
    "wait_idle",
    "worker_command",
]

_MULTI_CPU = (os.cpu_count() or 1) >= 2  # noqa: PLR2004
SERVER_CPU: int | None = 0 if _MULTI_CPU else None
"""The CPU a measured server is pinned to: one core, as a pod's CPU limit of 1."""
WRK_CPU: int | None = 1 if _MULTI_CPU else None
"""The CPU wrk is pinned to."""
SERVER_WORKERS = 1
"""uvicorn worker processes per server: one, as in a pod (scaling is by pods)."""
_START_SECONDS = 60.0
_STOP_SECONDS = 30.0
_IDLE_SECONDS = 30.0
_IDLE_SAMPLE_SECONDS = 0.2
_IDLE_SHARE = 0.05
"""A server using under 5 % of a core over a sample is idle."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running server: where it listens and its process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _pinned(command: list[str]) -> list[str]:
    if SERVER_CPU is None or not shutil.which("taskset"):
        return command
    return ["taskset", "--cpu-list", str(SERVER_CPU), *command]


def _wait_ready(url: str, ready_path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(url + ready_path, timeout=1).status_code == 200:  # noqa: PLR2004
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {_START_SECONDS} s:\n{log.read_text()}")


@contextmanager
def running_server(
    command: list[str],
    environ: Mapping[str, str],
    *,
    ready_path: str = "/health/ready",
    port_variable: str | None = None,
    pinned: bool = True,
) -> Iterator[Server]:
    """Start `command`, wait until ready, stop it with SIGTERM.

    The port goes to `--host 127.0.0.1 --port N`, or to the environment variable
    `port_variable` (a worker's HEALTH_PORT). `pinned` puts it on the measured CPU.
    """
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="eduscale-bench-", suffix=".log")[1])
    arguments = [] if port_variable else ["--host", "127.0.0.1", "--port", str(port)]
    port_environ = {port_variable: str(port)} if port_variable else {}
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            _pinned([*command, *arguments]) if pinned else [*command, *arguments],
            env={**os.environ, **environ, **port_environ},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, ready_path, process, log)
        yield Server(url, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"   server log kept: {log}", file=sys.stderr, flush=True)
        else:
            log.unlink(missing_ok=True)


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of `pid` so far (Linux's /proc), or None if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(server: Server) -> None:
    """Return once the server stopped working on what the last load left queued.

    wrk stops sending at the end of a run, but the server still answers what it had read:
    eight Argon2id logins hold a core for seconds, which would land on the next endpoint
    measured on the same CPU. Waits at most 30 s; without /proc, returns at once.
    """
    deadline = time.monotonic() + _IDLE_SECONDS
    before = _cpu_seconds(server.process.pid)
    while before is not None and time.monotonic() < deadline:
        time.sleep(_IDLE_SAMPLE_SECONDS)
        after = _cpu_seconds(server.process.pid)
        if after is None or after - before < _IDLE_SHARE * _IDLE_SAMPLE_SECONDS:
            return
        before = after


def service_command(service: str) -> list[str]:
    """`eduscale serve SERVICE`, as the container runs it."""
    return [sys.executable, "-m", "infra.cli", "serve", service]


def worker_command(worker: str) -> list[str]:
    """`eduscale worker WORKER`, as the container runs it."""
    return [sys.executable, "-m", "infra.cli", "worker", worker]


def llm_command(chat_latency: float = 0.0) -> list[str]:
    """The OpenAI-compatible server: zero latency, or chat answers after `chat_latency` s."""
    return [
        sys.executable,
        "-m",
        "benchmarks.zero_latency_llm",
        "--chat-latency",
        str(chat_latency),
    ]


def bare_command(body_file: Path) -> list[str]:
    """The bare ASGI reference, answering with the bytes of `body_file`."""
    return [sys.executable, "-m", "benchmarks.bare_asgi", "--body-file", str(body_file)]
