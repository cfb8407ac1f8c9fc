"""`eduscale serve` and `eduscale migrate`: run a service, or bring its schema up to date.

`serve` is the container's entry point (see the Dockerfile): one image runs any HTTP
service by name, configured only by environment variables, with uvicorn's graceful
shutdown bounded below the pod's termination grace period. `migrate` applies the plain
SQL files in `services/migrations/` (safe to run twice, and from two pods at once).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar

    from services.common.settings import ServiceSettings

__all__ = ["HTTP_SERVICES", "add_service_commands", "migrate", "serve"]

HTTP_SERVICES = {
    "auth": "services.auth.app",
    "course": "services.course.app",
}
"""Service name (as deployed) -> module with `create_app(settings)`."""
_GRACEFUL_SHUTDOWN_SECONDS = 20


def add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve` and `migrate` to the `eduscale` command line."""
    serve_parser = commands.add_parser(
        "serve",
        help="run an HTTP service (auth, course) from its environment variables",
        description="Run a service with uvicorn. Settings come from environment variables "
        "(DATABASE_URL, REDIS_URL, JWT_SECRET, ...; see README.md); a missing or malformed "
        "one stops start-up with a line naming it.",
    )
    serve_parser.add_argument("service", choices=sorted(HTTP_SERVICES), help="which service")
    serve_parser.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - in a pod the port must be reachable from the pod IP
        help="address to bind (default: 0.0.0.0)",
    )
    serve_parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    migrate_parser = commands.add_parser(
        "migrate",
        help="apply pending schema migrations to the writer database",
        description="Apply services/migrations/*.sql in order, each once, each in its own "
        "transaction. Safe to run twice and from two processes at once.",
    )
    migrate_parser.add_argument(
        "--database-url",
        default=None,
        help="writer database (default: $DATABASE_URL)",
    )


def _factory(service: str) -> object:
    return importlib.import_module(HTTP_SERVICES[service]).create_app


def serve(args: argparse.Namespace) -> int:
    """Build the app from the environment and run it until SIGTERM/SIGINT."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from services.common.settings import ServiceSettings  # noqa: PLC0415

    settings = ServiceSettings.from_env(os.environ)
    create_app: Callable[[ServiceSettings], Litestar] = _factory(args.service)  # type: ignore[assignment]
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,  # our JSON logging is already configured by the app
        server_header=False,
        access_log=False,  # the app logs one richer JSON line per request
        proxy_headers=True,
        forwarded_allow_ips="*",  # only the gateway can reach the pod (NetworkPolicy)
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0


def migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations and say what was done."""
    from services.common.migrations import apply_migrations  # noqa: PLC0415
    from services.common.settings import SettingsError  # noqa: PLC0415

    url = args.database_url or os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise SettingsError("DATABASE_URL is not set: pass --database-url or set DATABASE_URL")
    applied = apply_migrations(url, progress=lambda line: print(line, file=sys.stderr))
    print(
        f"{len(applied)} migration(s) applied" if applied else "The schema is up to date",
        file=sys.stderr,
    )
    return 0


if TYPE_CHECKING:
    from collections.abc import Callable
