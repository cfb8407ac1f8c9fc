"""`eduscale dev up` and `eduscale dev seed`: the platform on a laptop, without Docker."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_dev_commands", "dev"]

_DEFAULT_PORT = 8000


def add_dev_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dev up` and `dev seed` to the `eduscale` command line."""
    dev_parser = commands.add_parser(
        "dev",
        help="run the whole platform locally (dev up), load a demo course (dev seed)",
        description="The platform on one machine: every service and worker behind one "
        "gateway port, with embedded Kafka and Qdrant. PostgreSQL and Redis come from "
        "DATABASE_URL and REDIS_URL (default: localhost).",
    )
    actions = dev_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser(
        "up",
        help="run every service, worker and the gateway in the foreground (Ctrl-C stops)",
        description="Check PostgreSQL and Redis, apply the migrations, start the embedded "
        "Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS is set), auth, course, the AI "
        "orchestrator with its outbox relay, the generation and indexer workers, and the "
        "gateway on --port. Without OPENAI_API_KEY, AI features are degraded.",
    )
    up.add_argument("--port", type=int, default=_DEFAULT_PORT, help="gateway port (default: 8000)")
    up.add_argument(
        "--host", default="127.0.0.1", help="gateway address (default: 127.0.0.1, this machine)"
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".eduscale"),
        help="where Qdrant, uploads and the JWT secret are kept (default: ./.eduscale)",
    )
    seed = actions.add_parser(
        "seed",
        help="load a demo course into the running platform (safe to run twice)",
        description="Create demo instructor and student accounts and a course with lessons "
        "and a quiz through the gateway, unless they exist; print how to log in.",
    )
    seed.add_argument(
        "--url",
        default=f"http://127.0.0.1:{_DEFAULT_PORT}",
        help="the gateway of `eduscale dev up` (default: http://127.0.0.1:8000)",
    )


def dev(args: argparse.Namespace) -> int:
    """Run `dev up` or `dev seed`."""
    if args.action == "seed":
        return _seed(args.url)
    from infra.dev.backing import BackingServiceDown  # noqa: PLC0415
    from infra.dev.local_env import LocalSettings  # noqa: PLC0415
    from infra.dev.platform import PortInUse, run_local_platform  # noqa: PLC0415

    if not 0 < args.port < 65536:  # noqa: PLR2004
        print(f"eduscale: --port {args.port} is not a port: use 1 to 65535", file=sys.stderr)  # noqa: T201
        return 2
    settings = LocalSettings.from_env(
        os.environ, data_dir=args.data_dir, host=args.host, port=args.port
    )
    try:
        return run_local_platform(settings, os.environ)
    except (BackingServiceDown, PortInUse) as error:
        print(f"eduscale: {error}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 130


def _seed(url: str) -> int:
    from infra.dev.seed import SeedError, seed  # noqa: PLC0415

    try:
        seed(url.rstrip("/"), print)
    except SeedError as error:
        print(f"eduscale: {error}", file=sys.stderr)  # noqa: T201
        return 1
    return 0
