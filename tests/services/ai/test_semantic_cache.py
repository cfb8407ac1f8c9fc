"""The semantic cache, on Qdrant local mode and the real openai client against the fake server.

Also checks the fake OpenAI server itself: the real SDK must parse what it sends.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import openai
import pytest
from fake_openai import FakeOpenAI, embed_text
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from services.ai.local_qdrant import ThreadedLocalQdrant
from services.ai.semantic_cache import (
    CacheScope,
    CacheStats,
    OpenAIEmbedder,
    SemanticCache,
    _is_local,
    normalise_request,
)
from services.ai.settings import AISettings
from services.generation_worker.worker import cache_collection

pytestmark = pytest.mark.anyio

SCOPE = CacheScope(
    course_id="course-1",
    lesson_id="lesson-1",
    lesson_hash="hash-1",
    kind="quiz",
    prompt_version="2026-11-28.1",
    model="gpt-4o-mini",
)
ASKED = "Make a short quiz about fractions"
PARAPHRASE = "Create a brief quiz on fractions"
NEGATED = "Make a short quiz not about fractions"
ANSWER = '{"questions": [{"prompt": "1/2 + 1/4?", "choices": ["3/4", "2/6"], "answer_index": 0}]}'
LESSON = "<lesson title='Fractions'>\nA fraction is a part of a whole.\n</lesson>"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "memory on its thread", "path on its thread"])
async def qdrant(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncQdrantClient]:
    """The plain local client, and the threaded one the runtimes open (`open_qdrant`)."""
    local = {
        "memory": lambda: AsyncQdrantClient(location=":memory:"),
        "memory on its thread": lambda: ThreadedLocalQdrant(":memory:"),
        "path on its thread": lambda: ThreadedLocalQdrant(str(tmp_path / "qdrant")),
    }[request.param]()
    yield local
    await local.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cache(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI, clock: Clock
) -> SemanticCache:
    semantic = SemanticCache(
        qdrant,
        OpenAIEmbedder(openai_client, model="text-embedding-3-small", dimensions=256),
        ttl_seconds=3600,
        clock=clock,
    )
    assert await semantic.ensure_collection()
    return semantic


def cosine(a: str, b: str) -> float:
    return sum(x * y for x, y in zip(embed_text(a), embed_text(b), strict=True))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the fake server, through the real SDK ----------------------------------------------


async def test_the_real_client_parses_chat_answers(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
):
    summary = await openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": LESSON}]
    )
    assert summary.object == "chat.completion"
    assert summary.model == "gpt-4o-mini"
    assert summary.choices[0].finish_reason == "stop"
    assert summary.choices[0].message.role == "assistant"
    assert (summary.choices[0].message.content or "").startswith("Summary of Fractions")
    assert summary.usage is not None
    assert summary.usage.total_tokens > 0

    async def quiz(lesson: str) -> dict[str, object]:
        completion = await openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Write a quiz"},
                {"role": "user", "content": lesson},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "quiz", "schema": {"type": "object"}},
            },
        )
        return dict(json.loads(completion.choices[0].message.content or ""))

    fractions = await quiz(LESSON)
    questions = fractions["questions"]
    assert isinstance(questions, list)
    assert len(questions) == 3
    for question in questions:
        assert set(question) == {"prompt", "choices", "answer_index"}
        assert isinstance(question["prompt"], str)
        assert all(isinstance(choice, str) for choice in question["choices"])
        assert 0 <= question["answer_index"] < len(question["choices"])
    assert await quiz(LESSON) == fractions  # deterministic
    assert await quiz("<lesson title='Decimals'>\nTenths and hundredths.\n</lesson>") != fractions

    fake_openai.next_chat_content = "not json"
    forced = await openai_client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert forced.choices[0].message.content == "not json"
    assert fake_openai.chat_calls == 5
    assert fake_openai.embedding_calls == 0
    assert fake_openai.chat_requests[1]["response_format"]["type"] == "json_schema"
    assert len(fake_openai.requests) == 5


async def test_the_real_client_parses_embeddings(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
):
    batch = await openai_client.embeddings.create(
        model="text-embedding-3-small", input=[ASKED, PARAPHRASE, NEGATED], dimensions=64
    )
    assert [item.index for item in batch.data] == [0, 1, 2]
    assert batch.model == "text-embedding-3-small"
    assert batch.usage.total_tokens > 0
    for item, text in zip(batch.data, [ASKED, PARAPHRASE, NEGATED], strict=True):
        assert len(item.embedding) == 64
        assert math.isclose(sum(v * v for v in item.embedding), 1.0, rel_tol=1e-5)
        assert item.embedding == pytest.approx(embed_text(text, 64), abs=1e-6)
    # The SDK asks for base64 unless told otherwise; both encodings are served.
    assert fake_openai.embedding_requests[0]["encoding_format"] == "base64"
    single = await openai_client.embeddings.create(model="m", input=ASKED, encoding_format="float")
    assert single.data[0].embedding == pytest.approx(embed_text(ASKED, 256))
    assert fake_openai.embedding_calls == 2
    assert fake_openai.requests[0]["dimensions"] == 64


def test_the_fake_embeddings_put_paraphrases_close_and_negations_apart():
    assert cosine(ASKED, PARAPHRASE) == pytest.approx(1.0)
    assert 0.87 <= cosine(ASKED, NEGATED) < 0.92  # a near-miss, by construction
    assert cosine(ASKED, "Make a short quiz about decimals") < 0.87


async def test_injected_failures_reach_the_client_as_the_sdk_errors(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
):
    messages: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
    fake_openai.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        await openai_client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    fake_openai.fail_next(429)
    with pytest.raises(openai.RateLimitError) as limited:
        await openai_client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    assert limited.value.response.headers["retry-after"] == "1"
    fake_openai.fail_next(400, body={"error": {"message": "context too long", "type": "x"}})
    with pytest.raises(openai.BadRequestError, match="context too long"):
        await openai_client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    fake_openai.fail_next(503, times=2, only="embeddings")
    ok = await openai_client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    assert ok.choices[0].message.content
    with pytest.raises(openai.InternalServerError):
        await openai_client.embeddings.create(model="m", input="x")
    # The SDK's own retries honour Retry-After and then succeed.
    fake_openai.fail_next(429, retry_after=0.01)
    retrying = openai_client.with_options(max_retries=2)
    embedded = await retrying.embeddings.create(model="m", input="x")  # one 503 left, one 429
    assert embedded.data
    assert fake_openai.chat_calls == 4
    assert fake_openai.embedding_calls == 4
    fake_openai.reset()
    assert (fake_openai.chat_calls, fake_openai.embedding_calls, fake_openai.requests) == (0, 0, [])


async def test_a_hung_request_times_out_and_never_holds_up_shutdown():
    with FakeOpenAI() as fake:
        async with AsyncOpenAI(
            base_url=fake.base_url, api_key="test", max_retries=0, timeout=0.3
        ) as impatient:
            fake.hang_next()
            with pytest.raises(openai.APITimeoutError):
                await impatient.embeddings.create(model="m", input="x")
            assert (await impatient.embeddings.create(model="m", input="x")).data
            fake.hang_next()
            with pytest.raises(openai.APITimeoutError):
                await impatient.embeddings.create(model="m", input="x")
        started = time.monotonic()
    assert time.monotonic() - started < 2


async def test_a_request_without_an_api_key_is_refused(fake_openai: FakeOpenAI):
    async with AsyncOpenAI(
        base_url=fake_openai.base_url,
        api_key="test",
        max_retries=0,
        default_headers={"Authorization": ""},
    ) as anonymous:
        with pytest.raises(openai.AuthenticationError):
            await anonymous.embeddings.create(model="m", input="x")


# --- the cache ----------------------------------------------------------------------------


async def test_a_paraphrase_hits_and_a_negation_is_a_near_miss(cache: SemanticCache):
    assert await cache.lookup(SCOPE, ASKED) is None  # empty: a plain miss
    await cache.store(SCOPE, ASKED, ANSWER)
    assert await cache.lookup(SCOPE, PARAPHRASE) == ANSWER
    assert await cache.lookup(SCOPE, "  MAKE a short   quiz about fractions ") == ANSWER
    assert await cache.lookup(SCOPE, NEGATED) is None
    assert await cache.lookup(SCOPE, "Summarise the history of Rome") is None
    assert cache.stats() == CacheStats(hits=2, misses=3, near_misses=1, errors=0, stores=1)
    assert (cache.hits, cache.misses, cache.near_misses, cache.errors) == (2, 3, 1, 0)


@pytest.mark.parametrize(
    "field", ["course_id", "lesson_id", "lesson_hash", "kind", "prompt_version", "model"]
)
async def test_another_scope_never_hits_even_with_the_same_text(cache: SemanticCache, field: str):
    await cache.store(SCOPE, ASKED, ANSWER)
    other = replace(SCOPE, **{field: "other"})
    assert await cache.lookup(other, ASKED) is None
    assert await cache.lookup(SCOPE, ASKED) == ANSWER
    await cache.store(other, ASKED, "the other answer")
    assert await cache.lookup(other, ASKED) == "the other answer"
    assert await cache.lookup(SCOPE, ASKED) == ANSWER


async def test_entries_expire_and_are_purged(
    cache: SemanticCache, qdrant: AsyncQdrantClient, clock: Clock
):
    await cache.store(SCOPE, ASKED, ANSWER)
    await cache.store(SCOPE, ASKED, ANSWER)  # the same request replaces, never duplicates
    assert (await qdrant.count(cache.collection)).count == 1
    clock.now += 3599
    assert await cache.lookup(SCOPE, PARAPHRASE) == ANSWER
    clock.now += 2
    assert await cache.lookup(SCOPE, PARAPHRASE) is None
    await cache.purge_expired()
    assert (await qdrant.count(cache.collection)).count == 0


async def test_invalidate_drops_every_answer_of_the_scope_only(cache: SemanticCache):
    other = replace(SCOPE, lesson_id="lesson-2")
    await cache.store(SCOPE, ASKED, "poisoned")
    await cache.store(SCOPE, "Write an easy quiz on fractions", "poisoned too")
    await cache.store(other, ASKED, ANSWER)
    await cache.invalidate(SCOPE)
    assert await cache.lookup(SCOPE, ASKED) is None
    assert await cache.lookup(SCOPE, "Write an easy quiz on fractions") is None
    assert await cache.lookup(other, ASKED) == ANSWER


async def test_the_embedder_sends_one_batched_request(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
):
    embedder = OpenAIEmbedder(openai_client, model="text-embedding-3-small", dimensions=32)
    vectors = await embedder.embed(["one", "two", "three"])
    assert fake_openai.embedding_calls == 1
    assert fake_openai.requests[0]["input"] == ["one", "two", "three"]
    assert fake_openai.requests[0]["dimensions"] == 32
    assert vectors == [pytest.approx(embed_text(t, 32), abs=1e-6) for t in ["one", "two", "three"]]


async def test_an_embeddings_outage_bypasses_the_cache(
    fake_openai: FakeOpenAI, cache: SemanticCache
):
    await cache.store(SCOPE, ASKED, ANSWER)
    fake_openai.fail_next(500, times=2, only="embeddings")
    assert await cache.lookup(SCOPE, ASKED) is None
    await cache.store(SCOPE, PARAPHRASE, ANSWER)  # does not raise
    assert cache.errors == 2
    assert cache.stats().stores == 1
    assert await cache.lookup(SCOPE, ASKED) == ANSWER  # healed
    assert (cache.hits, cache.misses) == (1, 0)


async def test_a_hung_embedder_is_cut_off_by_the_cache_timeout(
    fake_openai: FakeOpenAI, qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
):
    cache = SemanticCache(
        qdrant, OpenAIEmbedder(openai_client, model="m", dimensions=256), timeout_seconds=0.3
    )
    fake_openai.hang_next(only="embeddings")
    started = time.monotonic()
    assert await cache.lookup(SCOPE, ASKED) is None
    assert time.monotonic() - started < 2
    assert cache.errors == 1


async def test_a_closed_qdrant_client_bypasses_the_cache(
    cache: SemanticCache, qdrant: AsyncQdrantClient
):
    await cache.store(SCOPE, ASKED, ANSWER)
    await qdrant.close()
    assert await cache.lookup(SCOPE, ASKED) is None
    await cache.store(SCOPE, ASKED, ANSWER)
    await cache.invalidate(SCOPE)
    assert cache.errors == 3
    assert cache.hits == 0


async def test_an_unreachable_qdrant_server_bypasses_the_cache(openai_client: AsyncOpenAI):
    remote = AsyncQdrantClient(
        url=f"http://127.0.0.1:{free_port()}", check_compatibility=False, timeout=1
    )
    try:
        assert not _is_local(remote)
        cache = SemanticCache(remote, OpenAIEmbedder(openai_client, model="m", dimensions=256))
        assert not await cache.ensure_collection()  # the worker starts anyway
        assert await cache.lookup(SCOPE, ASKED) is None
        await cache.store(SCOPE, ASKED, ANSWER)
        assert cache.errors == 3
    finally:
        await remote.close()


async def test_ensure_collection_is_idempotent_and_local_mode_creates_no_indexes(
    cache: SemanticCache, qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
):
    assert _is_local(qdrant)
    assert await cache.ensure_collection()
    again = SemanticCache(qdrant, OpenAIEmbedder(openai_client, model="m", dimensions=256))
    assert await again.ensure_collection()  # no payload-index warning (warnings are errors)
    info = await qdrant.get_collection(cache.collection)
    assert info.payload_schema == {}


@pytest.mark.usefixtures("cache")  # the collection exists, with 256-dimensional vectors
async def test_a_collection_of_another_vector_size_is_refused(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
):
    resized = SemanticCache(
        qdrant, OpenAIEmbedder(openai_client, model="m", dimensions=64), dimensions=64
    )
    assert not await resized.ensure_collection()
    assert await resized.lookup(SCOPE, ASKED) is None
    assert resized.errors == 2


@pytest.mark.parametrize(
    "options",
    [{"threshold": 0}, {"threshold": 1.5}, {"near_miss_margin": -0.1}, {"ttl_seconds": 0}],
)
async def test_nonsense_settings_are_refused(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI, options
):
    embedder = OpenAIEmbedder(openai_client, model="m", dimensions=256)
    with pytest.raises(ValueError, match="must be"):
        SemanticCache(qdrant, embedder, **options)


def test_requests_are_normalised_for_case_and_spacing():
    assert normalise_request("  Make\ta  SHORT quiz \n") == "make a short quiz"


def test_each_embedding_model_and_size_gets_its_own_collection():
    def named(model: str, dimensions: str) -> str:
        return cache_collection(
            AISettings.from_env(
                {"OPENAI_EMBEDDING_MODEL": model, "OPENAI_EMBEDDING_DIMENSIONS": dimensions}
            )
        )

    assert named("text-embedding-3-small", "256") == "semantic_cache_text_embedding_3_small_256"
    assert named("text-embedding-3-small", "512") != named("text-embedding-3-small", "256")
    assert named("text-embedding-3-large", "256") != named("text-embedding-3-small", "256")
