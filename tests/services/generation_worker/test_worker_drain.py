"""`eduscale worker generation` as a process: SIGTERM mid-job drains it, then it leaves."""

from __future__ import annotations

import signal

import anyio
import pytest
from ai_platform import running_platform
from consumer_harness import committed
from fake_openai import FakeOpenAI
from kafka_broker import Broker
from worker_process import chat_calls_reach, worker_process

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

# A group of its own: Tansu holds a group that a member just left for minutes before it
# admits a new one, and the platform's in-process worker has just left the usual group.
GROUP = "generation-drained"


async def test_sigterm_lets_the_running_job_finish_and_its_message_is_done(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        await platform.stop_worker()  # the worker under test is a process of its own
        course_id, lesson_id = await platform.lesson()
        fake_openai.latency_seconds = 2  # every provider call takes a while, but succeeds
        async with worker_process(
            core_db,
            kafka_broker,
            fake_openai.base_url,
            OPENAI_TIMEOUT_SECONDS="10",
            KAFKA_CONSUMER_GROUP=GROUP,
        ) as worker:
            response = await platform.request(course_id, lesson_id)
            job_id = response.json()["job_id"]
            await chat_calls_reach(fake_openai, 1)  # a job in flight
            worker.send_signal(signal.SIGTERM)
            with anyio.fail_after(60):
                exit_code = await worker.wait()
        job = (await platform.ai.get(f"/ai/jobs/{job_id}", headers=platform.instructor)).json()
    assert exit_code == 0
    assert job["status"] == "succeeded"  # finished before the process left
    assert job["attempts"] == 1
    assert fake_openai.chat_calls == 1
    # Its offset was committed on the way out: no worker will be handed it again.
    assert sum(committed(kafka_broker.settings(), GROUP).values()) == 1
