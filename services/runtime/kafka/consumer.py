"""The at-least-once consumer loop every worker runs, with up to `concurrency` jobs in flight.

Each polled message becomes a job (an asyncio task) as long as fewer than `concurrency`
are running; the handlers wait on I/O (the provider, the databases), so one process
keeps many calls in flight. Offsets are stored only when a message is done (handled, or
safely on the dead-letter topic), and only up to the lowest unfinished offset of its
partition (`PartitionOffsets`): a crash redoes at most what was in flight, which the
handlers' idempotency absorbs, and never skips a message. With `concurrency=1` the loop
handles one message at a time, as it always did.

What happens on failure depends on what failed, job by job:

- a `PoisonMessage` or a permanent error: dead-lettered at once (with its headers);
- a transient error (the worker's `is_transient` decides): retried with exponential
  backoff and full jitter, up to `RetryPolicy.max_attempts`, then dead-lettered;
- `BreakerOpen` (the provider is known to be down): the message is not burned and no
  attempt is counted; the consumer takes no new job and pauses its partitions for the
  breaker's cool-down, then the job tries again. It keeps polling while paused: a
  consumer that stops polling for `max.poll.interval.ms` is evicted from its group, and a
  cool-down may be longer than that. A message polled meanwhile is put back (seek);
- the dead-letter topic cannot be reached: the job keeps the message (its offset stays
  unfinished) and publishes again every second.

`ordering_key` (optional) names messages that must not run at the same time: a job
whose key equals a running job's waits for it, so they run in partition order.

A revoke lets the revoked partitions' running attempts finish (up to `revoke_grace`
seconds, then they are cancelled), abandons their retry waits and breaker pauses, and
commits what is finished synchronously (the next owner starts at the lowest unfinished
offset, so it redoes only what we did not finish). The revoke never waits much longer
than the grace: if the jobs have not ended a few seconds after it (a handler that ignores
cancellation, an event loop held up), it commits what was stored, which never passes an
unfinished offset, and lets the rebalance go on; those jobs store nothing when they end.
A lost assignment commits nothing.

Only the thread that polls calls the consumer while a poll may be in flight. Since
confluent-kafka 2.16 a client serialises the calls made on it: a call waits, sleeping,
until the one in progress returns. A job that stored its offset from the event loop
would therefore hold the loop until the poll returned, and a poll that is running the
revoke callback waits for the loop to settle the jobs: neither would move until the
callback timed out. So a finished job only records its offset, and the polling thread
stores the recorded offsets before each poll and before the commit on revoke.
SIGTERM (the stop event) takes no new job, lets every running attempt finish, abandons
retry waits and breaker pauses without storing their offsets (they are redelivered), and
closes the consumer, which commits and leaves the group.
"""

import asyncio
import concurrent.futures
import contextlib
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio.to_thread
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from services.runtime.kafka.dead_letters import DeadLetterError, Failure, publish_dead_letter
from services.runtime.kafka.envelope import PoisonMessage
from services.runtime.kafka.offsets import Partition, PartitionOffsets

__all__ = ["ConsumerLoop", "RetryPolicy", "Stopped", "commit_on_revoke"]

_log = structlog.get_logger("eduscale.messaging.consumer")
_POLL_SECONDS = 0.5
_DLQ_TIMEOUT_SECONDS = 10.0
_DLQ_RETRY_SECONDS = 1.0
_REVOKE_SLACK_SECONDS = 5.0
"""How long past `revoke_grace` a revoke waits for cancelled jobs to end before it gives
up on them: cancelling takes milliseconds unless the handler ignores it or the event loop
is held up, and the rebalance of the whole group waits for this member meanwhile."""


class Stopped(Exception):
    """Raised inside a job's wait when it is to leave its message (stop, revoke, loss)."""


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


@dataclass(eq=False)
class _Job:
    message: Message
    partition: Partition
    offset: int
    epoch: int
    """The partition's assignment this job belongs to (see `ConsumerLoop._epochs`)."""
    leave: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the job must not start another attempt (stop, revoke, lost partition)."""
    task: "asyncio.Task[None] | None" = None


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
        concurrency: int = 1,
        ordering_key: Callable[[Message], bytes | None] | None = None,
        revoke_grace: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._consumer = consumer
        self._producer = dlq_producer
        self._topic = topic
        self._handler = handler
        self._is_transient = is_transient
        self._breaker_open = breaker_open
        self._on_dead_letter = on_dead_letter
        self._stop = stop
        self._retry = retry
        self._concurrency = concurrency
        self._ordering_key = ordering_key
        self._revoke_grace = revoke_grace
        self._offsets = PartitionOffsets()
        self._lock = threading.Lock()
        """Guards `_offsets`, `_epochs` and `_to_store`: the revoke callback (the polling
        thread) and the jobs (the event loop) both use them."""
        self._epochs: dict[Partition, int] = {}
        """Bumped when a partition is revoked or lost: a job of an older epoch that ends
        later (it outlived the revoke's grace) stores nothing for a partition it left."""
        self._to_store: dict[Partition, int] = {}
        """Offsets to store, recorded by finished jobs, stored by the polling thread."""
        self._jobs: set[_Job] = set()
        self._tails: dict[bytes, _Job] = {}
        self._changed = asyncio.Event()
        self._paused_until = 0.0
        self._paused = False
        self._crash: BaseException | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self.processed = 0
        self.dead_lettered = 0

    @property
    def in_flight(self) -> int:
        """Jobs taken and not yet done or left."""
        return len(self._jobs)

    async def run(self) -> None:
        """Poll and handle messages until stopped; then drain and close the consumer."""
        self._event_loop = asyncio.get_running_loop()
        self._consumer.subscribe(
            [self._topic], on_revoke=self._revoked, on_lost=self._lost, on_assign=self._assigned
        )
        try:
            while not self._stop.is_set():
                if self._crash is not None:
                    raise self._crash
                if self._breaker_paused():
                    await self._poll_paused()
                elif len(self._jobs) >= self._concurrency:
                    await self._wait_for_change()
                else:
                    await self._take_one()
        finally:
            await self._drain()
            await anyio.to_thread.run_sync(self._close)

    def _poll(self, timeout: float) -> Message | None:
        """In a worker thread: store what the jobs finished, then poll."""
        self._store_recorded()
        return self._consumer.poll(timeout)

    def _store_recorded(self) -> None:
        """Store the offsets the jobs recorded; only from the thread that polls."""
        with self._lock:
            recorded, self._to_store = self._to_store, {}
        for (topic, partition), offset in recorded.items():
            try:
                self._consumer.store_offsets(offsets=[TopicPartition(topic, partition, offset)])
            except KafkaException as error:  # the partition is no longer ours: its owner redoes it
                _log.info("offset_not_stored", partition=partition, error=str(error))

    def _close(self) -> None:
        """In a worker thread, after the drain: store the last offsets, commit, leave."""
        self._store_recorded()
        self._consumer.close()

    async def _take_one(self) -> None:
        message = await anyio.to_thread.run_sync(self._poll, _POLL_SECONDS)
        if message is None or not self._usable(message):
            return
        if self._breaker_paused() or self._stop.is_set():
            self._put_back(message)  # a job opened the breaker while we polled
            return
        self._start(message)

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise KafkaException(error)
        _log.warning("consumer_error", error=error.str())
        return False

    def _start(self, message: Message) -> None:
        partition = (message.topic() or self._topic, message.partition() or 0)
        with self._lock:
            job = _Job(message, partition, message.offset() or 0, self._epochs.get(partition, 0))
            self._offsets.started(job.partition, job.offset)
        key = self._ordering_key(message) if self._ordering_key is not None else None
        before = self._tails.get(key) if key is not None else None
        if key is not None:
            self._tails[key] = job
        self._jobs.add(job)
        job.task = asyncio.create_task(self._run_job(job, before, key))

    async def _run_job(self, job: _Job, before: _Job | None, key: bytes | None) -> None:
        try:
            if before is not None and before.task is not None:
                await asyncio.wait([before.task])  # same ordering key: after it, never beside
            await self._process(job)
        except Stopped:
            _log.info("job_left", partition=job.partition[1], offset=job.offset)
        except asyncio.CancelledError:
            _log.warning("job_cancelled", partition=job.partition[1], offset=job.offset)
            raise
        except Exception as error:  # noqa: BLE001 - a bug in the loop: crash the worker
            self._crash = error
        finally:
            self._jobs.discard(job)
            if key is not None and self._tails.get(key) is job:
                del self._tails[key]
            self._changed.set()

    async def _process(self, job: _Job) -> None:
        message = job.message
        attempts = 0
        first_failure: datetime | None = None
        while True:
            if job.leave.is_set():
                raise Stopped
            try:
                await self._handler(message)
            except Exception as error:  # noqa: BLE001 - every failure is classified below
                if isinstance(error, self._breaker_open):
                    self._pause_for(float(getattr(error, "retry_after", 1.0)))
                    await self._until_resumed(job)
                    continue
                attempts += 1
                first_failure = first_failure or datetime.now(UTC)
                permanent = isinstance(error, PoisonMessage) or not self._is_transient(error)
                if permanent or attempts >= self._retry.max_attempts:
                    await self._dead_letter(job, Failure.of(error, attempts, first_failure))
                    return
                delay = self._retry.delay(attempts)
                _log.info("retrying", error=type(error).__name__, attempt=attempts, delay=delay)
                await self._hold(job, delay)
                continue
            self._finished(job)
            self.processed += 1
            return

    def _finished(self, job: _Job) -> None:
        """Record the partition's offset to store if this job was its lowest unfinished one.

        Recorded, not stored: the polling thread stores it (see the module docstring).
        """
        with self._lock:
            if job.epoch != self._epochs.get(job.partition, 0):
                _log.info("offset_not_stored", partition=job.partition[1], offset=job.offset)
                return  # revoked before it ended: its new owner redoes it
            storable = self._offsets.finished(job.partition, job.offset)
            if storable is not None:
                self._to_store[job.partition] = storable

    async def _dead_letter(self, job: _Job, failure: Failure) -> None:
        message = job.message
        while True:
            try:
                await anyio.to_thread.run_sync(
                    lambda: publish_dead_letter(
                        self._producer, message, failure, timeout=_DLQ_TIMEOUT_SECONDS
                    )
                )
                break
            except DeadLetterError as error:
                # Keep the message (its offset stays unfinished) and publish it again.
                _log.error("dead_letter_failed", error=str(error))
                await self._hold(job, _DLQ_RETRY_SECONDS)
        try:
            await self._on_dead_letter(message, failure)
        except Exception:  # noqa: BLE001 - the record is safe on the DLQ; log and go on
            _log.exception("on_dead_letter_failed")
        self._finished(job)
        self.dead_lettered += 1
        _log.warning(
            "dead_lettered",
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            error_class=failure.error_class,
            attempts=failure.attempts,
        )

    def _clock(self) -> float:
        return asyncio.get_running_loop().time()

    def _breaker_paused(self) -> bool:
        if self._paused_until > self._clock():
            return True
        if self._paused:  # the cool-down is over: fetch again
            self._paused = False
            self._consumer.resume(self._consumer.assignment())
            self._changed.set()
        return False

    def _pause_for(self, seconds: float) -> None:
        """Take no new job for `seconds` (the breaker's cool-down); the loop keeps polling."""
        until = self._clock() + max(seconds, 0.05)
        if until > self._paused_until:
            self._paused_until = until
            _log.info("paused_for_breaker", seconds=round(seconds, 2))
        self._changed.set()

    async def _poll_paused(self) -> None:
        """Poll with every partition paused, to stay in the group until the cool-down ends.

        Polling a paused partition returns nothing, and lets the consumer heartbeat and
        take part in rebalances. A partition assigned during the pause is not paused
        yet: a message from it is put back (seek) and its partition paused too.
        """
        if not self._paused:
            self._paused = True
            self._consumer.pause(self._consumer.assignment())
        left = self._paused_until - self._clock()
        polled = await anyio.to_thread.run_sync(self._poll, max(0.0, min(left, _POLL_SECONDS)))
        if polled is not None:
            self._put_back(polled)

    def _put_back(self, message: Message) -> None:
        """Undo a poll made while no job may start: the message is read again later."""
        if not self._usable(message):
            return
        position = TopicPartition(
            message.topic() or self._topic, message.partition() or 0, message.offset() or 0
        )
        self._consumer.pause([position])
        self._consumer.seek(position)
        self._paused = True  # resumed with the whole assignment when the wait is over

    async def _until_resumed(self, job: _Job) -> None:
        await self._hold(job, self._paused_until - self._clock())

    async def _hold(self, job: _Job, seconds: float) -> None:
        """Wait `seconds`; `Stopped` if the job is to leave its message meanwhile."""
        if job.leave.is_set():
            raise Stopped
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.leave.wait(), timeout=max(seconds, 0.0))
        if job.leave.is_set():
            raise Stopped

    async def _wait_for_change(self) -> None:
        """Until a job ends, the breaker opens, or a short while passes."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout=_POLL_SECONDS)

    async def _settle(self, jobs: list[_Job], grace: float | None) -> None:
        """Let `jobs` finish their running attempt (cancel them after `grace`)."""
        for job in jobs:
            job.leave.set()
        tasks = [job.task for job in jobs if job.task is not None]
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def _drain(self) -> None:
        """On stop: every running attempt finishes (and stores its offset); waits are left."""
        self._stop.set()
        await self._settle(list(self._jobs), grace=None)

    async def _settle_partitions(self, gone: set[Partition]) -> None:
        """On the event loop: settle the jobs of the partitions in `gone`."""
        jobs = [job for job in self._jobs if job.partition in gone]
        await self._settle(jobs, grace=self._revoke_grace)

    def _leave_partitions(self, partitions: list[TopicPartition]) -> None:
        """From the polling thread (inside a poll): settle the jobs of `partitions`.

        Waits at most `revoke_grace` plus a few seconds; then the jobs still running are
        left to end on their own, and store nothing when they do.
        """
        gone = {(tp.topic, tp.partition) for tp in partitions}
        loop = self._event_loop
        if loop is not None and loop.is_running():
            settling = asyncio.run_coroutine_threadsafe(self._settle_partitions(gone), loop)
            try:
                settling.result(timeout=self._revoke_grace + _REVOKE_SLACK_SECONDS)
            except concurrent.futures.TimeoutError:
                settling.cancel()
                _log.error(
                    "revoke_grace_exceeded",
                    partitions=sorted(partition for _topic, partition in gone),
                    grace=self._revoke_grace,
                )
        with self._lock:
            for partition in gone:
                self._epochs[partition] = self._epochs.get(partition, 0) + 1
                self._offsets.forget(partition)

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        _log.info("partitions_assigned", partitions=[p.partition for p in partitions])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._leave_partitions(partitions)
        self._store_recorded()  # what the settled jobs finished, before the commit
        commit_on_revoke(consumer, partitions)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        _log.warning("partitions_lost", partitions=[p.partition for p in partitions])
        self._leave_partitions(partitions)
        gone = {(tp.topic, tp.partition) for tp in partitions}
        with self._lock:  # another member owns them now: nothing of theirs is stored
            self._to_store = {p: o for p, o in self._to_store.items() if p not in gone}


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
