"""Settings of the AI side (orchestrator and generation worker), read once from the environment.

They sit beside the shared `ServiceSettings` and `KafkaSettings`.

Without `OPENAI_API_KEY` the platform still starts: generation is reported as degraded
and refused with 503, while reading and quizzes work as ever.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from contracts.vector_layout import CollectionLayout, Distance, layout_from_json
from services.ai.cache_verifier import VERIFIERS
from services.runtime.settings import SettingsError

__all__ = ["PROMPT_VERSION", "AISettings", "local_layout"]

PROMPT_VERSION = "2026-11-28.1"
"""Bump when the prompts change: cached answers of older prompts are never served."""


@dataclass(frozen=True, kw_only=True)
class AISettings:
    """How to reach the LLM provider and how hard to try."""

    openai_api_key: str | None = None
    """OPENAI_API_KEY: unset means generation is degraded."""
    openai_base_url: str | None = None
    """OPENAI_BASE_URL: the API's base URL (an OpenAI-compatible server)."""
    openai_model: str = "gpt-4o-mini"
    """OPENAI_MODEL: the chat model."""
    embedding_model: str = "text-embedding-3-small"
    """OPENAI_EMBEDDING_MODEL: the embeddings model of the semantic cache."""
    embedding_dimensions: int = 256
    """OPENAI_EMBEDDING_DIMENSIONS: vector size asked of the embeddings model."""
    openai_timeout_seconds: float = 20.0
    """OPENAI_TIMEOUT_SECONDS: per call; tight, so the breaker sees a hung provider."""
    openai_max_retries: int = 0
    """OPENAI_MAX_RETRIES: the SDK's own retries; ours sit outside the breaker."""
    breaker_failure_rate: float = 0.5
    """BREAKER_FAILURE_RATE: failure share over the window that opens the breaker."""
    breaker_minimum_calls: int = 5
    """BREAKER_MINIMUM_CALLS: calls in the window before the rate counts."""
    breaker_window_seconds: float = 30.0
    """BREAKER_WINDOW_SECONDS: the rolling window."""
    breaker_open_seconds: float = 30.0
    """BREAKER_OPEN_SECONDS: cool-down before a probe."""
    breaker_half_open_probes: int = 1
    """BREAKER_HALF_OPEN_PROBES: concurrent probes allowed while half-open."""
    max_attempts: int = 5
    """GENERATION_MAX_ATTEMPTS: attempts of a transient failure before the DLQ."""
    retry_base_seconds: float = 0.5
    """GENERATION_RETRY_BASE_SECONDS: first backoff (doubles each attempt, jittered)."""
    worker_concurrency: int = 1
    """WORKER_CONCURRENCY: jobs a generation or indexer worker process keeps in flight.

    Their jobs wait on the provider, so one process can keep many calls going; 1 handles
    one message at a time."""
    cache_threshold: float | None = None
    """SEMANTIC_CACHE_THRESHOLD: cosine similarity for a semantic-cache candidate; unset
    means the embedding model's tuned threshold (`services/ai/cache_tuning.py`)."""
    cache_verifier: str | None = None
    """SEMANTIC_CACHE_VERIFIER: which verifier decides a hit (`rules`, ...); unset means
    the embedding model's tuned one."""
    cache_ttl_seconds: int = 7 * 86400
    """SEMANTIC_CACHE_TTL_SECONDS: how long a cached answer may be served."""
    qdrant_url: str | None = None
    """QDRANT_URL: a Qdrant server; unset means embedded local mode."""
    qdrant_api_key: str | None = None
    """QDRANT_API_KEY: the server's API key."""
    qdrant_path: str = ".eduscale/qdrant"
    """QDRANT_PATH: local mode's data directory (kept across restarts); `:memory:` keeps
    nothing, as tests want."""
    broker_grace_seconds: float = 60.0
    """BROKER_GRACE_SECONDS: how long the outbox absorbs a broker outage before the
    status says degraded."""
    documents_bucket: str | None = None
    """DOCUMENTS_BUCKET: the S3 bucket of uploaded PDFs; unset means DOCUMENTS_DIR."""
    documents_dir: str = ".eduscale/documents"
    """DOCUMENTS_DIR: where uploaded PDFs are kept when there is no bucket."""
    document_max_bytes: int = 20 * 1024 * 1024
    """DOCUMENT_MAX_BYTES: larger uploads get 413."""
    course_layout: CollectionLayout | None = None
    """QDRANT_COLLECTION_LAYOUT: the course-material collection as the VectorStore
    component exports it (JSON); unset means `local_layout(embedding_dimensions)`."""
    chunk_tokens: int = 400
    """CHUNK_TOKENS: the most tokens of a document chunk (one embedding each)."""
    chunk_overlap_tokens: int = 60
    """CHUNK_OVERLAP_TOKENS: tokens repeated between neighbouring chunks."""
    embedding_batch: int = 64
    """EMBEDDING_BATCH: chunks embedded per API call."""
    grounding_chunks: int = 4
    """GROUNDING_CHUNKS: top chunks of the course added to a generation prompt (0: none)."""

    def __post_init__(self) -> None:
        if self.chunk_overlap_tokens * 2 >= self.chunk_tokens:
            raise SettingsError(
                f"CHUNK_OVERLAP_TOKENS={self.chunk_overlap_tokens} is not allowed: use less "
                f"than half of CHUNK_TOKENS ({self.chunk_tokens})"
            )

    @property
    def layout(self) -> CollectionLayout:
        """The course-material collection's layout."""
        return self.course_layout or local_layout(self.embedding_dimensions)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "AISettings":
        """Read the variables; `SettingsError` names a malformed one."""
        read = _Reader(environ)
        return cls(
            openai_api_key=read.text("OPENAI_API_KEY"),
            openai_base_url=read.text("OPENAI_BASE_URL"),
            openai_model=read.text("OPENAI_MODEL") or "gpt-4o-mini",
            embedding_model=read.text("OPENAI_EMBEDDING_MODEL") or "text-embedding-3-small",
            embedding_dimensions=int(read.number("OPENAI_EMBEDDING_DIMENSIONS", 256, 8, 3072)),
            openai_timeout_seconds=read.number("OPENAI_TIMEOUT_SECONDS", 20, 0.1, 300),
            openai_max_retries=int(read.number("OPENAI_MAX_RETRIES", 0, 0, 5)),
            breaker_failure_rate=read.number("BREAKER_FAILURE_RATE", 0.5, 0.01, 1),
            breaker_minimum_calls=int(read.number("BREAKER_MINIMUM_CALLS", 5, 1, 1000)),
            breaker_window_seconds=read.number("BREAKER_WINDOW_SECONDS", 30, 1, 3600),
            breaker_open_seconds=read.number("BREAKER_OPEN_SECONDS", 30, 0.1, 3600),
            breaker_half_open_probes=int(read.number("BREAKER_HALF_OPEN_PROBES", 1, 1, 100)),
            max_attempts=int(read.number("GENERATION_MAX_ATTEMPTS", 5, 1, 50)),
            retry_base_seconds=read.number("GENERATION_RETRY_BASE_SECONDS", 0.5, 0, 60),
            worker_concurrency=int(read.number("WORKER_CONCURRENCY", 1, 1, 1000)),
            cache_threshold=read.optional_number("SEMANTIC_CACHE_THRESHOLD", 0.3, 1),
            cache_verifier=read.choice("SEMANTIC_CACHE_VERIFIER", sorted(VERIFIERS)),
            cache_ttl_seconds=int(read.number("SEMANTIC_CACHE_TTL_SECONDS", 604800, 1, 31536000)),
            qdrant_url=read.text("QDRANT_URL"),
            qdrant_api_key=read.text("QDRANT_API_KEY"),
            qdrant_path=read.text("QDRANT_PATH") or ".eduscale/qdrant",
            broker_grace_seconds=read.number("BROKER_GRACE_SECONDS", 60, 0, 3600),
            documents_bucket=read.text("DOCUMENTS_BUCKET"),
            documents_dir=read.text("DOCUMENTS_DIR") or ".eduscale/documents",
            document_max_bytes=int(
                read.number("DOCUMENT_MAX_BYTES", 20 * 1024 * 1024, 1024, 512 * 1024 * 1024)
            ),
            course_layout=read.layout("QDRANT_COLLECTION_LAYOUT"),
            chunk_tokens=int(read.number("CHUNK_TOKENS", 400, 16, 8000)),
            chunk_overlap_tokens=int(read.number("CHUNK_OVERLAP_TOKENS", 60, 0, 4000)),
            embedding_batch=int(read.number("EMBEDDING_BATCH", 64, 1, 2048)),
            grounding_chunks=int(read.number("GROUNDING_CHUNKS", 4, 0, 20)),
        )


def local_layout(vector_size: int) -> CollectionLayout:
    """The collection for a single-node (or embedded) Qdrant: one shard, one copy."""
    return CollectionLayout(
        name="course_material",
        vector_size=vector_size,
        distance=Distance.COSINE,
        shard_number=1,
        replication_factor=1,
        hnsw_m=16,
        hnsw_ef_construct=100,
        hnsw_payload_m=16,
        partition_key="course_id",
    )


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        return self._environ.get(name, "").strip() or None

    def layout(self, name: str) -> CollectionLayout | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return layout_from_json(raw)
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            raise SettingsError(f"{name} is not a collection layout: {error}") from None

    def optional_number(self, name: str, low: float, high: float) -> float | None:
        return None if self.text(name) is None else self.number(name, low, low, high)

    def choice(self, name: str, allowed: list[str]) -> str | None:
        raw = self.text(name)
        if raw is not None and raw not in allowed:
            raise SettingsError(f"{name}={raw!r} is not allowed: use one of {', '.join(allowed)}")
        return raw

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if raw is None:
            return float(default)
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise SettingsError(f"{name}={raw!r} is not allowed: use a number from {low} to {high}")
        return value
