"""The semantic cache with its verification stage, on Qdrant local mode and the fake OpenAI server.

The fake server's embeddings are bags of words: two requests with the same words in
another order embed to the very same vector (cosine 1.0). Those are the cases the
verifier exists for: nothing in the embedding tells them apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_openai import embed_text
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from services.ai.cache_tuning import TUNED, UNTUNED, configured_decision, tuning_for
from services.ai.cache_verifier import REASONS, VERIFIERS, ThresholdOnly, Verdict
from services.ai.semantic_cache import CacheScope, CacheStats, OpenAIEmbedder, SemanticCache
from services.ai.settings import AISettings
from services.generation_worker.generation import request_text
from services.generation_worker.worker import cache_counters
from services.runtime.settings import SettingsError

pytestmark = pytest.mark.anyio

SCOPE = CacheScope("course-1", "lesson-1", "hash-1", "quiz", "2026-11-28.1", "gpt-4o-mini")
CAUSES = request_text("quiz", "Questions on the causes, not the effects")
EFFECTS = request_text("quiz", "Questions on the effects, not the causes")
ALGEBRA = request_text("quiz", "More questions on algebra than on geometry")
GEOMETRY = request_text("quiz", "More questions on geometry than on algebra")


def cosine(a: str, b: str) -> float:
    return sum(x * y for x, y in zip(embed_text(a), embed_text(b), strict=True))


@pytest.fixture
async def qdrant() -> AsyncIterator[AsyncQdrantClient]:
    local = AsyncQdrantClient(location=":memory:")
    yield local
    await local.close()


def cache_with(qdrant: AsyncQdrantClient, client: AsyncOpenAI, **options: object) -> SemanticCache:
    return SemanticCache(
        qdrant,
        OpenAIEmbedder(client, model="text-embedding-3-small", dimensions=256),
        **options,  # type: ignore[arg-type]
    )


async def test_another_answer_is_a_miss_even_with_the_same_embedding(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
) -> None:
    assert cosine(CAUSES, EFFECTS) == pytest.approx(1.0)
    assert cosine(ALGEBRA, GEOMETRY) == pytest.approx(1.0)
    cache = cache_with(qdrant, openai_client)  # the rule verifier by default
    await cache.store(SCOPE, CAUSES, "the causes quiz")
    await cache.store(SCOPE, ALGEBRA, "the algebra quiz")
    assert await cache.lookup(SCOPE, EFFECTS) is None
    assert await cache.lookup(SCOPE, GEOMETRY) is None
    # A rewording of what was stored is still served.
    assert (
        await cache.lookup(
            SCOPE, request_text("quiz", "questions on the causes, not the effects please")
        )
        == "the causes quiz"
    )
    assert cache.stats() == CacheStats(
        hits=1, misses=2, near_misses=0, errors=0, stores=2, rejections=2
    )
    reasons = cache.rejections_by_reason()
    assert reasons["negation"] == 1
    assert reasons["order"] == 1
    assert set(reasons) == set(REASONS)
    assert sum(reasons.values()) == 2


async def test_without_a_verifier_the_same_embedding_serves_the_wrong_answer(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
) -> None:
    # The old decision, kept as the benchmark's reference: what the verifier prevents.
    cache = cache_with(qdrant, openai_client, verifier=ThresholdOnly())
    await cache.store(SCOPE, CAUSES, "the causes quiz")
    assert await cache.lookup(SCOPE, EFFECTS) == "the causes quiz"
    assert cache.rejections == 0


async def test_a_rejected_nearest_candidate_does_not_hide_a_right_one(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
) -> None:
    # Both stored requests embed alike; only the verifier can tell which one fits.
    cache = cache_with(qdrant, openai_client, threshold=0.9)
    await cache.store(SCOPE, CAUSES, "the causes quiz")
    await cache.store(SCOPE, EFFECTS, "the effects quiz")
    for _ in range(3):  # whichever of the two Qdrant returns first
        assert await cache.lookup(SCOPE, EFFECTS) == "the effects quiz"
        assert await cache.lookup(SCOPE, CAUSES) == "the causes quiz"
    assert cache.rejections == 0
    # With one candidate a lookup may miss, but it is never served the other answer.
    one = cache_with(qdrant, openai_client, threshold=0.9, candidates=1)
    assert await one.lookup(SCOPE, EFFECTS) in (None, "the effects quiz")
    assert await one.lookup(SCOPE, CAUSES) in (None, "the causes quiz")


async def test_a_candidate_below_the_threshold_is_never_verified(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
) -> None:
    class Counting:
        name = "counting"

        def __init__(self) -> None:
            self.calls = 0

        def verify(self, stored: str, probe: str) -> Verdict:
            del stored, probe
            self.calls += 1
            return Verdict(same_answer=True)

        def warm(self) -> None:
            pass

    counting = Counting()
    cache = cache_with(qdrant, openai_client, threshold=0.92, verifier=counting)
    await cache.store(SCOPE, "Make a short quiz about fractions", "answer")
    near = "Make a short quiz not about fractions"
    assert 0.87 <= cosine("Make a short quiz about fractions", near) < 0.92
    assert await cache.lookup(SCOPE, near) is None
    assert counting.calls == 0
    assert (cache.near_misses, cache.rejections) == (1, 0)


async def test_a_failing_verifier_is_a_miss_never_a_failed_job(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
) -> None:
    class Broken:
        name = "broken"

        def verify(self, stored: str, probe: str) -> Verdict:
            del stored, probe
            raise RuntimeError("a bug in a verifier")

        def warm(self) -> None:
            pass

    cache = cache_with(qdrant, openai_client, verifier=Broken())
    await cache.store(SCOPE, CAUSES, "the causes quiz")
    assert await cache.lookup(SCOPE, CAUSES) is None
    assert (cache.hits, cache.errors) == (0, 1)


async def test_the_worker_metrics_name_every_rejection_reason(
    qdrant: AsyncQdrantClient, openai_client: AsyncOpenAI
) -> None:
    cache = cache_with(qdrant, openai_client)
    await cache.store(SCOPE, CAUSES, "the causes quiz")
    await cache.lookup(SCOPE, EFFECTS)
    counters = cache_counters(cache)
    assert counters["eduscale_semantic_cache_rejections_total"] == 1
    assert counters["eduscale_semantic_cache_rejections_negation_total"] == 1
    assert counters["eduscale_semantic_cache_rejections_number_total"] == 0
    assert counters["eduscale_semantic_cache_misses_total"] == 1
    assert {f"eduscale_semantic_cache_rejections_{r}_total" for r in REASONS} <= set(counters)


def test_nonsense_candidates_are_refused() -> None:
    with pytest.raises(ValueError, match="candidates must be positive"):
        SemanticCache(None, None, candidates=0)  # type: ignore[arg-type]


# --- settings per embedding model --------------------------------------------------------


def test_the_worker_takes_the_tuned_row_of_its_embedding_model() -> None:
    minilm = AISettings.from_env({"OPENAI_EMBEDDING_MODEL": "all-MiniLM-L6-v2"})
    threshold, verifier, tuning = configured_decision(minilm)
    assert tuning is TUNED["all-MiniLM-L6-v2"]
    assert tuning.measured_on is not None
    assert (threshold, verifier.name) == (tuning.threshold, tuning.verifier)
    production = configured_decision(AISettings.from_env({}))
    assert production[2] is TUNED["text-embedding-3-small"]
    assert tuning_for("some-new-model") is UNTUNED
    assert (
        configured_decision(AISettings.from_env({"OPENAI_EMBEDDING_MODEL": "x"}))[1].name == "rules"
    )
    for row in TUNED.values():
        assert row.verifier in VERIFIERS
        assert 0 < row.threshold <= 1
        assert row.evidence


def test_the_environment_overrides_the_tuned_row() -> None:
    settings = AISettings.from_env(
        {"SEMANTIC_CACHE_THRESHOLD": "0.83", "SEMANTIC_CACHE_VERIFIER": "guard"}
    )
    threshold, verifier, _ = configured_decision(settings)
    assert (threshold, verifier.name) == (0.83, "guard")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SEMANTIC_CACHE_THRESHOLD", "1.5", "SEMANTIC_CACHE_THRESHOLD='1.5' is not allowed"),
        ("SEMANTIC_CACHE_THRESHOLD", "high", "use a number from 0.3 to 1"),
        ("SEMANTIC_CACHE_VERIFIER", "llm", "use one of guard, rules, scope, threshold_only"),
    ],
)
def test_a_malformed_cache_setting_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        AISettings.from_env({variable: value})
