"""Chat and embeddings are guarded by breakers of their own, counted apart.

The generation worker embeds the lesson (grounding) before every chat call of a course
that has documents (each test's course has one, indexed before the outage). Counted in
one breaker, a total chat outage would be offset by those successful embeddings and
read as a 50 % failure rate; a threshold above that would never open. And an embeddings
outage would darken "Generate" although chat, which generation needs, works.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import redis
from ai_platform import Platform, running_platform
from fake_openai import FakeOpenAI
from kafka_broker import Broker
from pdf_factory import known_sentences, text_pdf

from services.ai.breaker_state import breaker_key
from services.ai.provider_breakers import CHAT_BREAKER, EMBEDDINGS_BREAKER

pytestmark = pytest.mark.anyio

# A threshold above one half: what a shared breaker, diluted by embeddings, never reaches.
STRICT = {
    "BREAKER_FAILURE_RATE": "0.6",
    "BREAKER_MINIMUM_CALLS": "3",
    "GENERATION_MAX_ATTEMPTS": "6",
}


async def grounded_lesson(platform: Platform) -> tuple[str, str]:
    """A lesson whose course has an indexed document, so jobs on it are grounded."""
    course_id, lesson_id = await platform.lesson()
    accepted = await platform.upload(course_id, text_pdf([" ".join(known_sentences(3))]))
    assert accepted.status_code == 202, accepted.text
    await platform.document_reaches(accepted.json()["document_id"], "indexed")
    return course_id, lesson_id


def published_state(redis_client: redis.Redis, name: str) -> str | None:
    raw: bytes | None = redis_client.get(breaker_key(name))  # type: ignore[assignment]
    return None if raw is None else str(msgspec.json.decode(raw)["state"])


async def test_a_chat_outage_opens_the_chat_breaker_whatever_embeddings_do(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI, redis_client: redis.Redis
) -> None:
    async with running_platform(
        core_db, kafka_broker, fake_openai.base_url, environ=STRICT
    ) as platform:
        course_id, lesson_id = await grounded_lesson(platform)
        embedded_before = len(fake_openai.embedding_requests)
        fake_openai.fail_next(500, times=1000, only="chat")
        job_id = (await platform.request(course_id, lesson_id)).json()["job_id"]
        status = await platform.status_becomes("degraded")
        assert "provider" in status["reason"]
        # grounding calls kept succeeding meanwhile
        assert len(fake_openai.embedding_requests) > embedded_before
        assert published_state(redis_client, CHAT_BREAKER) == "open"
        assert published_state(redis_client, EMBEDDINGS_BREAKER) in (None, "closed")
        fake_openai.reset()
        assert (await platform.wait_for(job_id, "succeeded"))["status"] == "succeeded"
        await platform.status_becomes("available")


async def test_an_embeddings_outage_leaves_generation_available(
    core_db, kafka_broker: Broker, fake_openai: FakeOpenAI, redis_client: redis.Redis
) -> None:
    async with running_platform(
        core_db, kafka_broker, fake_openai.base_url, environ={"BREAKER_MINIMUM_CALLS": "2"}
    ) as platform:
        course_id, lesson_id = await grounded_lesson(platform)
        fake_openai.fail_next(500, times=1000, only="embeddings")
        jobs = [
            (await platform.request(course_id, lesson_id, instructions=f"take {n}")).json()
            for n in range(3)
        ]
        for job in jobs:  # grounding and the semantic cache are skipped, not the answer
            assert (await platform.wait_for(job["job_id"], "succeeded"))["attempts"] == 1
        for _ in range(100):
            if published_state(redis_client, EMBEDDINGS_BREAKER) == "open":
                break
            await asyncio.sleep(0.05)
        assert published_state(redis_client, EMBEDDINGS_BREAKER) == "open"
        assert published_state(redis_client, CHAT_BREAKER) in (None, "closed")
        assert (await platform.status())["generation"] == "available"
