"""`eduscale worker analytics`: the sink as a process.

The worker needs only the broker and the analytics store (no PostgreSQL, no Redis). With
a ClickHouse server (`ANALYTICS_URL`) run as many as the topic has partitions. With the
embedded store only one process may open its directory, and the Course service, which
reads the reports, is that process: it runs the same sink in the background
(`services.analytics.sink_runner.local_sink`), and this command is then only for a
process that owns the directory alone (an ingest-only run, a benchmark).
"""

import asyncio
import os
import signal
import sys
from collections.abc import Mapping

import structlog

from services.analytics.sink_runner import SINK_GROUP, running_sink
from services.analytics.store import StoreUnavailable, open_store
from services.analytics_sink.settings import AnalyticsSinkSettings
from services.runtime.health_server import health_server
from services.runtime.logs import configure_logging

__all__ = ["main", "run_analytics_worker"]

_log = structlog.get_logger("eduscale.analytics.sink")


async def run_analytics_worker(environ: Mapping[str, str], stop: asyncio.Event) -> None:
    """Consume `analytics.events` into the store until `stop` is set."""
    settings = AnalyticsSinkSettings.from_env(environ)
    analytics, kafka = settings.analytics, settings.kafka
    configure_logging(settings.logging.log_level, "analytics-sink")
    health_port = settings.health.health_port
    store = await open_store(analytics)
    try:
        group = kafka.consumer_group or SINK_GROUP
        async with (
            running_sink(analytics, kafka, store, stop, group=group) as sink,
            health_server(health_port, sink.healthy),
        ):
            _log.info("worker_started", group=group, embedded=analytics.embedded)
            await sink.run()
    finally:
        await store.close()


def main() -> None:
    """Run with the process environment until SIGTERM/SIGINT."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_analytics_worker(os.environ, stop)

    try:
        asyncio.run(run())
    except StoreUnavailable as error:
        # One line, as for a bad setting; the pod restarts and tries again.
        print(f"eduscale: {error}", file=sys.stderr)  # noqa: T201 - the command's own error
        raise SystemExit(1) from None
