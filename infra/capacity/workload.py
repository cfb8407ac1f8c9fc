"""The workload model: what one active user asks of the platform, and what each tier holds.

The numbers live in `workload.yaml` beside this module, each with the source or the
reasoning behind it, so a reviewer can argue with an assumption rather than with code.
This module only gives them a shape and refuses a model that cannot mean anything (a
hit ratio above 1, an endpoint served by a service that does not exist, a figure that
is cached but names no cached benchmark), naming the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from infra.capacity.errors import load_yaml_input
from infra.capacity.paths import DEFAULT_MODEL

__all__ = [
    "DEFAULT_MODEL",
    "RENAMED_KEYS",
    "SERVICES",
    "Endpoint",
    "WorkloadModel",
    "load_workload_model",
]


Service = Literal["auth", "course", "ai-orchestrator"]
SERVICES: tuple[Service, ...] = ("auth", "course", "ai-orchestrator")
"""The HTTP services behind the gateway, by the name the route table uses."""

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Ratio = Annotated[float, Field(ge=0, le=1)]
Utilisation = Annotated[float, Field(gt=0, le=1)]
FigureKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    """One kind of request, and what a single one costs each tier."""

    service: Service
    per_user_per_minute: NonNegative
    cache_hit_ratio: Ratio = 0.0
    """Share answered from Redis without touching PostgreSQL."""
    cached_figure: FigureKey | None = None
    """Benchmark figure (req/s per core) of a cache hit; required when there are hits."""
    uncached_figure: FigureKey
    """Benchmark figure (req/s per core) of a miss, or of every request if never cached."""
    db_reads_per_miss: NonNegative = 0
    db_transactions_per_request: NonNegative = 0
    """Write transactions the request commits on the primary, each counted once whatever
    rows it writes (a job and its outbox row in one transaction are 1, not 2): the
    primary's rate, `database.writes_per_vcpu`, is in transactions (pgbench tpcb-like)."""
    redis_ops_per_request: NonNegative = 0
    enqueues: Literal["generation", "document"] | None = None
    """The work this request queues for a worker (through the outbox and Kafka)."""
    events_per_request: NonNegative = 0
    """Learning events the request (and the job it queues) writes to ClickHouse."""

    @model_validator(mode="after")
    def _figures(self) -> Self:
        if self.cache_hit_ratio > 0 and self.cached_figure is None:
            raise ValueError(
                f"cache_hit_ratio is {self.cache_hit_ratio} but no cached_figure names the "
                "benchmark of a cache hit; set one, or set cache_hit_ratio to 0"
            )
        return self


class GatewayModel(_Strict):
    """Kong: not benchmarked here, so its rate per core comes from Kong's published tests."""

    requests_per_core: Positive
    redis_ops_per_request: NonNegative


class GenerationModel(_Strict):
    """The generation worker: its pods wait on the LLM, so latency sizes them, not CPU.

    The share of jobs the semantic cache answers is measured (the benchmark figure
    `semantic_cache_chat_calls_avoided`); jobs in flight per pod come from the stack
    (`workerConcurrency`).
    """

    llm_latency_seconds: Positive
    cache_hit_seconds: Positive
    message_kb: Positive


class DocumentModel(_Strict):
    """The indexer worker: extracting, chunking and embedding one uploaded PDF."""

    indexing_seconds: Positive
    chunks_per_document: Positive
    message_kb: Positive


class VectorModel(_Strict):
    """Qdrant: what is stored, how often it is searched, and what one vCPU answers."""

    documents_per_user: NonNegative
    """Indexed PDFs per active user: the corpus grows with the audience."""
    semantic_cache_entries_per_user: NonNegative
    semantic_cache_dimensions: Annotated[int, Field(ge=1)]
    """The cache's embedding size (the course collection's comes from the stack)."""
    index_overhead: Annotated[float, Field(ge=1)]
    """Bytes held per byte of raw vectors (HNSW links, payload, segments being optimised)."""
    searches_per_generation: NonNegative
    searches_per_vcpu: Positive
    cpu_utilisation: Utilisation
    memory_utilisation: Utilisation
    max_shard_gb: Positive


class DatabaseModel(_Strict):
    """PostgreSQL on RDS: what one vCPU of a writer sustains.

    What a replica's vCPU sustains is measured, not modelled: the benchmark figure
    `database_reads` (the services' own read queries per CPU-second of the server).
    """

    writes_per_vcpu: Positive
    """Write transactions per second (pgbench tpcb-like: three UPDATEs, a SELECT and an
    INSERT each), the unit of the endpoints' `db_transactions_per_request`."""
    cpu_utilisation: Utilisation
    spare_replicas: Annotated[int, Field(ge=0)]


class CacheModel(_Strict):
    """Redis on ElastiCache: operations a shard's primary serves per vCPU, and what it stores."""

    ops_per_vcpu: Positive
    """On a node of at least `full_rate_min_vcpus`, where Redis 7.1 reaches its full rate."""
    full_rate_min_vcpus: Annotated[int, Field(ge=1)]
    below_full_rate_factor: Utilisation
    """The share of `ops_per_vcpu` a smaller node's vCPU serves."""
    cpu_utilisation: Utilisation
    usable_memory_fraction: Utilisation
    session_kb_per_user: NonNegative
    hot_courses_per_user: NonNegative
    course_kb: NonNegative


class KafkaModel(_Strict):
    """MSK: the write rate one broker sustains, replication included, and one partition."""

    broker_write_mb_per_second: Positive
    partition_write_mb_per_second: Positive
    """What one partition takes in (its leader's log is written sequentially by one thread)."""
    utilisation: Utilisation


class UsageModel(_Strict):
    """How the busy-hour rates add up over a day and a month (usage-priced items)."""

    busy_hours_per_day: Annotated[float, Field(gt=0, le=24)]
    """Hours a day at the busy-hour average: the day's events and LLM calls."""
    active_days_per_month: Annotated[float, Field(gt=0, le=31)]


class AnalyticsModel(_Strict):
    """ClickHouse: what one learning event takes on disk.

    What it takes on the wire to the brokers is measured, not modelled: the benchmark
    figure `analytics_event_wire_bytes` (batched and compressed as the emitters send it).
    """

    compressed_bytes_per_event: Positive
    disk_utilisation: Utilisation
    """Share of a volume the data may fill: merges need free space beside the parts."""


class GenerationKind(_Strict):
    """One kind of generation job: its share of jobs and the tokens of its chat call."""

    share: Ratio
    chat_input_tokens: NonNegative
    chat_output_tokens: NonNegative


class LlmModel(_Strict):
    """Tokens the AI tier sends to the provider, per kind of work."""

    embedding_model: str
    """The embeddings model (priced from the LLM price table)."""
    generation_kinds: Annotated[dict[str, GenerationKind], Field(min_length=1)]
    lookup_embedding_tokens: NonNegative
    """The semantic-cache lookup: embedded for every job, hit or miss."""
    grounding_embedding_tokens: NonNegative
    """The grounding query: embedded for every job the cache does not answer."""
    document_embedding_tokens: NonNegative
    """Every chunk of one indexed document."""

    @model_validator(mode="after")
    def _shares(self) -> Self:
        total = sum(kind.share for kind in self.generation_kinds.values())
        if abs(total - 1) > 1e-6:  # noqa: PLR2004 - float noise
            raise ValueError(f"generation_kinds: the shares add up to {total:g}, not 1")
        return self


class ClusterModel(_Strict):
    """EKS nodes: what the DaemonSets take from every node, and how well pods pack."""

    daemonset_cpu: NonNegative
    daemonset_memory_mib: NonNegative
    daemonset_pods: Annotated[int, Field(ge=0)]
    packing_efficiency: Utilisation


class WorkloadModel(_Strict):
    """Everything the plan assumes about users and tiers; see workload.yaml for sources."""

    peak_factor: Annotated[float, Field(ge=1)]
    headroom: Annotated[float, Field(ge=1)]
    core_speed: Positive
    """How much faster a production vCPU runs our handlers than a benchmark core."""
    endpoints: Annotated[dict[str, Endpoint], Field(min_length=1)]
    gateway: GatewayModel
    generation: GenerationModel
    documents: DocumentModel
    vectors: VectorModel
    database: DatabaseModel
    cache: CacheModel
    kafka: KafkaModel
    cluster: ClusterModel
    usage: UsageModel
    analytics: AnalyticsModel
    llm: LlmModel

    @model_validator(mode="after")
    def _every_service_and_queue(self) -> Self:
        served = {endpoint.service for endpoint in self.endpoints.values()}
        missing = [service for service in SERVICES if service not in served]
        if missing:
            raise ValueError(
                f"endpoints: no endpoint is served by {', '.join(missing)}; every service "
                f"({', '.join(SERVICES)}) needs at least one, or its pods cannot be sized"
            )
        queued = {endpoint.enqueues for endpoint in self.endpoints.values()}
        for work in ("generation", "document"):
            if work not in queued:
                raise ValueError(
                    f"endpoints: none has `enqueues: {work}`; name the request that queues "
                    f"{work} jobs, or the {work} worker cannot be sized"
                )
        return self

    def figure_keys(self) -> set[str]:
        """The benchmark figures this model reads."""
        keys = {endpoint.uncached_figure for endpoint in self.endpoints.values()}
        keys |= {e.cached_figure for e in self.endpoints.values() if e.cached_figure}
        return keys


RENAMED_KEYS: dict[str, str] = {
    "db_writes_per_request": (
        "db_transactions_per_request (write transactions, each counted once whatever rows "
        "it writes: a row and its outbox row in one transaction are 1, not 2)"
    ),
}
"""Keys of older workload models, and what to write instead (for `--model FILE` users)."""


def load_workload_model(path: Path = DEFAULT_MODEL) -> WorkloadModel:
    """Read and validate a workload model; `CapacityInputError` says what is wrong."""
    return load_yaml_input(path, "workload model", WorkloadModel, RENAMED_KEYS)
