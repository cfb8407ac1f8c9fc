"""The semantic cache's false-positive guard as an operator sees it: the worker's /metrics.

Real broker (Tansu), PostgreSQL, Redis and Qdrant local mode; the local OpenAI-compatible
server stands for the provider. Its embeddings are bags of words, so the two requests
below embed to the very same vector: only the verifier keeps the first one's quiz from
being served for the second.
"""

from __future__ import annotations

import httpx
import pytest
from ai_platform import running_platform
from fake_openai import FakeOpenAI, embed_text
from kafka_broker import Broker, free_port

from services.generation_worker.generation import request_text

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_client")]

CAUSES = "Questions on the causes, not the effects"
EFFECTS = "Questions on the effects, not the causes"


async def test_the_worker_counts_the_answers_its_verifier_kept_away(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    first, second = (
        embed_text(request_text("quiz", CAUSES)),
        embed_text(request_text("quiz", EFFECTS)),
    )
    assert sum(a * b for a, b in zip(first, second, strict=True)) == pytest.approx(1.0)
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        await platform.stop_indexer()  # one health port per process: the worker gets it
        await platform.stop_worker()
        port = free_port()
        platform.environ.update(HEALTH_PORT=str(port), KAFKA_CONSUMER_GROUP="generation-guard")
        await platform.start_worker()
        course_id, lesson_id = await platform.lesson()
        for instructions in (CAUSES, EFFECTS, EFFECTS):  # stored, kept away, then served
            accepted = await platform.request(course_id, lesson_id, instructions=instructions)
            await platform.wait_for(accepted.json()["job_id"], "succeeded")
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    samples = [line.split() for line in response.text.splitlines() if not line.startswith("#")]
    counts = {name: float(value) for name, value in samples}
    assert fake_openai.chat_calls == 2  # the causes quiz, then the effects quiz: never reused
    assert counts["eduscale_semantic_cache_hits_total"] == 1  # the effects quiz, asked again
    assert counts["eduscale_semantic_cache_misses_total"] == 2
    assert counts["eduscale_semantic_cache_rejections_total"] == 1
    assert counts["eduscale_semantic_cache_rejections_negation_total"] == 1
    assert counts["eduscale_semantic_cache_rejections_wording_total"] == 0
    assert counts["eduscale_semantic_cache_near_misses_total"] == 0
