"""The AI side of the local platform in one process: orchestrator, relay and both workers.

Embedded Qdrant (local mode) locks its data directory for one process, and the
orchestrator (search), the indexer (writes) and the generation worker (grounding, the
semantic cache) all need it. So locally they share one process and one Qdrant client
(`services/ai/qdrant.py` hands every part of a process the same client), each still
running its own code: the orchestrator's uvicorn server with the outbox relay in its
lifespan, and the two consumer loops exactly as `eduscale worker ...` runs them. In the
cluster they are separate pods talking to a Qdrant server.

`python -m infra.dev.ai_process --port P --generation-health-port G --indexer-health-port I`
runs until SIGTERM/SIGINT; if any part stops on its own, the others are stopped too and
the process exits non-zero, so the supervisor notices.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Mapping

from services.ai_orchestrator.app import from_environment
from services.generation_worker.worker import run_generation_worker
from services.indexer_worker.worker import run_indexer_worker
from services.runtime.embedded_server import embedded_server
from services.runtime.settings import SettingsError

__all__ = ["main", "run_ai_platform"]

_GRACEFUL_SHUTDOWN_SECONDS = 15


async def run_ai_platform(
    environ: Mapping[str, str], *, host: str, port: int, generation_health: int, indexer_health: int
) -> int:
    """Serve and consume until SIGTERM/SIGINT (0) or until a part fails (1)."""
    app = from_environment(environ)
    server = embedded_server(
        app,
        host=host,
        port=port,
        lifespan="on",
        graceful_shutdown_seconds=_GRACEFUL_SHUTDOWN_SECONDS,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parts = [
        asyncio.create_task(server.serve(), name="ai-orchestrator"),
        asyncio.create_task(
            run_generation_worker({**environ, "HEALTH_PORT": str(generation_health)}, stop),
            name="generation-worker",
        ),
        asyncio.create_task(
            run_indexer_worker({**environ, "HEALTH_PORT": str(indexer_health)}, stop),
            name="indexer-worker",
        ),
    ]
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([stopping, *parts], return_when=asyncio.FIRST_COMPLETED)
    failed = [part.get_name() for part in parts if part.done()] if not stop.is_set() else []
    stop.set()
    server.should_exit = True
    outcomes = await asyncio.gather(*parts, return_exceptions=True)
    for part, outcome in zip(parts, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            print(f"{part.get_name()} failed: {outcome!r}", file=sys.stderr)  # noqa: T201
            failed.append(part.get_name())
    if not server.started:
        failed.append("ai-orchestrator")
    if failed:
        print(f"stopped because {', '.join(sorted(set(failed)))} stopped", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def main() -> int:
    """Parse the ports and run."""
    parser = argparse.ArgumentParser(prog="python -m infra.dev.ai_process")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--generation-health-port", type=int, required=True)
    parser.add_argument("--indexer-health-port", type=int, required=True)
    args = parser.parse_args()
    try:
        return asyncio.run(
            run_ai_platform(
                os.environ,
                host=args.host,
                port=args.port,
                generation_health=args.generation_health_port,
                indexer_health=args.indexer_health_port,
            )
        )
    except SettingsError as error:
        print(f"ai: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
