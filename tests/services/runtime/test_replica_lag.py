"""Replica lag as a service measures it, against a real streaming replica.

The fixture makes a throwaway PostgreSQL writer and a standby streaming from it (initdb,
pg_basebackup -R, as the postgres user: the server refuses to run as root), so the lag is
PostgreSQL's own, paused and resumed with `pg_wal_replay_pause()`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import psycopg
import pytest
from kafka_broker import free_port
from prometheus_client import REGISTRY
from service_harness import settings_for

from services.runtime.database import Databases

pytestmark = [pytest.mark.server, pytest.mark.anyio]

_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
_RUNUSER = shutil.which("runuser")


def _as_postgres(*command: str) -> None:
    assert _RUNUSER is not None
    subprocess.run([_RUNUSER, "-u", "postgres", "--", *command], check=True, capture_output=True)


def _ready(url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def streaming_pair() -> Iterator[tuple[str, str]]:
    """(writer URL, standby URL) of a fresh primary and a standby streaming from it."""
    if not _BINARIES or _RUNUSER is None:
        pytest.skip("PostgreSQL's server binaries or runuser are absent")
    bin_dir = _BINARIES[-1]
    root = Path(tempfile.mkdtemp(prefix="eduscale-replica-"))
    shutil.chown(root, "postgres")
    primary, standby = root / "primary", root / "standby"
    started: list[Path] = []

    def start(directory: Path) -> tuple[str, int]:
        """Start the server of `directory` on a free port; its URL, once it answers."""
        port = free_port()
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(directory), "-o", options,
                     "-l", str(root / f"{directory.name}.log"), "-w", "start")  # fmt: skip
        started.append(directory)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _ready(url)
        return url, port

    try:
        _as_postgres(str(bin_dir / "initdb"), "-D", str(primary), "-U", "postgres", "-A", "trust")
        writer, writer_port = start(primary)
        _as_postgres(str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(writer_port),
                     "-U", "postgres", "-D", str(standby), "-R")  # fmt: skip
        reader, _ = start(standby)
        yield writer, reader
    finally:
        for directory in reversed(started):
            _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(directory), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _scraped(replica: str) -> float | None:
    return REGISTRY.get_sample_value("eduscale_db_replica_lag_seconds", {"replica": replica})


def _replayed(standby: str, writer: str) -> bool:
    with psycopg.connect(writer, autocommit=True) as w, psycopg.connect(standby) as s:
        (sent,) = w.execute("SELECT pg_current_wal_lsn()").fetchone() or (None,)
        (replayed,) = s.execute("SELECT pg_last_wal_replay_lsn() >= %s", (sent,)).fetchone() or (
            False,
        )
        return bool(replayed)


async def _caught_up(standby: str, writer: str) -> None:
    deadline = time.monotonic() + 30
    while not _replayed(standby, writer):
        assert time.monotonic() < deadline, "the standby did not catch up"
        await anyio.sleep(0.2)


@asynccontextmanager
async def _opened(writer: str, replica: str) -> AsyncIterator[Databases]:
    """The pools a service opens with `replica` as its one replica, closed after."""
    databases = Databases(settings_for(writer, replicas=(replica,)))
    await databases.open()
    try:
        yield databases
    finally:
        await databases.close()


def _execute(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


async def test_a_paused_replica_reports_its_lag_and_a_caught_up_one_zero(
    streaming_pair: tuple[str, str],
) -> None:
    writer, standby = streaming_pair
    async with _opened(writer, standby) as databases:
        await databases.replica_lag.measure_once()
        assert databases.replica_lag.seconds == {"replica-0": 0.0}  # idle writer: no lag
        assert _scraped("replica-0") == 0.0

        _execute(writer, "CREATE TABLE IF NOT EXISTS ticks (at timestamptz)")
        _execute(writer, "INSERT INTO ticks VALUES (now())")
        await _caught_up(standby, writer)  # a replayed transaction: the lag's starting point
        _execute(standby, "SELECT pg_wal_replay_pause()")
        try:
            _execute(writer, "INSERT INTO ticks VALUES (now())")
            await anyio.sleep(2.5)
            _execute(writer, "INSERT INTO ticks VALUES (now())")  # sent, not replayed
            await anyio.sleep(0.5)
            await databases.replica_lag.measure_once()
            lag = databases.replica_lag.seconds["replica-0"]
            assert lag >= 2.5, lag
            assert _scraped("replica-0") == lag
        finally:
            _execute(standby, "SELECT pg_wal_replay_resume()")

        await _caught_up(standby, writer)
        await databases.replica_lag.measure_once()
        assert databases.replica_lag.seconds == {"replica-0": 0.0}
    assert _scraped("replica-0") is None  # a closed process reports nothing


async def test_a_replica_url_that_is_a_writer_reports_no_lag(
    streaming_pair: tuple[str, str],
) -> None:
    writer, _ = streaming_pair
    async with _opened(writer, writer) as databases:
        await databases.replica_lag.measure_once()
        assert databases.replica_lag.seconds == {}
        assert _scraped("replica-0") is None
