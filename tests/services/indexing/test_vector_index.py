"""The course-material index on Qdrant local mode, the server-side layout it creates, and
which runtimes ask a server for that layout."""

from __future__ import annotations

import json
import math
import random
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kafka_broker import Broker
from litestar.testing import AsyncTestClient
from qdrant_client import AsyncQdrantClient, models
from service_harness import settings_for

import services.ai.qdrant
from contracts.vector_layout import CollectionLayout, Distance
from services.ai.qdrant import course_index, open_qdrant
from services.ai.settings import AISettings
from services.ai.worker_context import WorkerContext
from services.ai_orchestrator.app import create_app as create_ai_app
from services.indexer_worker.worker import _index_handler as index_handler
from services.indexing.vector_index import (
    MAX_SEARCH_LIMIT,
    CourseIndex,
    IndexedChunk,
    SearchHit,
    point_id,
)

pytestmark = pytest.mark.anyio

SIZE = 4
LAYOUT: CollectionLayout = {
    "name": "course_material", "vector_size": SIZE, "distance": Distance.COSINE,
    "shard_number": 6, "replication_factor": 2, "hnsw_m": 16, "hnsw_ef_construct": 128,
    "hnsw_payload_m": 24, "partition_key": "course_id",
}  # fmt: skip


@pytest.fixture(params=["memory", "path"])
async def qdrant(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncQdrantClient]:
    if request.param == "memory":
        client = AsyncQdrantClient(location=":memory:")
    else:
        client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    yield client
    await client.close()


@pytest.fixture
async def index(qdrant: AsyncQdrantClient) -> CourseIndex:
    course_index = CourseIndex(qdrant, LAYOUT, on_server=False)
    await course_index.ensure_collection()
    return course_index


def chunks(count: int, *, prefix: str = "chunk") -> list[IndexedChunk]:
    return [
        IndexedChunk(page=1 + i // 2, chunk_index=i, text=f"{prefix} {i}") for i in range(count)
    ]


def vectors(count: int, *, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    return [[rng.uniform(-1, 1) for _ in range(SIZE)] for _ in range(count)]


async def upload(
    index: CourseIndex,
    course_id: str,
    document_id: str,
    count: int,
    *,
    seed: int = 0,
    prefix: str = "chunk",
) -> None:
    await index.upsert_chunks(
        course_id=course_id, document_id=document_id,
        chunks=chunks(count, prefix=prefix), vectors=vectors(count, seed=seed),
    )  # fmt: skip


# --- ids ------------------------------------------------------------------------------


def test_point_ids_are_deterministic_uuids_distinct_per_document_and_chunk():
    assert point_id("doc-1", 0) == point_id("doc-1", 0)
    assert uuid.UUID(point_id("doc-1", 0)).version == 5
    ids = {point_id(doc, i) for doc in ("doc-1", "doc-2", "doc-1\x1f1") for i in range(20)}
    assert len(ids) == 60


# --- the collection -------------------------------------------------------------------


async def test_ensure_collection_twice_is_a_no_op(qdrant: AsyncQdrantClient):
    index = CourseIndex(qdrant, LAYOUT, on_server=False)
    await index.ensure_collection()
    await upload(index, "course-1", "doc-1", 3)
    await index.ensure_collection()
    info = await qdrant.get_collection(index.collection)
    params = info.config.params.vectors
    assert isinstance(params, models.VectorParams)
    assert (params.size, params.distance) == (SIZE, models.Distance.COSINE)
    assert await index.count_document("doc-1") == 3
    assert index.collection == "course_material"


async def test_an_existing_collection_of_another_size_is_refused_naming_both(
    qdrant: AsyncQdrantClient,
):
    await qdrant.create_collection(
        "course_material",
        vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE),
    )
    with pytest.raises(ValueError, match=r"size 8 \(Cosine\).*size 4 \(Cosine\)"):
        await CourseIndex(qdrant, LAYOUT, on_server=False).ensure_collection()


async def test_an_existing_collection_with_another_distance_is_refused(
    qdrant: AsyncQdrantClient,
):
    await qdrant.create_collection(
        "course_material",
        vectors_config=models.VectorParams(size=SIZE, distance=models.Distance.DOT),
    )
    with pytest.raises(ValueError, match=r"size 4 \(Dot\).*size 4 \(Cosine\)"):
        await CourseIndex(qdrant, LAYOUT, on_server=False).ensure_collection()


def test_a_layout_partitioned_on_another_field_is_refused():
    layout: CollectionLayout = {**LAYOUT, "partition_key": "tenant"}
    with pytest.raises(ValueError, match="partitions on 'course_id'"):
        CourseIndex(cast("AsyncQdrantClient", object()), layout, on_server=False)


# --- writing --------------------------------------------------------------------------


async def test_upserting_the_same_chunks_twice_keeps_the_count(index: CourseIndex):
    await upload(index, "course-1", "doc-1", 7)
    await upload(index, "course-1", "doc-1", 7)
    assert await index.count_document("doc-1") == 7


async def test_a_long_document_is_stored_whole_across_batches(index: CourseIndex):
    await upload(index, "course-1", "doc-1", 600)
    assert await index.count_document("doc-1") == 600


async def test_remove_stale_after_a_shorter_reupload_leaves_only_the_new_chunks(
    index: CourseIndex,
):
    await upload(index, "course-1", "doc-1", 9, prefix="old")
    await upload(index, "course-1", "doc-2", 4)
    await upload(index, "course-1", "doc-1", 5, seed=1, prefix="new")
    await index.remove_stale("doc-1", keep=5)
    assert await index.count_document("doc-1") == 5
    assert await index.count_document("doc-2") == 4
    hits = await index.search(course_id="course-1", vector=[1, 0, 0, 0], limit=MAX_SEARCH_LIMIT)
    assert sorted(h.text for h in hits if h.document_id == "doc-1") == [
        f"new {i}" for i in range(5)
    ]


async def test_remove_stale_with_nothing_stale_removes_nothing(index: CourseIndex):
    await upload(index, "course-1", "doc-1", 3)
    await index.remove_stale("doc-1", keep=3)
    assert await index.count_document("doc-1") == 3
    with pytest.raises(ValueError, match="keep must be 0 or more"):
        await index.remove_stale("doc-1", keep=-1)


async def test_delete_document_removes_only_that_document(index: CourseIndex):
    await upload(index, "course-1", "doc-1", 4)
    await upload(index, "course-1", "doc-2", 3)
    await upload(index, "course-2", "doc-3", 2)
    await index.delete_document("doc-1")
    assert await index.count_document("doc-1") == 0
    assert await index.count_document("doc-2") == 3
    assert await index.count_document("doc-3") == 2
    await index.delete_document("doc-1")  # deleting again is fine (a replayed delete)


async def test_mismatched_counts_and_vector_sizes_are_refused_before_qdrant(index: CourseIndex):
    with pytest.raises(ValueError, match="3 chunks but 2 vectors"):
        await index.upsert_chunks(
            course_id="c", document_id="d", chunks=chunks(3), vectors=vectors(2)
        )
    bad = [*vectors(2), [0.1] * (SIZE + 1)]
    with pytest.raises(ValueError, match=r"a vector of size 5, but the collection holds 4"):
        await index.upsert_chunks(course_id="c", document_id="d", chunks=chunks(3), vectors=bad)
    with pytest.raises(ValueError, match="course_id must not be empty"):
        await index.upsert_chunks(
            course_id="", document_id="d", chunks=chunks(1), vectors=vectors(1)
        )
    assert await index.count_document("d") == 0


# --- searching ------------------------------------------------------------------------


async def test_a_search_never_returns_another_courses_chunks(index: CourseIndex):
    # Every course holds the very same texts and vectors, so only the filter separates them.
    courses = [f"course-{n}" for n in range(5)]
    for course in courses:
        for d in range(2):
            await upload(index, course, f"{course}/doc-{d}", 6, seed=d)
    rng = random.Random(42)  # noqa: S311 - reproducible test data, not secrets
    for _ in range(40):
        course = rng.choice(courses)
        query = [rng.uniform(-1, 1) for _ in range(SIZE)]
        limit = rng.randint(1, MAX_SEARCH_LIMIT)
        hits = await index.search(course_id=course, vector=query, limit=limit)
        assert len(hits) == min(limit, 12)
        assert all(hit.document_id.startswith(f"{course}/") for hit in hits)
    assert await index.search(course_id="course-unknown", vector=[1, 0, 0, 0], limit=5) == []


async def test_hits_are_ranked_by_score_and_carry_the_payload(index: CourseIndex):
    angles = [0.9, 0.1, 0.5, 1.4]  # radians away from the query, chunk by chunk
    await index.upsert_chunks(
        course_id="course-1", document_id="doc-1",
        chunks=chunks(len(angles)), vectors=[[math.cos(a), math.sin(a), 0, 0] for a in angles],
    )  # fmt: skip
    hits = await index.search(course_id="course-1", vector=[1, 0, 0, 0], limit=3)
    assert [h.chunk_index for h in hits] == [1, 2, 0]
    assert [h.score for h in hits] == pytest.approx([math.cos(a) for a in (0.1, 0.5, 0.9)])
    assert hits[0] == SearchHit(
        document_id="doc-1", page=1, chunk_index=1, text="chunk 1", score=hits[0].score
    )


@pytest.mark.parametrize("limit", [0, -1, MAX_SEARCH_LIMIT + 1])
async def test_a_limit_outside_1_to_50_is_refused(index: CourseIndex, limit: int):
    with pytest.raises(ValueError, match="limit must be between 1 and 50"):
        await index.search(course_id="course-1", vector=[1, 0, 0, 0], limit=limit)


async def test_a_query_vector_of_the_wrong_size_is_refused(index: CourseIndex):
    with pytest.raises(ValueError, match="a vector of size 3"):
        await index.search(course_id="course-1", vector=[1, 0, 0], limit=5)


# --- local mode stays silent ------------------------------------------------------------


async def test_local_mode_emits_no_warning(qdrant: AsyncQdrantClient):
    # Recorded rather than raised: ensure_collection catches errors from create_collection.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = CourseIndex(qdrant, LAYOUT, on_server=False)
        await index.ensure_collection()
        await index.ensure_collection()
        await upload(index, "course-1", "doc-1", 5)
        await index.remove_stale("doc-1", keep=2)
        await index.search(course_id="course-1", vector=[1, 0, 0, 0], limit=5)
        await index.count_document("doc-1")
        await index.delete_document("doc-1")
    assert [str(w.message) for w in caught] == []


async def test_local_mode_would_warn_on_payload_indexes_which_is_why_they_are_skipped():
    client = AsyncQdrantClient(location=":memory:")
    await CourseIndex(client, LAYOUT, on_server=False).ensure_collection()
    with pytest.warns(UserWarning, match="Payload indexes have no effect in the local Qdrant"):
        await client.create_payload_index(
            "course_material", "course_id", field_schema=models.PayloadSchemaType.KEYWORD
        )
    await client.close()


# --- what a server is asked for -------------------------------------------------------


class RecordingQdrant:
    """Stands in for a Qdrant server in `ensure_collection`, recording every call.

    `create` decides what `create_collection` does: "ok", "lose_race" (another indexer
    created the collection first) or "fail" (no collection results).
    """

    def __init__(self, existing: models.VectorParams | None = None, *, create: str = "ok") -> None:
        self.existing = existing
        self.create = create
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def collection_exists(self, collection_name: str) -> bool:
        self.calls.append(("collection_exists", collection_name, {}))
        return self.existing is not None

    async def get_collection(self, collection_name: str) -> Any:
        self.calls.append(("get_collection", collection_name, {}))
        return SimpleNamespace(
            config=SimpleNamespace(params=SimpleNamespace(vectors=self.existing))
        )

    async def create_collection(self, collection_name: str, **kwargs: Any) -> bool:
        self.calls.append(("create_collection", collection_name, kwargs))
        if self.create == "fail":
            raise ConnectionError("qdrant is down")
        if self.create == "lose_race":
            self.existing = kwargs["vectors_config"]
            raise RuntimeError("Collection `course_material` already exists!")
        return True

    async def create_payload_index(
        self, collection_name: str, field_name: str, **kwargs: Any
    ) -> None:
        self.calls.append(
            ("create_payload_index", collection_name, {"field_name": field_name, **kwargs})
        )


def on_server(fake: RecordingQdrant) -> CourseIndex:
    return CourseIndex(cast("AsyncQdrantClient", fake), LAYOUT, on_server=True)


NAME = "course_material"
EXPECTED_INDEXES = [
    ("create_payload_index", NAME, {
        "field_name": "course_id", "wait": True,
        "field_schema": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    }),
    ("create_payload_index", NAME, {
        "field_name": "document_id", "wait": True,
        "field_schema": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD),
    }),
]  # fmt: skip
EXPECTED_CREATE = ("create_collection", NAME, {
    "vectors_config": models.VectorParams(size=4, distance=models.Distance.COSINE),
    "shard_number": 6,
    "replication_factor": 2,
    # No global graph, one graph per course (payload_m): every search is per course.
    "hnsw_config": models.HnswConfigDiff(m=0, ef_construct=128, payload_m=24),
})  # fmt: skip


async def test_on_a_server_the_collection_gets_the_layouts_shards_replicas_and_hnsw():
    fake = RecordingQdrant()
    await on_server(fake).ensure_collection()
    assert fake.calls == [("collection_exists", NAME, {}), EXPECTED_CREATE, *EXPECTED_INDEXES]


async def test_on_a_server_an_existing_collection_is_checked_and_still_gets_its_indexes():
    fake = RecordingQdrant(models.VectorParams(size=SIZE, distance=models.Distance.COSINE))
    await on_server(fake).ensure_collection()
    assert fake.calls == [
        ("collection_exists", NAME, {}), ("get_collection", NAME, {}), *EXPECTED_INDEXES,
    ]  # fmt: skip


async def test_on_a_server_a_mismatching_collection_gets_no_indexes():
    fake = RecordingQdrant(models.VectorParams(size=1536, distance=models.Distance.COSINE))
    with pytest.raises(ValueError, match=r"size 1536 \(Cosine\).*size 4 \(Cosine\)"):
        await on_server(fake).ensure_collection()
    assert [call[0] for call in fake.calls] == ["collection_exists", "get_collection"]


async def test_losing_the_creation_race_to_another_indexer_is_fine():
    fake = RecordingQdrant(create="lose_race")
    await on_server(fake).ensure_collection()
    assert fake.calls == [
        ("collection_exists", NAME, {}), EXPECTED_CREATE,
        ("collection_exists", NAME, {}), ("get_collection", NAME, {}), *EXPECTED_INDEXES,
    ]  # fmt: skip


async def test_a_creation_failure_that_left_no_collection_is_raised():
    fake = RecordingQdrant(create="fail")
    with pytest.raises(ConnectionError, match="qdrant is down"):
        await on_server(fake).ensure_collection()
    assert "create_payload_index" not in [call[0] for call in fake.calls]


# --- which runtimes treat Qdrant as a server --------------------------------------------

SERVER = {
    "QDRANT_URL": "https://qdrant.eduscale.internal:6333",
    "QDRANT_API_KEY": "the-key",
    "QDRANT_COLLECTION_LAYOUT": json.dumps(LAYOUT),
}
LOCAL = {"QDRANT_PATH": ":memory:", "QDRANT_COLLECTION_LAYOUT": json.dumps(LAYOUT)}
LOCAL_CREATE = ("create_collection", NAME, {"vectors_config": EXPECTED_CREATE[2]["vectors_config"]})


class ServerClients:
    """Stands in for `AsyncQdrantClient` in `services.ai.qdrant`: records every client made.

    No Qdrant server can run in the tests, so what `open_qdrant` passes to the client's
    constructor is what there is to check.
    """

    def __init__(self) -> None:
        self.made: list[tuple[dict[str, Any], ServerClient]] = []

    def __call__(self, **kwargs: Any) -> ServerClient:
        client = ServerClient()
        self.made.append((kwargs, client))
        return client


class ServerClient(RecordingQdrant):
    closed = False

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def server_clients(monkeypatch: pytest.MonkeyPatch) -> ServerClients:
    clients = ServerClients()
    monkeypatch.setattr(services.ai.qdrant, "AsyncQdrantClient", clients)
    return clients


async def test_a_qdrant_url_and_key_open_a_server_client(server_clients: ServerClients):
    async with open_qdrant(AISettings.from_env(SERVER)) as client:
        ((made, recorded),) = server_clients.made
        assert made == {"url": SERVER["QDRANT_URL"], "api_key": "the-key"}
        assert cast("object", client) is recorded
        assert not recorded.closed
    assert recorded.closed


async def test_server_settings_give_the_server_layout_and_local_ones_the_plain_collection():
    server, local = RecordingQdrant(), RecordingQdrant()
    await course_index(cast("AsyncQdrantClient", server), AISettings.from_env(SERVER)).ensure_collection()  # fmt: skip
    await course_index(cast("AsyncQdrantClient", local), AISettings.from_env(LOCAL)).ensure_collection()  # fmt: skip
    assert server.calls == [("collection_exists", NAME, {}), EXPECTED_CREATE, *EXPECTED_INDEXES]
    assert local.calls == [("collection_exists", NAME, {}), LOCAL_CREATE]


@pytest.mark.parametrize(("environ", "created"), [(SERVER, EXPECTED_CREATE), (LOCAL, LOCAL_CREATE)])
async def test_the_indexer_creates_the_collection_for_the_qdrant_it_is_given(
    environ: dict[str, str], created: tuple[str, str, dict[str, Any]]
):
    qdrant = RecordingQdrant()
    context = WorkerContext(
        ai=AISettings.from_env(environ),
        resources=SimpleNamespace(databases=None),  # type: ignore[arg-type]  # not used to start
        client=None,  # type: ignore[arg-type]
        breakers=SimpleNamespace(embeddings=None),  # type: ignore[arg-type]
        qdrant=cast("AsyncQdrantClient", qdrant),
    )
    async with index_handler(context):
        assert qdrant.calls[1] == created
    assert [c[0] for c in qdrant.calls].count("create_payload_index") == (environ is SERVER) * 2


async def test_the_orchestrator_creates_the_collection_on_the_server_it_is_given(
    core_db: str, kafka_broker: Broker, server_clients: ServerClients
):
    app = create_ai_app(settings_for(core_db), AISettings.from_env(SERVER), kafka_broker.settings())
    async with AsyncTestClient(app):
        ((made, qdrant),) = server_clients.made
        assert made["url"] == SERVER["QDRANT_URL"]
        assert qdrant.calls == [("collection_exists", NAME, {}), EXPECTED_CREATE, *EXPECTED_INDEXES]
