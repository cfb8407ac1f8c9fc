"""Settings of the AI side (orchestrator and both AI workers), a section of their workloads.

Without `OPENAI_API_KEY` the platform still starts: generation is reported as degraded
and refused with 503, while reading and quizzes work as ever.

The module imports nothing heavy (the stacks render the AI pods' env from it).
"""

from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BeforeValidator, model_validator
from pydantic_settings import NoDecode

from contracts.vector_layout import CollectionLayout, Distance, layout_from_json
from services.runtime.environment import EnvironmentSettings, setting

__all__ = ["PROMPT_VERSION", "AISettings", "VerifierName", "local_layout"]

PROMPT_VERSION = "2026-11-28.1"
"""Bump when the prompts change: cached answers of older prompts are never served."""

VerifierName = Literal["guard", "rules", "scope", "threshold_only"]
"""The names of `services.ai.cache_verifier.VERIFIERS` (a test keeps them equal)."""


def _layout(value: object) -> object:
    if isinstance(value, str):
        try:
            return layout_from_json(value)
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            message = f"not a collection layout ({error})"
            raise ValueError(message) from None
    return value


if TYPE_CHECKING:
    Layout = CollectionLayout | None
else:  # pydantic cannot build typing.TypedDict on Python 3.11: layout_from_json checks it
    Layout = Annotated[dict[str, Any] | None, NoDecode, BeforeValidator(_layout)]


class AISettings(EnvironmentSettings):
    """How to reach the LLM provider and Qdrant, and how hard to try."""

    openai_api_key: str | None = setting(
        "OPENAI_API_KEY", None, description="Unset means generation is degraded.", secret=True
    )
    openai_base_url: str | None = setting(
        "OPENAI_BASE_URL", None, description="The API's base URL (an OpenAI-compatible server)."
    )
    openai_model: str = setting("OPENAI_MODEL", "gpt-4o-mini", description="The chat model.")
    embedding_model: str = setting(
        "OPENAI_EMBEDDING_MODEL",
        "text-embedding-3-small",
        description="The embeddings model of the semantic cache and the course index.",
    )
    embedding_dimensions: int = setting(
        "OPENAI_EMBEDDING_DIMENSIONS",
        256,
        ge=8,
        le=3072,
        description="Vector size asked of the embeddings model.",
    )
    openai_timeout_seconds: float = setting(
        "OPENAI_TIMEOUT_SECONDS",
        20.0,
        ge=0.1,
        le=300,
        description="Per call; tight, so the breaker sees a hung provider.",
    )
    openai_max_retries: int = setting(
        "OPENAI_MAX_RETRIES",
        0,
        ge=0,
        le=5,
        description="The SDK's own retries; ours sit outside the breaker.",
    )
    breaker_failure_rate: float = setting(
        "BREAKER_FAILURE_RATE",
        0.5,
        ge=0.01,
        le=1,
        description="Failure share over the window that opens the breaker.",
    )
    breaker_minimum_calls: int = setting(
        "BREAKER_MINIMUM_CALLS",
        5,
        ge=1,
        le=1000,
        description="Calls in the window before the rate counts.",
    )
    breaker_window_seconds: float = setting(
        "BREAKER_WINDOW_SECONDS", 30.0, ge=1, le=3600, description="The rolling window."
    )
    breaker_open_seconds: float = setting(
        "BREAKER_OPEN_SECONDS", 30.0, ge=0.1, le=3600, description="Cool-down before a probe."
    )
    breaker_half_open_probes: int = setting(
        "BREAKER_HALF_OPEN_PROBES",
        1,
        ge=1,
        le=100,
        description="Concurrent probes allowed while half-open.",
    )
    max_attempts: int = setting(
        "GENERATION_MAX_ATTEMPTS",
        5,
        ge=1,
        le=50,
        description="Attempts of a transient failure before the DLQ.",
    )
    retry_base_seconds: float = setting(
        "GENERATION_RETRY_BASE_SECONDS",
        0.5,
        ge=0,
        le=60,
        description="First backoff (doubles each attempt, jittered).",
    )
    # 64: a job waits on the provider for almost all of its time and costs the process
    # some 12-13 ms of CPU (measured: the worker's CPU time over jobs finished, 1,000 ms
    # answers), so one core tops out near 75-80 jobs/s. At 1 s answers 64 in flight ask
    # for 64 jobs/s: most of the core, not more, so jobs do not queue for CPU. Slower
    # models leave the core idle at 64: a stack sets more (`workerConcurrency`).
    worker_concurrency: int = setting(
        "WORKER_CONCURRENCY",
        64,
        ge=1,
        le=1000,
        description="Jobs a generation or indexer worker process keeps in flight. Their jobs "
        "wait on the provider, so one process keeps many calls going (64: enough to keep "
        "one core busy with 1 s answers); 1 handles one message at a time.",
    )
    cache_threshold: float | None = setting(
        "SEMANTIC_CACHE_THRESHOLD",
        None,
        ge=0.3,
        le=1,
        description="Cosine similarity for a semantic-cache candidate; unset means the "
        "embedding model's tuned threshold (`services/ai/cache_tuning.py`).",
    )
    cache_verifier: VerifierName | None = setting(
        "SEMANTIC_CACHE_VERIFIER",
        None,
        description="Which verifier decides a hit; unset means the embedding model's tuned one.",
    )
    cache_ttl_seconds: int = setting(
        "SEMANTIC_CACHE_TTL_SECONDS",
        7 * 86400,
        ge=1,
        le=31_536_000,
        description="How long a cached answer may be served.",
    )
    qdrant_url: str | None = setting(
        "QDRANT_URL", None, description="A Qdrant server; unset means embedded local mode."
    )
    qdrant_api_key: str | None = setting(
        "QDRANT_API_KEY", None, description="The Qdrant server's API key.", secret=True
    )
    qdrant_path: str = setting(
        "QDRANT_PATH",
        ".eduscale/qdrant",
        description="Local mode's data directory (kept across restarts); `:memory:` keeps "
        "nothing, as tests want.",
    )
    broker_grace_seconds: float = setting(
        "BROKER_GRACE_SECONDS",
        60.0,
        ge=0,
        le=3600,
        description="How long the outbox absorbs a broker outage before the status says degraded.",
    )
    documents_bucket: str | None = setting(
        "DOCUMENTS_BUCKET",
        None,
        description="The S3 bucket of uploaded PDFs; unset means DOCUMENTS_DIR.",
    )
    documents_dir: str = setting(
        "DOCUMENTS_DIR",
        ".eduscale/documents",
        description="Where uploaded PDFs are kept when there is no bucket.",
    )
    document_max_bytes: int = setting(
        "DOCUMENT_MAX_BYTES",
        20 * 1024 * 1024,
        ge=1024,
        le=512 * 1024 * 1024,
        description="Larger uploads get 413.",
    )
    course_layout: Layout = setting(
        "QDRANT_COLLECTION_LAYOUT",
        None,
        description="The course-material collection as the VectorStore component exports it "
        "(JSON); unset means a single-node layout at OPENAI_EMBEDDING_DIMENSIONS.",
        allowed="the JSON object the VectorStore component exports",
    )
    chunk_tokens: int = setting(
        "CHUNK_TOKENS", 400, ge=16, le=8000, description="The most tokens of a document chunk."
    )
    chunk_overlap_tokens: int = setting(
        "CHUNK_OVERLAP_TOKENS",
        60,
        ge=0,
        le=4000,
        description="Tokens repeated between neighbouring chunks (less than half of CHUNK_TOKENS).",
    )
    embedding_batch: int = setting(
        "EMBEDDING_BATCH", 64, ge=1, le=2048, description="Chunks embedded per API call."
    )
    grounding_chunks: int = setting(
        "GROUNDING_CHUNKS",
        4,
        ge=0,
        le=20,
        description="Top chunks of the course added to a generation prompt (0: none).",
    )

    @model_validator(mode="after")
    def _overlap_below_half(self) -> Self:
        if self.chunk_overlap_tokens * 2 >= self.chunk_tokens:
            message = (
                f"CHUNK_OVERLAP_TOKENS={self.chunk_overlap_tokens} is not allowed: use less "
                f"than half of CHUNK_TOKENS ({self.chunk_tokens})"
            )
            raise ValueError(message)
        return self

    @property
    def layout(self) -> CollectionLayout:
        """The course-material collection's layout."""
        return self.course_layout or local_layout(self.embedding_dimensions)


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
