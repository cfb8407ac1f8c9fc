"""PostgreSQL and Redis for the local platform: reachable, or a message saying how to start them.

They are the two dependencies `eduscale dev up` cannot embed. Before anything starts it
checks both; a missing database on a reachable server is created (a newcomer's first run
should not need a `createdb`), and an unreachable server stops start-up with what was
tried and the commands that start or install it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

__all__ = ["BackingServiceDown", "ensure_database", "ensure_redis"]

_CONNECT_TIMEOUT_SECONDS = 3


class BackingServiceDown(RuntimeError):
    """PostgreSQL or Redis cannot be used; the message says why and what to do."""


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or ''}".rstrip(":")


def _postgres_hint() -> str:
    versions = sorted(
        (p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")),
        key=lambda v: int(v) if v.isdigit() else 0,
    )
    start = (
        f"sudo pg_ctlcluster {versions[-1]} main start"
        if versions
        else "sudo pg_ctlcluster <version> main start   (`pg_lsclusters` lists them)"
    )
    return (
        f"  Start it:    {start}   (or: sudo systemctl start postgresql)\n"
        "  Install it:  sudo apt-get install postgresql\n"
        "  Or point DATABASE_URL at a running server: "
        "postgresql://USER:PASSWORD@HOST:5432/eduscale"
    )


def ensure_database(url: str, say: Callable[[str], None]) -> None:
    """Connect to `url`; create its database when only the database is missing."""
    name = (urlsplit(url).path or "/").lstrip("/")
    try:
        psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.OperationalError as error:
        if f'database "{name}" does not exist' not in str(error):
            raise _unusable(url, error) from None
    else:
        return
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    try:
        with psycopg.connect(
            admin, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        return  # created meanwhile by someone else
    except psycopg.Error as error:
        raise BackingServiceDown(
            f"PostgreSQL at {_where(url)} has no database {name!r} and it could not be "
            f"created: {_first_line(error)}\n"
            f"  Create it:   createdb -h {urlsplit(url).hostname or 'localhost'} {name}   "
            "(as a user allowed to), or set DATABASE_URL to an existing database"
        ) from None
    say(f"created the database {name!r} on {_where(url)}")


def _unusable(url: str, error: psycopg.OperationalError) -> BackingServiceDown:
    reason = _first_line(error)
    if "FATAL" in str(error):  # the server answered: credentials or permissions
        return BackingServiceDown(
            f"PostgreSQL at {_where(url)} refused the connection: {reason}\n"
            "  Set DATABASE_URL to a user and database it accepts: "
            "postgresql://USER:PASSWORD@HOST:5432/eduscale"
        )
    return BackingServiceDown(
        f"PostgreSQL is not reachable at {_where(url)}: {reason}\n" + _postgres_hint()
    )


def ensure_redis(url: str) -> None:
    """PING Redis at `url`."""
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=_CONNECT_TIMEOUT_SECONDS,
        socket_timeout=_CONNECT_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.exceptions.RedisError as error:
        raise BackingServiceDown(
            f"Redis is not reachable at {_where(url)}: {_first_line(error)}\n"
            "  Start it:    redis-server --daemonize yes"
            "   (or: sudo systemctl start redis-server)\n"
            "  Install it:  sudo apt-get install redis-server\n"
            "  Or point REDIS_URL at a running server: redis://[:PASSWORD@]HOST:6379/0"
        ) from None
    finally:
        client.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
