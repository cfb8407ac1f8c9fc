"""The settings of the compute tier: the EKS cluster, the workloads and Qdrant."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from contracts.gateway import DEFAULT_LIMITS
from services.ai.settings import AISettings
from stacks.sections import Section, log_retention

__all__ = [
    "AIWorkerSettings",
    "AddonVersions",
    "AnalyticsConfig",
    "ClusterConfig",
    "GatewayConfig",
    "NodeGroupConfig",
    "Scaling",
    "ServiceSettings",
    "ServicesConfig",
    "VectorStoreConfig",
    "WorkerSettings",
]

Cpu = Annotated[str, Field(pattern=r"^\d+(\.\d+)?m?$")]
"""A Kubernetes CPU quantity: `250m`, `1`, `1.5`."""
Memory = Annotated[str, Field(pattern=r"^\d+(Mi|Gi)$")]
"""A Kubernetes memory quantity in Mi or Gi: `512Mi`, `4Gi`."""
Name = Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]


def _public_cidr(cidr: str) -> str:
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a CIDR block such as 203.0.113.0/24 ({exc})") from None
    if network.prefixlen == 0:
        raise ValueError("must not be the whole internet; name the operators' ranges")
    return cidr


_REPOSITORY = r"[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
"""A registry host (optional) and repository path, as Docker's reference grammar has them."""
_DIGEST_PINNED = rf"{_REPOSITORY}(:[A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})?@sha256:[a-f0-9]{{64}}"


def _digest_pinned(image: str) -> str:
    if re.fullmatch(_DIGEST_PINNED, image) is None:
        raise ValueError(
            "must be pinned by digest, `name[:tag]@sha256:<64 hex>` (e.g. "
            "`kong:3.9.1@sha256:76c1...`): a tag can be moved to other bytes, a digest cannot"
        )
    return image


PinnedImage = Annotated[str, AfterValidator(_digest_pinned)]


def _some(platforms: tuple[str, ...]) -> tuple[str, ...]:
    if not platforms:
        raise ValueError("name at least one platform, e.g. [linux/arm64]")
    return platforms


"""A container image reference pinned by digest (`name[:tag]@sha256:<64 hex>`): the same
bytes on every node and every deploy, whatever happens to the tag later."""

Platform = Literal["linux/arm64", "linux/amd64"]
"""A platform the services' image is built for."""


class Scaling(Section):
    """Autoscaling bounds and pod resources of one service or worker."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    """Fewest pods; at most `maxReplicas`."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 10
    """Most pods the autoscaler may run."""
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] = 70
    """Average CPU utilisation (of the request) the autoscaler aims for."""
    cpu_request: Cpu = "250m"
    """CPU request per pod, a Kubernetes quantity (`250m`, `1`)."""
    cpu_limit: Cpu = "1"
    """CPU limit per pod."""
    memory_request: Memory = "256Mi"
    """Memory request per pod, in Mi or Gi (`256Mi`)."""
    memory_limit: Memory = "512Mi"
    """Memory limit per pod."""

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        return self


class ServiceSettings(Scaling):
    """An HTTP service: scaled by an HPA on CPU and on its request queue depth."""

    active_requests_target: Annotated[int, Field(ge=1, le=10_000)] = 10
    """Requests in progress per pod (`http_server_active_requests`) the HPA aims for."""


class WorkerSettings(Scaling):
    """A Kafka worker: scaled by KEDA on its consumer group's lag."""

    lag_threshold: Annotated[int, Field(ge=1, le=100_000)] = 10
    """Lag per replica KEDA aims for: 10 pending jobs per worker pod."""
    termination_grace_seconds: Annotated[int, Field(ge=30, le=3600)] = 300
    """Time a stopping worker gets to finish and commit its in-flight job."""


class AIWorkerSettings(WorkerSettings):
    """A generation or indexer worker: its jobs wait on the provider, so a pod runs several."""

    worker_concurrency: Annotated[int, Field(ge=1, le=1000)] = AISettings.model_fields[
        "worker_concurrency"
    ].default
    """WORKER_CONCURRENCY: jobs each pod keeps in flight (1: one at a time); by default the
    workers' own (`AISettings`). `eduscale capacity` sizes the pods and the partitions with it."""


class ServicesConfig(Section):
    """`eduscale:services`: the image, the schema step, and scaling per service and worker."""

    image: PinnedImage | None = None
    """A prebuilt image of this repository's Dockerfile, pinned by digest, for teams that
    build in their own CI. Unset (the default): `pulumi up` builds the Dockerfile and
    pushes it to the stack's ECR repository."""
    image_platforms: Annotated[tuple[Platform, ...], AfterValidator(_some)] = ("linux/arm64",)
    """Platforms the image is built for, at least one; every node group's architecture must
    be among them (the default node groups are Graviton)."""
    keep_images: Annotated[int, Field(ge=1, le=1000)] = 20
    """Releases the ECR repository keeps; older ones expire (a rollback reaches this far)."""
    migration_deadline_seconds: Annotated[int, Field(ge=60, le=86400)] = 900
    """How long the schema Job may run before it is failed (and `pulumi up` with it)."""
    migration_ttl_seconds: Annotated[int, Field(ge=0, le=2_592_000)] = 86400
    """How long a finished schema Job (and its pod's logs) stays before the cluster removes
    it."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """LOG_LEVEL of every service and worker."""
    jwt_ttl_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    """Lifetime of the access tokens Auth issues."""
    auth: ServiceSettings = ServiceSettings()
    """The Auth service."""
    course: ServiceSettings = ServiceSettings()
    """The Course service."""
    ai_orchestrator: ServiceSettings = ServiceSettings()
    """The AI orchestrator."""
    generation_worker: AIWorkerSettings = AIWorkerSettings()
    """The generation worker."""
    indexer_worker: AIWorkerSettings = AIWorkerSettings()
    """The indexer worker."""
    analytics_sink: WorkerSettings = WorkerSettings()
    """The worker that writes `analytics.events` into ClickHouse in batches."""


class NodeGroupConfig(Section):
    """One EKS managed node group."""

    name: Name
    """Short name, unique in the cluster."""
    instance_types: Annotated[tuple[str, ...], Field(min_length=1)]
    """EC2 instance types, e.g. `[c7g.xlarge]`."""
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    """On-demand or spot capacity; the add-ons need an on-demand `system` group."""
    ami_type: Literal[
        "AL2023_x86_64_STANDARD",
        "AL2023_ARM_64_STANDARD",
        "BOTTLEROCKET_x86_64",
        "BOTTLEROCKET_ARM_64",
    ] = "AL2023_ARM_64_STANDARD"
    """EKS AMI type; `ARM_64` types are Graviton, and set the image platform the group needs."""
    min_size: Annotated[int, Field(ge=0, le=1000)] = 2
    """Fewest nodes."""
    desired_size: Annotated[int, Field(ge=0, le=1000)] = 2
    """Nodes at creation; afterwards the cluster autoscaler owns this number."""
    max_size: Annotated[int, Field(ge=1, le=1000)] = 6
    """Most nodes the autoscaler may add."""
    disk_size_gb: Annotated[int, Field(ge=20, le=1000)] = 50
    """Root volume size, in GiB."""
    system: bool = False
    """Runs the cluster add-ons (metrics-server, autoscaler, controllers)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra node labels."""

    @property
    def platform(self) -> Platform:
        """The image platform the group's nodes run."""
        return "linux/arm64" if "ARM_64" in self.ami_type else "linux/amd64"

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"sizes must satisfy minSize <= desiredSize <= maxSize, got {self.min_size} / "
                f"{self.desired_size} / {self.max_size}"
            )
        return self


class AddonVersions(Section):
    """Pinned versions of the cluster add-ons (Helm charts, and the EBS CSI EKS add-on)."""

    metrics_server: str = "3.12.2"
    """Chart version of metrics-server."""
    cluster_autoscaler: str = "9.46.6"
    """Chart version of cluster-autoscaler."""
    aws_load_balancer_controller: str = "1.13.3"
    """Chart version of aws-load-balancer-controller."""
    keda: str = "2.17.2"
    """Chart version of KEDA."""
    ebs_csi_driver: str = "v1.44.0-eksbuild.1"
    """EKS add-on version of aws-ebs-csi-driver."""


_DEFAULT_GROUPS = (
    NodeGroupConfig(name="system", instance_types=("m7g.large",), system=True),
    NodeGroupConfig(name="apps", instance_types=("c7g.xlarge",), max_size=20),
)


class ClusterConfig(Section):
    """`eduscale:cluster`: the EKS control plane, node groups and add-ons."""

    kubernetes_version: Annotated[str, Field(pattern=r"^1\.(2[89]|3\d)$")] = "1.33"
    """Kubernetes minor version of the control plane, e.g. `1.33`."""
    endpoint_public_access: bool = False
    """Expose the API endpoint publicly (off: reachable only from the VPC)."""
    public_access_cidrs: tuple[Annotated[str, AfterValidator(_public_cidr)], ...] = ()
    """The only ranges the public endpoint answers; required when it is on, never the whole
    internet."""
    admin_principal_arns: tuple[
        Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")],
        ...,
    ] = ()
    """IAM roles or users granted cluster admin, besides the deploying identity."""
    log_retention_days: Annotated[int, AfterValidator(log_retention)] = 90
    """Control-plane log retention in CloudWatch; one of CloudWatch's retention periods."""
    node_groups: tuple[NodeGroupConfig, ...] = _DEFAULT_GROUPS
    """Managed node groups; names unique, one an on-demand `system` group. Default: `system`
    (m7g.large) and `apps` (c7g.xlarge, up to 20)."""
    addons: AddonVersions = AddonVersions()
    """Pinned versions of the cluster add-ons."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [group.name for group in self.node_groups]
        if len(set(names)) != len(names):
            raise ValueError(f"nodeGroups names must be unique, got {names}")
        if not any(g.system and g.capacity_type == "ON_DEMAND" for g in self.node_groups):
            raise ValueError(
                "nodeGroups needs one group with system: true and capacityType ON_DEMAND, "
                "for the add-ons that must not be evicted with spot capacity"
            )
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError(
                "endpointPublicAccess needs publicAccessCidrs: the operators' address ranges"
            )
        return self


class GatewayConfig(Scaling):
    """`eduscale:gateway`: Kong, its scaling and the limits it enforces."""

    image: PinnedImage = (
        "kong:3.9.1@sha256:76c14b93e989f7f4418039f7f9789ca32564016211c86ac1a18022f4788e7b9c"
    )
    """Kong's official image (multi-arch), pinned by digest (`name[:tag]@sha256:<64 hex>`)."""
    requests_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] = (
        DEFAULT_LIMITS.requests_per_minute
    )
    """Per client IP, on standard routes."""
    strict_requests_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] = (
        DEFAULT_LIMITS.strict_requests_per_minute
    )
    """Per client IP, on `/auth`."""
    max_body_mb: Annotated[int, Field(ge=1, le=1024)] = DEFAULT_LIMITS.max_body_mb
    """Largest request body Kong accepts, in MiB (PDF uploads included)."""
    cors_origins: tuple[Annotated[str, Field(pattern=r"^https://[a-z0-9.-]+(:\d+)?$")], ...] = ()
    """Browser origins allowed to call the API (default: `https://<domain>`)."""


class VectorStoreConfig(Section):
    """`eduscale:vectorStore`: Qdrant on the cluster, and the collection layout."""

    image: PinnedImage = (
        "qdrant/qdrant:v1.19.0-unprivileged"
        "@sha256:a0e04fe623cb064502cd869cefc1dc7ce359d8edd481063b5bd351c0a0a2c91e"
    )
    """Qdrant's `-unprivileged` image, pinned by digest: it runs as a non-root user, as the
    restricted Pod Security Standard of the namespace requires."""
    replicas: Annotated[int, Field(ge=1, le=64)] = 3
    """Qdrant nodes (3 or more in production); fixed, never autoscaled."""
    shards: Annotated[int, Field(ge=1, le=256)] = 6
    """Shards of the course-material collection."""
    replication_factor: Annotated[int, Field(ge=1, le=8)] = 2
    """Copies of each shard; at most `replicas`."""
    storage_gb: Annotated[int, Field(ge=1, le=16384)] = 100
    """Volume size per node (encrypted gp3), in GiB."""
    cpu: Cpu = "2"
    """CPU request and limit per node."""
    memory: Memory = "8Gi"
    """Memory request and limit per node."""
    vector_size: Annotated[int, Field(ge=2, le=65536)] = 1536
    """Embedding dimensions (1536 for text-embedding-3-small)."""
    hnsw_m: Annotated[int, Field(ge=4, le=128)] = 16
    """HNSW edges per node (also within one course, the tenant index)."""
    hnsw_ef_construct: Annotated[int, Field(ge=4, le=1024)] = 128
    """HNSW build-time candidate list size."""

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.replication_factor > self.replicas:
            raise ValueError(
                f"replicationFactor ({self.replication_factor}) cannot exceed the number of "
                f"Qdrant replicas ({self.replicas})"
            )
        return self


class AnalyticsConfig(Section):
    """`eduscale:analytics`: ClickHouse on the cluster (shards x replicas) and its Keeper."""

    image: PinnedImage = (
        "clickhouse/clickhouse-server:25.8.33.6"
        "@sha256:0152dd511befe6a2c2ef53e930726179669b08116da78500b37c51c96ff5ee77"
    )
    """The ClickHouse server image, pinned by digest. It carries ClickHouse Keeper too
    (`clickhouse-keeper` is part of the server package), so one pinned release runs both."""
    keeper_image: PinnedImage | None = None
    """A separate image for the Keeper nodes (e.g. `clickhouse/clickhouse-keeper` of the
    same release), pinned by digest; unset, Keeper runs from `image`."""
    shards: Annotated[int, Field(ge=1, le=32)] = 2
    """Horizontal split of the events: each shard holds a share of the rows."""
    replicas_per_shard: Annotated[int, Field(ge=1, le=5)] = 2
    """Copies of each shard (ReplicatedMergeTree through Keeper); 2+ survive a node or AZ."""
    keeper_nodes: Literal[3, 5] = 3
    """Raft members of ClickHouse Keeper: 3 tolerate one loss, 5 tolerate two."""
    storage_gb: Annotated[int, Field(ge=10, le=16384)] = 500
    """Data volume (encrypted gp3) per ClickHouse replica."""
    keeper_storage_gb: Annotated[int, Field(ge=1, le=1024)] = 20
    """Raft log and snapshot volume per Keeper node."""
    cpu: Cpu = "4"
    """CPU request and limit per ClickHouse replica."""
    memory: Memory = "16Gi"
    """Memory request and limit per ClickHouse replica."""
    keeper_cpu: Cpu = "500m"
    """CPU request and limit per Keeper member."""
    keeper_memory: Memory = "1Gi"
    """Memory request and limit per Keeper member."""
    raw_events_ttl_days: Annotated[int, Field(ge=1, le=3650)] = 180
    """How long raw events are kept (the daily aggregates outlive them)."""
    database: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "analytics"
    """The ClickHouse database the sink writes and the reports read."""
