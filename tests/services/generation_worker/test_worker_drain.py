"""`eduscale worker generation` as a process: SIGTERM mid-job drains it, then it leaves."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import anyio
import pytest
from ai_platform import running_platform, worker_environ
from consumer_harness import committed
from fake_openai import FakeOpenAI
from kafka_broker import Broker

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

# A group of its own: Tansu holds a group that a member just left for minutes before it
# admits a new one, and the platform's in-process worker has just left the usual group.
GROUP = "generation-drained"


async def chat_call_in_flight(fake_openai: FakeOpenAI) -> None:
    with anyio.fail_after(60):
        while True:
            if fake_openai.chat_calls > 0:
                return
            await asyncio.sleep(0.05)


async def test_sigterm_lets_the_running_job_finish_and_its_message_is_done(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        await platform.stop_worker()  # the worker under test is a process of its own
        course_id, lesson_id = await platform.lesson()
        fake_openai.latency_seconds = 2  # every provider call takes a while, but succeeds
        env = {
            **os.environ,
            **worker_environ(
                core_db,
                kafka_broker,
                fake_openai.base_url,
                OPENAI_TIMEOUT_SECONDS="10",
                KAFKA_CONSUMER_GROUP=GROUP,
            ),
        }
        async with await anyio.open_process(
            [sys.executable, "-m", "infra.cli", "worker", "generation"],
            env=env,
            stdout=None,
            stderr=None,
        ) as worker:
            try:
                response = await platform.request(course_id, lesson_id)
                job_id = response.json()["job_id"]
                await chat_call_in_flight(fake_openai)
                worker.send_signal(signal.SIGTERM)
                with anyio.fail_after(60):
                    exit_code = await worker.wait()
            finally:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
        job = (await platform.ai.get(f"/ai/jobs/{job_id}", headers=platform.instructor)).json()
    assert exit_code == 0
    assert job["status"] == "succeeded"  # finished before the process left
    assert job["attempts"] == 1
    assert fake_openai.chat_calls == 1
    # Its offset was committed on the way out: no worker will be handed it again.
    assert sum(committed(kafka_broker.settings(), GROUP).values()) == 1
