"""Work per CPU-second of PostgreSQL: closed loops on a few connections, timed by /proc.

Wall-clock rates on a shared 2-CPU machine say more about the neighbours than about the
queries; the CPU time the server's own processes spend does not. A loop's rate is the
units of work its steps report (queries, transactions) divided by the utime + stime of
exactly the connections' backends, plus any other server processes named (the WAL
writer and the rest serve writes too). Used by `database_reads` and `database_writes`.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from benchmarks.figures import Figure
from services.runtime.database import Connection

__all__ = [
    "CONNECTIONS",
    "Step",
    "background_pids",
    "cpu_seconds",
    "path_figures",
    "work_per_cpu_second",
]

CONNECTIONS = 8
_TICKS = os.sysconf("SC_CLK_TCK")

Step = Callable[[Connection, random.Random], Awaitable[int]]
"""One unit of a loop against its connection; returns the work it did (queries, transactions)."""


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICKS


async def background_pids(conn: Connection) -> list[int]:
    """The server's processes that are not client backends (WAL writer, checkpointer...)."""
    cursor = await conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
    )
    return [row["pid"] for row in await cursor.fetchall()]


async def work_per_cpu_second(
    url: str,
    steps: Callable[[], Step],
    seconds: float,
    *,
    warm_up: int,
    with_background: bool = False,
) -> float:
    """Run `CONNECTIONS` closed loops, each on a step from `steps()`, for `seconds`."""
    conns = [
        await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
        for _ in range(CONNECTIONS)
    ]
    try:
        pids = [conn.info.backend_pid for conn in conns]
        if with_background:
            pids += await background_pids(conns[0])
        loops = [(conn, steps()) for conn in conns]
        for conn, step in loops:  # warm: plans cached, pages in shared buffers
            for _ in range(warm_up):
                await step(conn, random.Random())  # noqa: S311 - workload, not a secret
        stop = time.monotonic() + seconds
        before = cpu_seconds(pids)

        async def client(conn: Connection, step: Step, seed: int) -> int:
            draw, work = random.Random(seed), 0  # noqa: S311 - workload, not a secret
            while time.monotonic() < stop:
                work += await step(conn, draw)
            return work

        counts = await asyncio.gather(*(client(c, s, i) for i, (c, s) in enumerate(loops)))
        used = cpu_seconds(pids) - before
    finally:
        for conn in conns:
            await conn.close()
    if used <= 0:
        raise RuntimeError("the server used no measurable CPU; run longer")
    return sum(counts) / used


def path_figures(
    key: str, labels: dict[str, str], rates: dict[str, float], unit: str, shape: str
) -> list[Figure]:
    """A figure per path (`key_path`) and `key` itself: the costliest path's rate."""
    what = "queries" if unit == "queries/s" else "tx"
    figures = [
        Figure(f"{key}_{name}", f"PostgreSQL {what} per CPU-s: {labels[name]}", rate, unit)
        for name, rate in rates.items()
    ]
    slowest = min(rates, key=rates.__getitem__)
    figures.append(
        Figure(
            key,
            f"PostgreSQL {what} per CPU-s, the costliest path ({shape})",
            rates[slowest],
            unit,
            extra={"path": slowest},
        )
    )
    return figures
