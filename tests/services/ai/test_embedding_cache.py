"""`CachedEmbedder` over the real openai client and the fake server: calls it saves, and not more."""

from __future__ import annotations

import asyncio

import openai
import pytest
from fake_openai import FakeOpenAI, embed_text
from openai import AsyncOpenAI

from services.ai.embedding_cache import CachedEmbedder
from services.ai.semantic_cache import OpenAIEmbedder

pytestmark = pytest.mark.anyio


def embedder(client: AsyncOpenAI, size: int = 1024) -> CachedEmbedder:
    return CachedEmbedder(OpenAIEmbedder(client, model="m", dimensions=32), size=size)


async def test_a_text_seen_before_costs_no_call_and_gets_the_same_vector(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    cached = embedder(openai_client)
    first = await cached.embed(["quiz: default"])
    again = await cached.embed(["quiz: default"])
    assert fake_openai.embedding_calls == 1
    assert again == first == [pytest.approx(embed_text("quiz: default", 32), abs=1e-6)]


async def test_only_the_unknown_texts_of_a_batch_are_sent_and_order_is_kept(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    cached = embedder(openai_client)
    await cached.embed(["two"])
    vectors = await cached.embed(["one", "two", "three", "one"])
    assert fake_openai.embedding_calls == 2
    assert fake_openai.embedding_requests[1]["input"] == ["one", "three"]
    assert vectors == [
        pytest.approx(embed_text(text, 32), abs=1e-6) for text in ["one", "two", "three", "one"]
    ]


async def test_concurrent_requests_for_one_new_text_share_one_call(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.latency_seconds = 0.3  # all 20 ask while the first call is still open
    cached = embedder(openai_client)
    results = await asyncio.gather(*(cached.embed(["quiz: default"]) for _ in range(20)))
    assert fake_openai.embedding_calls == 1
    assert all(result == results[0] for result in results)


async def test_a_failed_call_is_not_kept_and_its_waiters_see_the_error(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.latency_seconds = 0.2
    fake_openai.fail_next(500, only="embeddings")
    cached = embedder(openai_client)
    outcomes = await asyncio.gather(
        *(cached.embed(["quiz: default"]) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, openai.InternalServerError) for outcome in outcomes)
    assert fake_openai.embedding_calls == 1
    fake_openai.latency_seconds = 0
    assert await cached.embed(["quiz: default"]) == [
        pytest.approx(embed_text("quiz: default", 32), abs=1e-6)
    ]
    assert fake_openai.embedding_calls == 2  # asked again, not served the failure


async def test_a_cancelled_call_leaves_its_waiters_to_ask_again(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.latency_seconds = 0.5
    cached = embedder(openai_client)
    first = asyncio.create_task(cached.embed(["quiz: default"]))
    await asyncio.sleep(0.1)
    waiter = asyncio.create_task(cached.embed(["quiz: default"]))
    await asyncio.sleep(0.1)
    first.cancel()  # e.g. the semantic cache's timeout on the caller that made the call
    assert await waiter == [pytest.approx(embed_text("quiz: default", 32), abs=1e-6)]
    assert fake_openai.embedding_calls == 2


async def test_the_least_recently_used_text_goes_first_when_full(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    cached = embedder(openai_client, size=2)
    await cached.embed(["a"])
    await cached.embed(["b"])
    await cached.embed(["a"])  # used: "b" is now the oldest
    await cached.embed(["c"])
    assert fake_openai.embedding_calls == 3
    await cached.embed(["a"])
    assert fake_openai.embedding_calls == 3  # kept
    await cached.embed(["b"])
    assert fake_openai.embedding_calls == 4  # evicted, asked again


async def test_a_cache_of_no_entries_is_refused(openai_client: AsyncOpenAI) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        embedder(openai_client, size=0)
