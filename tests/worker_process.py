"""The generation worker as a process of its own (`eduscale worker generation`), for the
tests that kill or drain it, and what they watch it by: the provider's calls and the
group's commits.

The platform's in-process worker (`ai_platform.running_platform`) cannot be killed; these
tests stop it and start this one, in a consumer group of their own (Tansu holds a group a
member has just left for minutes before it admits a new one).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
from ai_platform import worker_environ
from confluent_kafka import Consumer, TopicPartition
from fake_openai import FakeOpenAI
from kafka_broker import PARTITIONS, QUIET, Broker

from services.runtime.kafka.settings import consumer_config

__all__ = ["chat_calls_reach", "committed_offsets", "offsets_stay_uncommitted", "worker_process"]


@asynccontextmanager
async def worker_process(
    database_url: str, broker: Broker, openai_url: str, **extra: str
) -> AsyncIterator[anyio.abc.Process]:
    """The worker, as a pod runs it, while the block runs; SIGKILLed on leaving if it still runs.

    `extra` adds to the pod's environment (`ai_platform.worker_environ`), e.g. its group.
    """
    env = {**os.environ, **worker_environ(database_url, broker, openai_url, **extra)}
    async with await anyio.open_process(
        [sys.executable, "-m", "infra.cli", "worker", "generation"],
        env=env,
        stdout=None,
        stderr=None,
    ) as worker:
        try:
            yield worker
        finally:  # whatever happened in the block: leaving it waits for the exit
            if worker.returncode is None:
                worker.kill()
            await worker.wait()


async def chat_calls_reach(fake: FakeOpenAI, count: int, within: float = 60) -> None:
    """Wait until the provider has received `count` chat requests."""
    deadline = time.monotonic() + within
    while fake.chat_calls < count:
        assert time.monotonic() < deadline, f"{fake.chat_calls} chat calls, not {count}"
        await asyncio.sleep(0.05)


def committed_offsets(broker: Broker, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of every partition of `topic` that has one."""
    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": QUIET})
    try:
        partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
        return {
            tp.partition: tp.offset
            for tp in probe.committed(partitions, timeout=10)
            if tp.offset >= 0
        }
    finally:
        probe.close()


async def offsets_stay_uncommitted(
    broker: Broker, group: str, topic: str, intervals: int = 3
) -> None:
    """Watch the group's commits for `intervals` auto-commit rounds; none may appear.

    The consumer commits what was stored every `auto.commit.interval.ms`, so a stored
    offset shows up here within one round; several rounds leave no doubt.
    """
    config = consumer_config(broker.settings(), group=group, client_id="probe")
    rounds = intervals * int(config["auto.commit.interval.ms"]) / 1000
    deadline = time.monotonic() + rounds
    while time.monotonic() < deadline:
        committed = await anyio.to_thread.run_sync(committed_offsets, broker, group, topic)
        assert committed == {}, f"offsets committed while the messages were open: {committed}"
        await asyncio.sleep(0.2)
