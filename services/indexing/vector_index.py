"""The course-material collection in Qdrant: chunks of course documents, searched per course.

One collection holds every course (the layout and why are in `contracts.vector_layout`).
Each point is one chunk of one document, with the payload `course_id`, `document_id`,
`page`, `chunk_index` and `text`. Its id is derived from `(document_id, chunk_index)`
(`point_id`), so indexing a document again, after a crash or a replayed message,
overwrites the same points instead of adding copies. A re-uploaded document that came out
shorter leaves its old tail behind until `remove_stale` deletes it, so the indexer upserts
the new chunks first and then removes the ones past the new count: a search never sees a
half-empty document.

Every search is filtered to one course by a must-condition on the partition key. There is
no method to search across courses, which is what allows the HNSW choice below.

HNSW: `m=0`, `payload_m=layout["hnsw_payload_m"]`. With `m=0` Qdrant builds no graph over
the whole collection, only the per-value graphs of the indexed payload fields, i.e. one
graph per course (Qdrant's "Configure Multitenancy", section "Calibrate performance").
A global graph would serve only unfiltered searches, which this class never makes, and it
costs RAM on every replica and indexing time on every upload. Courses too small for a
graph of their own (below Qdrant's `full_scan_threshold`) are searched exactly, by reading
their points, which the tenant index keeps together on disk. The layout's `hnsw_m` is
therefore not applied to this collection; the stack also makes it the server's default for
other collections. `ef_construct` comes from the layout.

Local mode (`:memory:` or `path=`, for tests and `eduscale dev up`) supports neither
sharding nor HNSW settings nor payload indexes; it swallows the former and warns about
the latter. With `on_server=False` only the vectors are configured, so nothing warns.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from contracts.vector_layout import PARTITION_KEY, CollectionLayout

__all__ = ["MAX_SEARCH_LIMIT", "CourseIndex", "IndexedChunk", "SearchHit", "point_id"]

MAX_SEARCH_LIMIT = 50
"""The most hits one search may ask for."""

_POINT_NAMESPACE = uuid.UUID("5f0c8a53-3b7e-4d52-9a41-8c2e6f1d7b90")
"""The uuid5 namespace of chunk point ids; never change it, or every id changes."""

_UPSERT_BATCH = 256
"""Points per upsert request: a long document must not become one huge request body."""

_GLOBAL_M = 0
"""No collection-wide HNSW graph: every search is filtered to a course (see above)."""

_DOCUMENT_KEY = "document_id"
_CHUNK_KEY = "chunk_index"


@dataclass(frozen=True)
class IndexedChunk:
    """One chunk of a document, as stored with its vector."""

    page: int
    """The page the chunk starts on, 1-based."""
    chunk_index: int
    """The chunk's position within the document, 0-based."""
    text: str
    """The chunk's text, returned with search hits."""


@dataclass(frozen=True)
class SearchHit:
    """A chunk found by a search, most similar first."""

    document_id: str
    page: int
    chunk_index: int
    text: str
    score: float
    """Qdrant's score (cosine similarity for the production layout)."""


def point_id(document_id: str, chunk_index: int) -> str:
    """The point id of a chunk: the same chunk always gets the same id."""
    # chunk_index is an integer, so the last separator splits the key unambiguously.
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{document_id}\x1f{chunk_index}"))


class CourseIndex:
    """The chunks of all course documents in one Qdrant collection, searched per course.

    Call `ensure_collection` once before the other methods (the indexer does at start).
    """

    def __init__(
        self, qdrant: AsyncQdrantClient, layout: CollectionLayout, *, on_server: bool
    ) -> None:
        if layout["partition_key"] != PARTITION_KEY:
            raise ValueError(
                f"the course index partitions on {PARTITION_KEY!r}, not {layout['partition_key']!r}"
            )
        if layout["vector_size"] <= 0:
            raise ValueError(f"vector_size must be positive, not {layout['vector_size']}")
        self._qdrant = qdrant
        self._layout = layout
        self._on_server = on_server
        self._distance = models.Distance(layout["distance"])

    @property
    def collection(self) -> str:
        """The collection's name."""
        return self._layout["name"]

    async def ensure_collection(self) -> None:
        """Create the collection and its indexes unless they exist; safe to race.

        Raises:
            ValueError: the collection exists with another vector size or distance. Its
                vectors are not comparable with ours, and deleting them would fight
                indexers still running the old setting: a new model needs a new name.
        """
        if await self._qdrant.collection_exists(self.collection):
            await self._check_existing()
        else:
            try:
                await self._create()
            except Exception:
                # Another indexer may have created it first; only then is this fine.
                if not await self._qdrant.collection_exists(self.collection):
                    raise
                await self._check_existing()
        if self._on_server:
            # Also on an existing collection: a creator may have died before this step.
            # Creating an index that exists with the same schema is a no-op in Qdrant.
            await self._create_payload_indexes()

    async def upsert_chunks(
        self,
        *,
        course_id: str,
        document_id: str,
        chunks: Sequence[IndexedChunk],
        vectors: Sequence[Sequence[float]],
    ) -> None:
        """Store the chunks of a document with their vectors (one vector per chunk).

        Raises:
            ValueError: the counts differ, a vector has the wrong size, or an id is empty;
                nothing is sent to Qdrant then.
        """
        _require(course_id=course_id, document_id=document_id)
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        points = [
            models.PointStruct(
                id=point_id(document_id, chunk.chunk_index),
                vector=self._checked(vector),
                payload={
                    PARTITION_KEY: course_id,
                    _DOCUMENT_KEY: document_id,
                    "page": chunk.page,
                    _CHUNK_KEY: chunk.chunk_index,
                    "text": chunk.text,
                },
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        for start in range(0, len(points), _UPSERT_BATCH):
            await self._qdrant.upsert(
                self.collection, points=points[start : start + _UPSERT_BATCH], wait=True
            )

    async def remove_stale(self, document_id: str, *, keep: int) -> None:
        """Delete the document's chunks with `chunk_index >= keep`.

        After a re-upload of `keep` chunks, this removes what an older, longer version left.
        """
        _require(document_id=document_id)
        if keep < 0:
            raise ValueError(f"keep must be 0 or more, not {keep}")
        stale = models.Filter(
            must=[
                _document_condition(document_id),
                models.FieldCondition(key=_CHUNK_KEY, range=models.Range(gte=keep)),
            ]
        )
        await self._delete(stale)

    async def delete_document(self, document_id: str) -> None:
        """Delete every chunk of the document."""
        _require(document_id=document_id)
        await self._delete(models.Filter(must=[_document_condition(document_id)]))

    async def count_document(self, document_id: str) -> int:
        """How many chunks of the document are stored (an exact count)."""
        _require(document_id=document_id)
        result = await self._qdrant.count(
            self.collection,
            count_filter=models.Filter(must=[_document_condition(document_id)]),
            exact=True,
        )
        return result.count

    async def search(
        self, *, course_id: str, vector: Sequence[float], limit: int
    ) -> list[SearchHit]:
        """The `limit` chunks of the course most similar to `vector`, best first.

        Only the course's own chunks are ever considered: the course filter is a
        must-condition of the query itself, not a check on the results.

        Raises:
            ValueError: `limit` is outside 1..`MAX_SEARCH_LIMIT`, the vector has the wrong
                size, or `course_id` is empty.
        """
        _require(course_id=course_id)
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_SEARCH_LIMIT}, not {limit}")
        in_course = models.FieldCondition(
            key=self._layout["partition_key"], match=models.MatchValue(value=course_id)
        )
        response = await self._qdrant.query_points(
            self.collection,
            query=self._checked(vector),
            query_filter=models.Filter(must=[in_course]),
            limit=limit,
            with_payload=[_DOCUMENT_KEY, "page", _CHUNK_KEY, "text"],
            with_vectors=False,
        )
        return [_hit(point) for point in response.points]

    # --- helpers ------------------------------------------------------------------------

    async def _create(self) -> None:
        vectors = models.VectorParams(size=self._layout["vector_size"], distance=self._distance)
        if not self._on_server:
            await self._qdrant.create_collection(self.collection, vectors_config=vectors)
            return
        await self._qdrant.create_collection(
            self.collection,
            vectors_config=vectors,
            shard_number=self._layout["shard_number"],
            replication_factor=self._layout["replication_factor"],
            hnsw_config=models.HnswConfigDiff(
                m=_GLOBAL_M,
                ef_construct=self._layout["hnsw_ef_construct"],
                payload_m=self._layout["hnsw_payload_m"],
            ),
        )

    async def _create_payload_indexes(self) -> None:
        # The tenant index: co-locates each course's points and gets a graph per course.
        await self._qdrant.create_payload_index(
            self.collection,
            self._layout["partition_key"],
            field_schema=models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=True
            ),
            wait=True,
        )
        # For deleting and counting a document. chunk_index gets no index: it is only
        # filtered together with document_id, which narrows to one document's points
        # first, and an integer index would add range-based HNSW links for nothing.
        await self._qdrant.create_payload_index(
            self.collection,
            _DOCUMENT_KEY,
            field_schema=models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD),
            wait=True,
        )

    async def _check_existing(self) -> None:
        info = await self._qdrant.get_collection(self.collection)
        vectors = info.config.params.vectors
        if not isinstance(vectors, models.VectorParams):
            raise ValueError(  # noqa: TRY004 - a wrong configuration, not a wrong argument type
                f"collection {self.collection!r} has named vectors, not one unnamed vector"
            )
        wanted = (self._layout["vector_size"], self._distance)
        if (vectors.size, vectors.distance) != wanted:
            raise ValueError(
                f"collection {self.collection!r} holds vectors of size {vectors.size}"
                f" ({vectors.distance.value}), but the layout asks for size"
                f" {wanted[0]} ({wanted[1].value}): use a new collection name"
            )

    def _checked(self, vector: Sequence[float]) -> list[float]:
        size = self._layout["vector_size"]
        if len(vector) != size:
            raise ValueError(f"a vector of size {len(vector)}, but the collection holds {size}")
        return [float(value) for value in vector]

    async def _delete(self, points: models.Filter) -> None:
        await self._qdrant.delete(
            self.collection, points_selector=models.FilterSelector(filter=points), wait=True
        )


def _require(**ids: str) -> None:
    for name, value in ids.items():
        if not value:
            raise ValueError(f"{name} must not be empty")


def _document_condition(document_id: str) -> models.FieldCondition:
    return models.FieldCondition(key=_DOCUMENT_KEY, match=models.MatchValue(value=document_id))


def _hit(point: models.ScoredPoint) -> SearchHit:
    payload: dict[str, Any] = point.payload or {}
    return SearchHit(
        document_id=str(payload[_DOCUMENT_KEY]),
        page=int(payload["page"]),
        chunk_index=int(payload[_CHUNK_KEY]),
        text=str(payload["text"]),
        score=point.score,
    )
