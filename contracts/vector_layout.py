"""The layout of the Qdrant collection that holds course material, shared by infra and code.

The stack declares Qdrant with this layout and hands it to the indexer as JSON
(`QDRANT_COLLECTION_LAYOUT`); the indexer creates the collection from it, so the shards,
replication and HNSW settings the cluster was sized for are the ones actually used.

Partitioning by course: a tenant payload index on `course_id` (`is_tenant=True`), not
custom shard keys. Courses are many (tens of thousands) and mostly small; a shard key per
course would mean thousands of shards, and shard keys suit a few large tenants. The
tenant index makes Qdrant store each course's points together and build per-course HNSW
links (`payload_m`), so a search filtered to one course, which every search is, stays
fast. Points are spread over `shard_number` shards by id, and each shard is kept on
`replication_factor` nodes. This module imports nothing from Pulumi.
"""

import json
from enum import StrEnum
from typing import TypedDict

__all__ = ["PARTITION_KEY", "CollectionLayout", "Distance", "layout_from_json", "layout_to_json"]

PARTITION_KEY = "course_id"
"""The payload field every point carries and every search filters on."""


class Distance(StrEnum):
    """Similarity measures Qdrant supports."""

    COSINE = "Cosine"
    DOT = "Dot"
    EUCLID = "Euclid"


class CollectionLayout(TypedDict):
    """How the course-material collection is created."""

    name: str
    """Collection name."""
    vector_size: int
    """Embedding dimensions (1536 for text-embedding-3-small)."""
    distance: Distance
    """Similarity measure."""
    shard_number: int
    """Shards the points are spread over."""
    replication_factor: int
    """Copies of each shard (2 or more in production)."""
    hnsw_m: int
    """HNSW edges per node."""
    hnsw_ef_construct: int
    """HNSW build-time candidate list size."""
    hnsw_payload_m: int
    """HNSW edges per node within one tenant (course)."""
    partition_key: str
    """Payload field with the tenant index (`course_id`)."""


def layout_to_json(layout: CollectionLayout) -> str:
    """The layout as the JSON the indexer reads from its environment."""
    return json.dumps(layout, sort_keys=True)


def layout_from_json(text: str) -> CollectionLayout:
    """Read a layout written by `layout_to_json`, rejecting missing or extra fields."""
    data = json.loads(text)
    expected = set(CollectionLayout.__annotations__)
    if not isinstance(data, dict) or set(data) != expected:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"collection layout needs exactly {sorted(expected)}, got {got}")
    layout: CollectionLayout = data  # type: ignore[assignment]  # keys checked just above
    return layout
