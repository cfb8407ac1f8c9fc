"""The load generator: `wrk`, run in its own process, and what its report says.

wrk (Debian package `wrk`) is a closed-loop generator: each connection sends its next
request when the previous answer arrived, so at saturation the latency percentiles are
those of a full server (queueing included), not of an idle one. Requests come from a
prepared file through `lua/requests.lua` (paths, Authorization headers, JSON bodies), so
a run can spread over many ids or users; another script can be given (`lua/refresh.lua`
spends each refresh token once). A script's own counts, printed by its `done()` as lines
`script NAME COUNT`, come back in `WrkResult.script_counts`. A run with any non-2xx answer
or socket error is refused: it would measure an error path, not the endpoint.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "REQUESTS_SCRIPT",
    "WrkError",
    "WrkLoad",
    "WrkResult",
    "parse_wrk_output",
    "require_wrk",
    "run_wrk",
    "write_requests",
]

REQUESTS_SCRIPT = Path(__file__).parent / "lua" / "requests.lua"
INSTALL_HINT = "install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`"

_UNITS_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses: (\d+)\s*$", re.MULTILINE)
_SCRIPT_COUNT = re.compile(r"^script (\w+) (\d+)\s*$", re.MULTILINE)
_SOCKET = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$", re.MULTILINE
)


class WrkError(RuntimeError):
    """wrk is missing, failed, or reported errors that void the measurement."""


@dataclass(frozen=True)
class WrkResult:
    """The figures of one wrk run."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0
    timeouts: int = 0
    script_counts: dict[str, int] = field(default_factory=dict)
    """What the request script counted itself (e.g. refresh tokens rotated), by name."""


@dataclass(frozen=True)
class WrkLoad:
    """How hard and how long wrk drives the server."""

    seconds: float
    connections: int
    threads: int = 1
    cpu: int | None = None
    """Pin wrk to this CPU (the server gets another), so the two do not trade places."""


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_TO_MS[unit]


def parse_wrk_output(text: str) -> WrkResult:
    """Read the report `wrk --latency` prints; `WrkError` if a part is missing."""
    percentiles = {int(p): _ms(value, unit) for p, value, unit in _PERCENTILE.findall(text)}
    total, rate = _TOTAL.search(text), _RATE.search(text)
    if total is None or rate is None or set(percentiles) != {50, 75, 90, 99}:
        raise WrkError(f"not a `wrk --latency` report:\n{text.strip()[:2000]}")
    non_2xx = _NON_2XX.search(text)
    socket = _SOCKET.search(text)
    connect, read, write, timeouts = (int(n) for n in socket.groups()) if socket else (0, 0, 0, 0)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1000,
        requests_per_second=float(rate.group(1)),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=connect + read + write + timeouts,
        timeouts=timeouts,
        script_counts={name: int(count) for name, count in _SCRIPT_COUNT.findall(text)},
    )


def require_wrk() -> str:
    """The path of `wrk`; installed from Debian's archive when missing and we are root.

    As root (a CI container, a throwaway VM) the benchmark installs it itself; anyone else
    is told the one command to run, instead of getting a half-measured run.
    """
    found = shutil.which("wrk")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get", file=sys.stderr, flush=True)
        for command in (["install", "-y", "wrk"], ["update"], ["install", "-y", "wrk"]):
            if shutil.which("wrk"):
                break
            subprocess.run(["apt-get", *command], stdout=subprocess.DEVNULL, check=False)  # noqa: S603, S607
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkError(f"the HTTP benchmarks need the load generator wrk: {INSTALL_HINT}")


def write_requests(path: Path, lines: list[tuple[str, str, str]]) -> Path:
    """Write (path, authorization, body) triples in the format `lua/requests.lua` reads."""
    for fields in lines:
        if any("\t" in field or "\n" in field for field in fields):
            raise ValueError(f"a request field holds a tab or newline: {fields!r}")
    path.write_text("".join("\t".join(fields) + "\n" for fields in lines))
    return path


def run_wrk(
    url: str,
    load: WrkLoad,
    requests_file: Path,
    *,
    method: str = "GET",
    check: bool = True,
    script: Path = REQUESTS_SCRIPT,
) -> WrkResult:
    """Drive `url` (scheme, host and port; paths come from the file) and read the report.

    `script` reads `requests_file` ($WRK_REQUESTS_FILE). With `check`, any non-2xx answer
    or socket error raises `WrkError`.
    """
    command = [
        require_wrk(),
        f"--threads={load.threads}",
        f"--connections={load.connections}",
        f"--duration={max(1, round(load.seconds))}s",
        "--timeout=10s",
        "--latency",
        f"--script={script}",
        url,
    ]
    if load.cpu is not None and shutil.which("taskset"):
        command = ["taskset", "--cpu-list", str(load.cpu), *command]
    environ = {
        **os.environ,
        "WRK_REQUESTS_FILE": str(requests_file),
        "WRK_METHOD": method,
        "WRK_THREADS": str(load.threads),
    }
    done = subprocess.run(  # noqa: S603 - our own command line
        command, capture_output=True, text=True, env=environ, check=False
    )
    if done.returncode != 0:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    result = parse_wrk_output(done.stdout)
    if check and (result.non_2xx or result.socket_errors):
        raise WrkError(
            f"{url}: {result.non_2xx} non-2xx answers and {result.socket_errors} socket errors "
            f"in {result.requests} requests; the figure would measure errors:\n{done.stdout}"
        )
    return result
