"""The at-least-once consumer loop every worker runs.

Offsets are stored only when a message is done: handled, or safely on the dead-letter
topic. What happens on failure depends on what failed:

- a `PoisonMessage` or a permanent error: dead-lettered at once;
- a transient error (the worker's `is_transient` decides): retried with exponential
  backoff and full jitter, up to `RetryPolicy.max_attempts`, then dead-lettered;
- `BreakerOpen` (the provider is known to be down): the message is not burned; the
  consumer pauses its partitions for the breaker's cool-down, resumes, and tries again,
  without counting an attempt. It keeps polling while paused: a consumer that stops
  polling for `max.poll.interval.ms` is evicted from its group, and a cool-down may be
  longer than that. If the pause polls away the message's partition (a rebalance), the
  message is left to its new owner.

A revoke commits the stored offsets synchronously (the next owner starts where we
stopped); a lost assignment commits nothing. SIGTERM (the stop event) lets the in-flight
message finish, abandons a retry wait or a breaker pause without storing its offset (it
is redelivered), and closes the consumer, which commits and leaves the group.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio.to_thread
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from services.runtime.kafka.dead_letters import DeadLetterError, Failure, publish_dead_letter
from services.runtime.kafka.envelope import PoisonMessage

__all__ = ["ConsumerLoop", "RetryPolicy", "Stopped", "commit_on_revoke"]

_log = structlog.get_logger("eduscale.messaging.consumer")
_POLL_SECONDS = 0.5
_DLQ_TIMEOUT_SECONDS = 10.0


class Stopped(Exception):
    """Raised inside a wait when the worker is asked to stop."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and delay."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


class ConsumerLoop:
    """Consume one topic with a handler, at least once, until the stop event is set."""

    def __init__(
        self,
        consumer: Consumer,
        dlq_producer: Producer,
        topic: str,
        handler: Callable[[Message], Awaitable[None]],
        *,
        is_transient: Callable[[BaseException], bool],
        breaker_open: type[BaseException],
        on_dead_letter: Callable[[Message, Failure], Awaitable[None]],
        stop: asyncio.Event,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._consumer = consumer
        self._producer = dlq_producer
        self._topic = topic
        self._handler = handler
        self._is_transient = is_transient
        self._breaker_open = breaker_open
        self._on_dead_letter = on_dead_letter
        self._stop = stop
        self._retry = retry
        self.processed = 0
        self.dead_lettered = 0

    async def run(self) -> None:
        """Poll and handle messages until stopped; then close the consumer."""
        self._consumer.subscribe(
            [self._topic], on_revoke=self._revoked, on_lost=self._lost, on_assign=self._assigned
        )
        try:
            while not self._stop.is_set():
                message = await anyio.to_thread.run_sync(self._consumer.poll, _POLL_SECONDS)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    _log.warning("consumer_error", error=error.str())
                    continue
                try:
                    await self._process(message)
                except Stopped:
                    break
        finally:
            await anyio.to_thread.run_sync(self._consumer.close)

    async def _process(self, message: Message) -> None:
        attempts = 0
        first_failure: datetime | None = None
        while True:
            try:
                await self._handler(message)
            except Exception as error:  # noqa: BLE001 - every failure is classified below
                if isinstance(error, self._breaker_open):
                    await self._pause_for(float(getattr(error, "retry_after", 1.0)))
                    if not self._owns(message):
                        _log.info("partition_moved_while_paused", partition=message.partition())
                        return
                    continue
                attempts += 1
                first_failure = first_failure or datetime.now(UTC)
                permanent = isinstance(error, PoisonMessage) or not self._is_transient(error)
                if permanent or attempts >= self._retry.max_attempts:
                    await self._dead_letter(message, Failure.of(error, attempts, first_failure))
                    return
                delay = self._retry.delay(attempts)
                _log.info("retrying", error=type(error).__name__, attempt=attempts, delay=delay)
                await self._wait(delay)
                continue
            self._consumer.store_offsets(message=message)
            self.processed += 1
            return

    async def _dead_letter(self, message: Message, failure: Failure) -> None:
        try:
            await anyio.to_thread.run_sync(
                lambda: publish_dead_letter(
                    self._producer, message, failure, timeout=_DLQ_TIMEOUT_SECONDS
                )
            )
        except DeadLetterError as error:
            # Keep the message: read it again from its offset and go through it once more.
            _log.error("dead_letter_failed", error=str(error))
            self._consumer.seek(
                TopicPartition(
                    message.topic() or self._topic, message.partition() or 0, message.offset() or 0
                )
            )
            await self._wait(1.0)
            return
        try:
            await self._on_dead_letter(message, failure)
        except Exception:  # noqa: BLE001 - the record is safe on the DLQ; log and go on
            _log.exception("on_dead_letter_failed")
        self._consumer.store_offsets(message=message)
        self.dead_lettered += 1
        _log.warning(
            "dead_lettered",
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            error_class=failure.error_class,
            attempts=failure.attempts,
        )

    async def _pause_for(self, seconds: float) -> None:
        """Pause every partition for `seconds`, polling all along to stay in the group.

        Polling a paused partition returns nothing, and lets the consumer heartbeat and
        take part in rebalances. A partition assigned during the pause is not paused
        yet: a message from it is put back (seek) and its partition paused too.
        """
        self._consumer.pause(self._consumer.assignment())
        _log.info("paused_for_breaker", seconds=round(seconds, 2))
        clock = asyncio.get_running_loop().time
        deadline = clock() + max(seconds, 0.05)
        try:
            while (left := deadline - clock()) > 0:
                if self._stop.is_set():
                    raise Stopped
                polled = await anyio.to_thread.run_sync(
                    self._consumer.poll, min(left, _POLL_SECONDS)
                )
                if polled is not None:
                    self._put_back(polled)
        finally:
            self._consumer.resume(self._consumer.assignment())

    def _put_back(self, message: Message) -> None:
        """Undo a poll made while paused: the message is read again after the pause."""
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            _log.warning("consumer_error", error=error.str())
            return
        position = TopicPartition(
            message.topic() or self._topic, message.partition() or 0, message.offset() or 0
        )
        self._consumer.pause([position])
        self._consumer.seek(position)

    def _owns(self, message: Message) -> bool:
        return any(
            tp.topic == message.topic() and tp.partition == message.partition()
            for tp in self._consumer.assignment()
        )

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Stopped

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        _log.info("partitions_assigned", partitions=[p.partition for p in partitions])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        commit_on_revoke(consumer, partitions)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        _log.warning("partitions_lost", partitions=[p.partition for p in partitions])


def commit_on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    """Commit what was stored before `partitions` go, so their next owner starts after it.

    Synchronous: the rebalance must not complete before the commit does.
    """
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as error:
        if error.args[0].code() != KafkaError._NO_OFFSET:  # noqa: SLF001 - public constant
            _log.warning("commit_on_revoke_failed", error=str(error))
    _log.info("partitions_revoked", partitions=[p.partition for p in partitions])
