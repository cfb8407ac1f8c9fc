"""What every worker process runs around its handler: the consumer loop and the probes.

A worker consumes one topic at least once with a dead-letter topic and serves health
probes and /metrics (the loop's in-flight jobs, dead letters and lag, and whatever its
handler counts). Only the handler differs, and
what a worker opens to build it (pools, clients): that is the caller's, e.g.
`services.ai.worker_context` for the two AI workers. On SIGTERM or SIGINT the in-flight
messages are drained and the group is left.
"""

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import structlog
from confluent_kafka import Consumer, Message, Producer

from services.runtime.consumer_metrics import observing_consumer
from services.runtime.health_server import health_server
from services.runtime.kafka.consumer import ConsumerLoop, RetryPolicy
from services.runtime.kafka.dead_letters import Failure
from services.runtime.kafka.settings import KafkaSettings, consumer_config, producer_config
from services.runtime.metrics import Counters, observe_counters_at_scrape
from services.runtime.tracing import consumer_span, install_from_environment

__all__ = ["WorkerHandler", "consume", "run_forever"]

_log = structlog.get_logger("eduscale.worker")


class WorkerHandler(Protocol):
    """Handles one message; says which failures are worth a retry; records dead letters."""

    async def __call__(self, message: Message) -> None:
        """Handle one message (raise to let the consumer loop retry or dead-letter)."""

    async def dead_lettered(self, message: Message, failure: Failure) -> None:
        """Record on the job that its message went to the dead-letter topic."""

    def is_transient(self, error: BaseException) -> bool:
        """Whether a retry may succeed."""
        ...


async def consume(
    kafka: KafkaSettings,
    *,
    group: str,
    topic: str,
    handler: WorkerHandler,
    stop: asyncio.Event,
    retry: RetryPolicy,
    breaker_open: type[BaseException],
    health_port: int,
    counters: Counters | None = None,
    concurrency: int = 1,
    ordering_key: Callable[[Message], bytes | None] | None = None,
) -> None:
    """Consume `topic` with `handler` until `stop` is set, serving the probes meanwhile.

    Up to `concurrency` messages are handled at once; two with the same `ordering_key`
    never are (see `ConsumerLoop`).
    """
    dlq_producer = Producer(producer_config(kafka, client_id=f"{group}-dlq"))
    stop_counting = observe_counters_at_scrape(counters, f"Counted by the {group} worker.")
    try:
        consumer = Consumer(consumer_config(kafka, group=group, client_id=group))
        loop = ConsumerLoop(
            consumer,
            dlq_producer,
            topic,
            consumer_span(handler, topic),
            is_transient=handler.is_transient,
            breaker_open=breaker_open,
            on_dead_letter=handler.dead_lettered,
            stop=stop,
            retry=retry,
            concurrency=concurrency,
            ordering_key=ordering_key,
        )
        running = asyncio.Event()
        async with (
            observing_consumer(loop, consumer, topic=topic, group=group),
            health_server(health_port, running.is_set),
        ):
            _log.info("worker_started", group=group, topic=topic)
            running.set()
            await loop.run()
    finally:
        stop_counting()
        dlq_producer.flush(5)
    _log.info("worker_stopped", processed=loop.processed, dead_lettered=loop.dead_lettered)


def run_forever(run: Callable[[Mapping[str, str], asyncio.Event], Awaitable[None]]) -> None:
    """Run a worker with the process environment until SIGTERM/SIGINT."""
    install_from_environment(os.environ, _deployable(run.__module__))

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stop.set)
        await run(os.environ, stop)

    asyncio.run(main())


def _deployable(module: str) -> str:
    """`services.generation_worker.worker` -> `generation-worker`."""
    parts = module.split(".")
    return (parts[1] if len(parts) > 1 else module).replace("_", "-")
