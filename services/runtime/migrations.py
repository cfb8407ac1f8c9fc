"""Schema migrations: plain versioned SQL files, applied in order, each exactly once.

`services/migrations/NNNN_name.sql` files are applied by `eduscale migrate`. Each runs in
its own transaction together with its row in `schema_migrations`, so a failure leaves the
database at the previous version with nothing half-applied. A session-level advisory lock
serialises concurrent runs (two pods starting at once): the second waits, then finds
nothing left to do. An applied file that has since changed is refused, since the
database no longer matches the code.
"""

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

__all__ = [
    "LOCK_KEY",
    "MIGRATIONS_DIR",
    "Migration",
    "MigrationError",
    "apply_migrations",
    "load_migrations",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 0x65647573
"""The advisory lock ("edus") every migration run holds; public so a test can hold it too."""


class MigrationError(RuntimeError):
    """The migration files or the database's record of them are inconsistent."""


@dataclass(frozen=True)
class Migration:
    """One SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, to notice an applied migration that was edited."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in version order; misnamed files and gaps are errors."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name}: expected version "
                f"{expected:04d} (versions start at 0001 and have no gaps)"
            )
    return migrations


def apply_migrations(
    database_url: str,
    migrations: list[Migration] | None = None,
    *,
    progress: Callable[[str], None] = lambda _line: None,
) -> list[Migration]:
    """Apply what is pending; return what this call applied (empty when up to date)."""
    pending_source = load_migrations() if migrations is None else migrations
    applied_now: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
            recorded = {version: (name, checksum) for version, name, checksum in rows}
            for migration in pending_source:
                if migration.version in recorded:
                    _check_unchanged(migration, *recorded[migration.version])
                    continue
                started = time.perf_counter()
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum)"
                            " VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.DatabaseError as exc:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed, and none "
                        f"of it was applied: {type(exc).__name__}: {exc}".rstrip()
                    ) from exc
                elapsed = (time.perf_counter() - started) * 1000
                progress(f"applied {migration.version:04d}_{migration.name} ({elapsed:.0f} ms)")
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def _check_unchanged(migration: Migration, name: str, checksum: str) -> None:
    if checksum != migration.checksum:
        raise MigrationError(
            f"migration {migration.version:04d}_{name} was applied but its file has changed "
            "since; add a new migration instead of editing an applied one"
        )
