"""The settings of each tier that the stack config holds (`eduscale:<section>`).

Each section is a pydantic model: camelCase keys in YAML, unknown keys rejected (a typo
must not silently fall back to a default), immutable once read. Limits are those of the
AWS service behind the value, so a bad value fails here rather than half-way through a
deploy. Cross-field rules raise with both fields named.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from components.log_groups import RETENTION_DAYS
from components.network_layout import MAX_AZ_COUNT, MIN_AZ_COUNT, validate_vpc_cidr
from stacks.cloudflare_ranges import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

__all__ = [
    "CLOUDFLARE_IPV4",
    "CLOUDFLARE_IPV6",
    "LOG_RETENTION_DAYS",
    "AiConfig",
    "CacheConfig",
    "DatabaseConfig",
    "DocumentsConfig",
    "EdgeConfig",
    "KafkaConfig",
    "NetworkConfig",
    "Section",
    "log_retention",
    "region",
]

LOG_RETENTION_DAYS = RETENTION_DAYS
"""The retention periods CloudWatch Logs accepts (any other value fails at deploy)."""

PERFORMANCE_INSIGHTS_RETENTION_DAYS = frozenset({7, 731, *range(31, 714, 31)})
"""The Performance Insights retention periods RDS accepts."""

_DB_INSTANCE_CLASS = r"^db\.[a-z0-9]+\.[a-z0-9]+$"
"""An RDS instance class such as `db.r7g.2xlarge`."""
REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def log_retention(days: int) -> int:
    """A CloudWatch Logs retention period, or `ValueError` listing the allowed ones."""
    if days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in sorted(LOG_RETENTION_DAYS))
        raise ValueError(f"CloudWatch accepts only these retention periods (days): {allowed}")
    return days


def _performance_insights_retention(days: int) -> int:
    if days not in PERFORMANCE_INSIGHTS_RETENTION_DAYS:
        raise ValueError("RDS accepts 7, a multiple of 31 up to 713, or 731 days")
    return days


def _vpc_cidr(cidr: str) -> str:
    validate_vpc_cidr(cidr)
    return cidr


def region(region: str) -> str:
    """An AWS region code, or `ValueError` with an example."""
    if not REGION_PATTERN.match(region):
        raise ValueError("must be an AWS region code such as eu-west-1 or us-east-2")
    return region


def _hostname(name: str) -> str:
    if not _HOSTNAME.match(name):
        raise ValueError("must be a lower-case DNS name such as learn.example.com")
    return name


class Section(BaseModel):
    """A tier's settings: camelCase keys in YAML, unknown keys rejected (typos), immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        # Each field's docstring is its description: docs/reference/stack-config.md is
        # generated from them (scripts/docs_reference.py).
        use_attribute_docstrings=True,
    )


class NetworkConfig(Section):
    """`eduscale:network`: the VPC."""

    cidr: Annotated[str, AfterValidator(_vpc_cidr)] = "10.0.0.0/16"
    """The VPC's IPv4 range: a private (RFC 1918) /16 to /20."""
    az_count: Annotated[int, Field(ge=MIN_AZ_COUNT, le=MAX_AZ_COUNT)] = 3
    """How many availability zones to span; the AZs come from the region."""
    nat_per_az: bool = True
    """One NAT gateway per AZ (an AZ outage leaves the others' egress up); off: one shared NAT
    gateway, cheaper, for dev."""
    flow_log_retention_days: Annotated[int, AfterValidator(log_retention)] = 365
    """How long VPC flow logs are kept in CloudWatch; one of CloudWatch's retention periods (1, 3,
    5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, ...)."""


def _cloudflare_range(cidr: str) -> str:
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a CIDR block ({exc})") from None
    if network.prefixlen < 8:  # noqa: PLR2004
        raise ValueError("too wide to be a Cloudflare range; copy them from cloudflare.com/ips")
    return cidr


class EdgeConfig(Section):
    """`eduscale:edge`: public host names, the Cloudflare zone and the ALB."""

    domain: Annotated[str, AfterValidator(_hostname)]
    """The web app's host name; the API is `<apiSubdomain>.<domain>`."""
    api_subdomain: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = "api"
    """The API's label under `domain`: the API answers at `<apiSubdomain>.<domain>`."""
    cloudflare_zone_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    """The zone's id (Cloudflare dashboard, Overview): 32 hex digits."""
    cloudflare_ipv4_ranges: tuple[Annotated[str, AfterValidator(_cloudflare_range)], ...] = (
        CLOUDFLARE_IPV4
    )
    """Cloudflare's published IPv4 ranges (cloudflare.com/ips), the only sources the ALB admits; the
    default is the list of `stacks/cloudflare_ranges.py`."""
    cloudflare_ipv6_ranges: tuple[Annotated[str, AfterValidator(_cloudflare_range)], ...] = (
        CLOUDFLARE_IPV6
    )
    """Cloudflare's published IPv6 ranges, likewise."""
    alb_deletion_protection: bool = True
    """Refuse deletion of the ALB."""
    access_log_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    """Days the ALB's access logs are kept."""
    auth_requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 60
    """Per client IP, at Cloudflare, for `/auth`."""

    @property
    def api_hostname(self) -> str:
        """The API's public host name."""
        return f"{self.api_subdomain}.{self.domain}"


class DatabaseConfig(Section):
    """`eduscale:database`: RDS PostgreSQL, one writer and its read replicas."""

    engine_version: Annotated[str, Field(pattern=r"^1[4-9](\.\d+)?$")] = "17.4"
    """PostgreSQL version (14 to 19); its major version picks the parameter group family."""
    instance_class: Annotated[str, Field(pattern=_DB_INSTANCE_CLASS)] = "db.r7g.large"
    """Instance class of the writer (and of the replicas unless `replicaInstanceClass` is
    set), e.g. `db.r7g.4xlarge`."""
    replica_instance_class: Annotated[str, Field(pattern=_DB_INSTANCE_CLASS)] | None = None
    """Instance class of the read replicas, sized by the read load (the capacity plan says
    how many of it are needed); unset, they share `instanceClass`. Replicas replay the
    writer's WAL in one process, so they need no more vCPUs for it; one that falls behind
    leaves the reader endpoint through its ReplicaLag health check."""
    replica_count: Annotated[int, Field(ge=0, le=15)] = 2
    """Read replicas behind the reader endpoint (0: reads use the writer)."""
    multi_az: bool = True
    """A synchronous standby for the writer in another AZ."""
    allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 100
    """Initial gp3 storage, in GiB."""
    max_allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 1000
    """Storage autoscaling ceiling, in GiB; at least `allocatedStorageGb`."""
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 14
    """Automated backups are kept this many days."""
    deletion_protection: bool = True
    """Refuse deletion, and take a final snapshot if deleted anyway."""
    performance_insights_retention_days: Annotated[
        int, AfterValidator(_performance_insights_retention)
    ] = 7
    """Performance Insights retention, in days: 7 (free), a multiple of 31 up to 713, or 731."""
    slow_statement_ms: Annotated[int, Field(ge=10, le=60_000)] = 500
    """Statements slower than this are logged (`log_min_duration_statement`)."""
    log_retention_days: Annotated[int, AfterValidator(log_retention)] = 365
    """PostgreSQL logs (connections, disconnections: the database's access trail) are kept
    this long in CloudWatch (one of its retention periods); the policy pack's
    rds-log-retention sets the floor."""

    @property
    def replica_class(self) -> str:
        """The replicas' instance class: `replicaInstanceClass`, or the writer's if unset."""
        return self.replica_instance_class or self.instance_class

    @model_validator(mode="after")
    def _storage(self) -> Self:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError(
                f"maxAllocatedStorageGb ({self.max_allocated_storage_gb}) must be at least "
                f"allocatedStorageGb ({self.allocated_storage_gb})"
            )
        return self


class CacheConfig(Section):
    """`eduscale:cache`: ElastiCache Redis, cluster mode, shards x replicas."""

    engine_version: Annotated[str, Field(pattern=r"^[67]\.\d+$")] = "7.1"
    """Redis version; its major version picks the parameter group family."""
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.r7g.large"
    """Node type, e.g. `cache.r7g.xlarge`."""
    shards: Annotated[int, Field(ge=1, le=500)] = 1
    """Shards (node groups) of the cluster-mode replication group."""
    replicas_per_shard: Annotated[int, Field(ge=0, le=5)] = 1
    """Replicas per shard; with at least one, Multi-AZ failover is on."""
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7
    """Daily snapshots kept this many days (0 turns them off)."""


class KafkaConfig(Section):
    """`eduscale:kafka`: MSK brokers, durability settings and the work topics' partitions."""

    kafka_version: Annotated[str, Field(pattern=r"^[34]\.\d+\.(\d+|x)$")] = "3.9.x"
    """Kafka version of the MSK cluster, e.g. `3.9.x`."""
    broker_instance_type: Annotated[str, Field(pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")] = (
        "kafka.m7g.large"
    )
    """Broker instance type, e.g. `kafka.m7g.xlarge`."""
    brokers: Annotated[int, Field(ge=2, le=30)] = 3
    """Brokers in all; a multiple of `network.azCount`."""
    partitions: Annotated[int, Field(ge=1, le=1000)] = 12
    """Partitions of each work topic and of its dead-letter twin: the most consumer pods of one
    group that get work."""
    replication_factor: Annotated[int, Field(ge=1, le=5)] = 3
    """Copies of every partition; at most `brokers`."""
    min_insync_replicas: Annotated[int, Field(ge=1, le=4)] = 2
    """Copies that must acknowledge a write; below `replicationFactor`, so one broker down stops no
    writes."""
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 1000
    """Initial EBS volume per broker, in GiB."""
    max_volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 4000
    """Storage autoscaling ceiling per broker, in GiB; at least `volumeSizeGb`."""

    @model_validator(mode="after")
    def _durability(self) -> Self:
        if self.replication_factor > self.brokers:
            raise ValueError(
                f"replicationFactor ({self.replication_factor}) cannot exceed brokers "
                f"({self.brokers})"
            )
        if self.min_insync_replicas >= self.replication_factor and self.replication_factor > 1:
            raise ValueError(
                f"minInsyncReplicas ({self.min_insync_replicas}) must be below "
                f"replicationFactor ({self.replication_factor}), or one broker down stops "
                "all writes"
            )
        if self.max_volume_size_gb < self.volume_size_gb:
            raise ValueError(
                f"maxVolumeSizeGb ({self.max_volume_size_gb}) must be at least "
                f"volumeSizeGb ({self.volume_size_gb})"
            )
        return self


class DocumentsConfig(Section):
    """`eduscale:documents`: the S3 bucket of uploaded course PDFs, and the upload limit."""

    noncurrent_version_days: Annotated[int, Field(ge=1, le=3650)] = 30
    """How long a replaced or deleted PDF can still be restored."""
    access_log_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    """How long the bucket's server access logs (who read or wrote what) are kept."""
    max_upload_mb: Annotated[int, Field(ge=1, le=512)] = 20
    """Largest PDF the AI orchestrator accepts, in MiB (larger uploads get 413); below
    `gateway.maxBodyMb`, which also has to carry the multipart envelope."""

    @property
    def max_upload_bytes(self) -> int:
        """`max_upload_mb` in bytes: the services' `DOCUMENT_MAX_BYTES`."""
        return self.max_upload_mb * 1024 * 1024


class AiConfig(Section):
    """`eduscale:ai`: the LLM provider the AI tier calls."""

    openai_base_url: Annotated[str, Field(pattern=r"^https://[a-z0-9.-]+(:\d+)?(/[\w./-]*)?$")] = (
        "https://api.openai.com/v1"
    )
    """An OpenAI-compatible API (OpenAI itself, Azure OpenAI, a gateway); HTTPS only."""
    openai_model: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")] = (
        "gpt-4o-mini"
    )
    """The chat model the generation worker asks (the services' `OPENAI_MODEL`). Part of
    the semantic cache's scope: changing it never serves answers of the previous model."""
