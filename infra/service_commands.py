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

    from services.runtime.kafka.dlq_tool import DeadLetter


__all__ = ["HTTP_SERVICES", "WORKERS", "add_service_commands", "dlq", "migrate", "serve", "worker"]

HTTP_SERVICES = {
    "auth": "services.auth.app",
    "course": "services.course.app",
    "ai-orchestrator": "services.ai_orchestrator.app",
}
"""Service name (as deployed) -> module with `from_environment(environ)`."""
WORKERS = {
    "generation": "services.generation_worker.worker",
    "indexer": "services.indexer_worker.worker",
    "analytics": "services.analytics_sink.worker",
}
"""Worker name -> module with `main()`."""
_GRACEFUL_SHUTDOWN_SECONDS = 20


def add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve` and `migrate` to the `eduscale` command line."""
    serve_parser = commands.add_parser(
        "serve",
        help="run an HTTP service (auth, course) from its environment variables",
        description="Run a service with uvicorn. Settings come from environment variables "
        "(DATABASE_URL, REDIS_URL, JWT_SECRET, ...; see docs/reference/environment.md); a "
        "missing or malformed one stops start-up with a line naming it.",
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
    worker_parser = commands.add_parser(
        "worker",
        help="run a Kafka worker (generation, indexer, analytics) from its environment",
        description="Consume the worker's topic until SIGTERM, serving health probes on "
        "HEALTH_PORT (default 8081).",
    )
    worker_parser.add_argument("worker", choices=sorted(WORKERS), help="which worker")
    dlq_parser = commands.add_parser(
        "dlq",
        help="inspect and replay a dead-letter topic (KAFKA_BOOTSTRAP_SERVERS)",
        description="List the records of TOPIC.dlq with why they failed, show one, or "
        "replay one or all back to the original topic.",
    )
    dlq_actions = dlq_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = dlq_actions.add_parser("list", help="one line per dead-lettered message")
    listing.add_argument("topic", help="the dead-letter topic, e.g. generation.requested.dlq")
    show = dlq_actions.add_parser("show", help="one message with all its headers")
    show.add_argument("topic")
    show.add_argument("position", help="PARTITION:OFFSET, as `list` prints it")
    replay_parser = dlq_actions.add_parser("replay", help="send messages back to their topic")
    replay_parser.add_argument("topic")
    which = replay_parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--position", help="PARTITION:OFFSET of one message (not sent if replayed before)"
    )
    which.add_argument("--all", action="store_true", help="every message not replayed before")
    replay_parser.add_argument(
        "--dry-run", action="store_true", help="say what would be replayed, send nothing"
    )


def _factory(service: str) -> object:
    return importlib.import_module(HTTP_SERVICES[service]).from_environment


def serve(args: argparse.Namespace) -> int:
    """Build the app from the environment and run it until SIGTERM/SIGINT."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from services.runtime.tracing import install_from_environment  # noqa: PLC0415

    build: Callable[[Mapping[str, str]], Litestar] = _factory(args.service)  # type: ignore[assignment]
    install_from_environment(os.environ, args.service)  # before the app: its middleware
    uvicorn.run(
        build(os.environ),
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


def worker(args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM."""
    module = importlib.import_module(WORKERS[args.worker])
    module.main()
    return 0


def dlq(args: argparse.Namespace) -> int:
    """List, show or replay dead-lettered messages."""
    from services.runtime.kafka import dlq_tool  # noqa: PLC0415
    from services.runtime.kafka.settings import KafkaSettings  # noqa: PLC0415
    from services.runtime.settings import SettingsError  # noqa: PLC0415

    if not args.topic.endswith(".dlq"):
        raise SettingsError(f"{args.topic} is not a dead-letter topic: name one ending in .dlq")
    settings = KafkaSettings.from_env(os.environ)
    records = dlq_tool.read_dead_letters(settings, args.topic)
    if args.action == "list":
        _print_list(args.topic, records)
        return 0
    if args.action == "show":
        _print_show(_at(records, args.topic, args.position))
        return 0
    if args.all:
        chosen = [r for r in records if not r.replayed]
    else:
        chosen = [_at(records, args.topic, args.position)]
        if chosen[0].replayed:
            print(
                f"{args.position} was replayed at {chosen[0].replayed_at}: not sent again "
                f"(a dead letter is replayed once; if it failed again, it is a new record)"
            )
            chosen = []
    verb = "would replay" if args.dry_run else "replayed"
    if not args.dry_run:
        dlq_tool.replay(settings, chosen)
    for record in chosen:
        print(f"{verb} {record.position} -> {record.original_topic}")
    print(f"{len(chosen)} message(s) {verb}")
    return 0


def _at(records: list[DeadLetter], topic: str, position: str) -> DeadLetter:
    from services.runtime.settings import SettingsError  # noqa: PLC0415

    for record in records:
        if record.position == position:
            return record
    raise SettingsError(f"no message at {position} on {topic}: see eduscale dlq list {topic}")


def _print_list(topic: str, records: list[DeadLetter]) -> None:
    replayed = sum(record.replayed for record in records)
    print(f"{len(records)} dead-lettered message(s) on {topic}, {replayed} replayed")
    for record in records:
        h = record.headers
        print(
            f"{record.position}\t{'replayed' if record.replayed else 'pending'}\t"
            f"{(record.key or b'').decode(errors='replace')}\t"
            f"{h.get('dlq.error.class', '?')}\tattempts={h.get('dlq.attempts', '?')}\t"
            f"{h.get('dlq.last.failure', '?')}\t{h.get('dlq.error.message', '')[:120]}"
        )


def _print_show(record: DeadLetter) -> None:
    print(f"topic: {record.topic}\nposition: {record.position}")
    print(f"key: {(record.key or b'').decode(errors='replace')}")
    print(f"replayed: {record.replayed_at or 'no'}")
    for name, value in sorted(record.headers.items()):
        print(f"header {name}: {value}")
    print(f"value: {(record.value or b'').decode(errors='replace')}")


def migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations and say what was done.

    In the schema Job, DATABASE_MASTER_SECRET_ARN names the RDS-managed secret the
    credentials are read from; by hand, DATABASE_URL (or --database-url) carries them.
    """
    from services.runtime.migrations import apply_migrations  # noqa: PLC0415
    from services.runtime.schema_job import SchemaTarget  # noqa: PLC0415

    target = SchemaTarget.from_env(os.environ, args.database_url)
    print(
        "Reading the database's master credentials from its secret"
        if target.master_secret_arn
        else "Connecting with DATABASE_URL",
        file=sys.stderr,
    )
    applied = apply_migrations(
        target.conninfo(), progress=lambda line: print(line, file=sys.stderr)
    )
    print(
        f"{len(applied)} migration(s) applied" if applied else "The schema is up to date",
        file=sys.stderr,
    )
    return 0


if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
