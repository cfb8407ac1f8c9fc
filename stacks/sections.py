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
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class NetworkConfig(Section):
    """`eduscale:network`: the VPC."""

    cidr: Annotated[str, AfterValidator(_vpc_cidr)] = "10.0.0.0/16"
    az_count: Annotated[int, Field(ge=MIN_AZ_COUNT, le=MAX_AZ_COUNT)] = 3
    nat_per_az: bool = True
    flow_log_retention_days: Annotated[int, AfterValidator(log_retention)] = 365


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
    cloudflare_zone_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    """The zone's id (Cloudflare dashboard, Overview): 32 hex digits."""
    cloudflare_ipv4_ranges: tuple[Annotated[str, AfterValidator(_cloudflare_range)], ...] = (
        CLOUDFLARE_IPV4
    )
    cloudflare_ipv6_ranges: tuple[Annotated[str, AfterValidator(_cloudflare_range)], ...] = (
        CLOUDFLARE_IPV6
    )
    alb_deletion_protection: bool = True
    access_log_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    auth_requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 60
    """Per client IP, at Cloudflare, for `/auth`."""

    @property
    def api_hostname(self) -> str:
        """The API's public host name."""
        return f"{self.api_subdomain}.{self.domain}"


class DatabaseConfig(Section):
    """`eduscale:database`: RDS PostgreSQL, one writer and its read replicas."""

    engine_version: Annotated[str, Field(pattern=r"^1[4-9](\.\d+)?$")] = "17.4"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.r7g.large"
    replica_count: Annotated[int, Field(ge=0, le=15)] = 2
    multi_az: bool = True
    allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 100
    max_allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 1000
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 14
    deletion_protection: bool = True
    performance_insights_retention_days: Annotated[
        int, AfterValidator(_performance_insights_retention)
    ] = 7
    slow_statement_ms: Annotated[int, Field(ge=10, le=60_000)] = 500
    log_retention_days: Annotated[int, AfterValidator(log_retention)] = 365
    """PostgreSQL logs (connections, disconnections: the database's access trail) are kept
    this long in CloudWatch; the policy pack's rds-log-retention sets the floor."""

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
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.r7g.large"
    shards: Annotated[int, Field(ge=1, le=500)] = 1
    replicas_per_shard: Annotated[int, Field(ge=0, le=5)] = 1
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7


class KafkaConfig(Section):
    """`eduscale:kafka`: MSK brokers, durability settings and the work topics' partitions."""

    kafka_version: Annotated[str, Field(pattern=r"^[34]\.\d+\.(\d+|x)$")] = "3.9.x"
    broker_instance_type: Annotated[str, Field(pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")] = (
        "kafka.m7g.large"
    )
    brokers: Annotated[int, Field(ge=2, le=30)] = 3
    partitions: Annotated[int, Field(ge=1, le=1000)] = 12
    replication_factor: Annotated[int, Field(ge=1, le=5)] = 3
    min_insync_replicas: Annotated[int, Field(ge=1, le=4)] = 2
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 1000
    max_volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 4000

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
