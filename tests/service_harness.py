"""Real PostgreSQL databases and Redis for the service tests, and helpers to drive apps.

Each test gets fresh databases (created from the machine's server, migrated with the
project's own migrations, dropped afterwards) and a Redis database flushed for it, so
tests never see each other's rows or keys. `TEST_POSTGRES_URL` / `TEST_REDIS_URL` point
elsewhere when needed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from lanes import require_servers

from services.runtime.migrations import apply_migrations
from services.runtime.settings import ServiceSettings

# Where CI's workflow and .ci/run provide the servers; the variables point elsewhere.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
REDIS_URL = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
JWT_SECRET = "test-secret-" + "x" * 40
# Parents before children, so every foreign key holds as rows arrive.
REPLICATED_TABLES = ("courses", "lessons", "ai_jobs", "quizzes", "quiz_attempts")


def database_url(name: str) -> str:
    """The URL of database `name` on the test server."""
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def fresh_database(label: str, *, migrate: bool = True) -> Iterator[str]:
    """A new, migrated database for one test; dropped (connections and all) afterwards."""
    require_servers("PostgreSQL")
    name = f"eduscale_{label}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    try:
        if migrate:
            apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def replicate(writer_url: str, replica_url: str) -> None:
    """Make the replica's course tables equal to the writer's, as replication would."""
    with psycopg.connect(writer_url) as source, psycopg.connect(replica_url) as target:
        target.execute(f"TRUNCATE {', '.join(REPLICATED_TABLES)} CASCADE")
        for table in REPLICATED_TABLES:
            with (
                source.cursor().copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as out,
                target.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as into,
            ):
                for chunk in out:
                    into.write(chunk)
        target.commit()


def flushed_redis(url: str = REDIS_URL) -> redis.Redis:
    """A client on the test Redis database, emptied."""
    require_servers("Redis")
    client = redis.Redis.from_url(url)
    client.flushdb()
    return client


def environment_for(writer_url: str, *, replicas: tuple[str, ...] = ()) -> dict[str, str]:
    """The variables a service needs for the test databases and Redis; add others to taste."""
    return {
        "DATABASE_URL": writer_url,
        "DATABASE_REPLICA_URLS": ",".join(replicas),
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "WARNING",
    }


def settings_for(
    writer_url: str, *, replicas: tuple[str, ...] = (), **overrides: object
) -> ServiceSettings:
    """Settings as the environment would give them, with test overrides."""
    settings = ServiceSettings.from_env(environment_for(writer_url, replicas=replicas))
    return settings.model_copy(update=overrides)
