"""Schema migrations: each applied once, in order, safely from two processes at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from service_harness import fresh_database

from services.runtime.migrations import (
    LOCK_KEY,
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
)


def test_the_project_migrations_load_in_order() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert {"users", "courses"} <= {m.name for m in migrations}


@pytest.mark.server  # PostgreSQL, and the migrator in processes
def test_applying_twice_changes_nothing_the_second_time() -> None:
    with fresh_database("migrate", migrate=False) as url:
        lines: list[str] = []
        first = apply_migrations(url, progress=lines.append)
        assert [m.version for m in first] == [m.version for m in load_migrations()]
        assert all(line.startswith("applied ") for line in lines)
        assert apply_migrations(url) == []
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            assert [row[0] for row in rows] == [m.version for m in first]
            conn.execute("SELECT id, email FROM users LIMIT 0")  # the schema is really there


def waiting_for_the_migration_lock(conn: psycopg.Connection) -> int:
    """How many sessions of this database wait for the migrators' advisory lock."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = %s AND objid = %s AND objsubid = 1",  # a bigint key, split in two
        (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.server  # PostgreSQL, and the migrator in processes
def test_two_processes_at_once_apply_each_migration_once() -> None:
    with (
        fresh_database("migrate", migrate=False) as url,
        psycopg.connect(url, autocommit=True) as holder,
    ):
        # Hold the lock ourselves, so both processes are surely running at the same time
        # when it is released: then only the lock can keep them apart.
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        command = [sys.executable, "-m", "infra.cli", "migrate", "--database-url", url]
        runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            deadline = time.monotonic() + 60
            while waiting_for_the_migration_lock(holder) < 2:
                finished = [run.args for run in runs if run.poll() is not None]
                assert not finished, "a migrator ran without waiting for the migration lock"
                assert time.monotonic() < deadline, "the migrators never waited for the lock"
                time.sleep(0.05)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            outputs = [run.communicate(timeout=60)[1] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        applied = [
            [line for line in output.splitlines() if line.startswith("applied")]
            for output in outputs
        ]
        # One applies everything; the other, once it has the lock, finds nothing to do.
        assert sorted(map(len, applied)) == [0, len(load_migrations())], outputs
        assert any("up to date" in output for output in outputs)


@pytest.mark.server  # PostgreSQL, and the migrator in processes
def test_a_failing_migration_leaves_nothing_half_applied() -> None:
    good = load_migrations()
    broken = Migration(len(good) + 1, "broken", "CREATE TABLE half (id int); SELECT 1/0;")
    with fresh_database("migrate", migrate=False) as url:
        with pytest.raises(
            MigrationError, match=f"migration {broken.version:04d}_broken failed"
        ) as caught:
            apply_migrations(url, [*good, broken])
        assert isinstance(caught.value.__cause__, psycopg.errors.DivisionByZero)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
            versions = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            assert versions == (len(good),)


@pytest.mark.server  # PostgreSQL, and the migrator in processes
def test_an_edited_applied_migration_is_refused() -> None:
    with fresh_database("migrate") as url:
        edited = [*load_migrations()]
        edited[0] = Migration(edited[0].version, edited[0].name, edited[0].sql + "\n-- edited")
        with pytest.raises(MigrationError, match="has changed"):
            apply_migrations(url, edited)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["0001_a.sql", "0003_c.sql"], "expected version 0002"),
        (["1_a.sql"], "NNNN_lowercase_name.sql"),
        (["0001_Upper.sql"], "NNNN_lowercase_name.sql"),
    ],
)
def test_badly_named_or_gapped_files_are_refused(tmp_path: Path, files, message) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


@pytest.mark.server  # PostgreSQL, and the migrator in processes
def test_the_cli_reports_a_missing_database_url() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "migrate"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "eduscale: DATABASE_URL is not set: expected a libpq URL (or pass --database-url)"
    ]
