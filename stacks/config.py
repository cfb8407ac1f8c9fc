"""The stack's typed configuration: every knob of the topology, validated in one place.

Values come from Pulumi config (`Pulumi.<stack>.yaml`, `pulumi config set`): one
structured key per tier (`eduscale:network`, `eduscale:database`, ...) with camelCase
fields, plus the AWS provider's own `aws:region`. Dev and prod differ only in these
values, never in code.

Validation runs before any resource is declared and reports every bad value at once,
each on its own line naming the key, the value and what is allowed: a deploy that fails
half-way on the third typo of five wastes an engineer's afternoon. pydantic does the
checking (it already collects all errors with their location and input); this module
only words them for a Pulumi user.

Secrets (the OpenAI API key, ...) are never part of the validated model: they are read as
Pulumi secrets (`Output`s marked secret), so their values cannot reach a log, an error or
the preview's JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Self

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.network_layout import MAX_AZ_COUNT, MIN_AZ_COUNT, validate_vpc_cidr

__all__ = [
    "NAMESPACE",
    "SECRET_KEYS",
    "ConfigError",
    "ConfigIssue",
    "NetworkConfig",
    "StackConfig",
    "StackSecrets",
    "load_secrets",
    "load_stack_config",
    "parse_stack_config",
]

NAMESPACE = "eduscale"
"""The Pulumi config namespace of our keys (`eduscale:<key>`)."""

SECRET_KEYS = ("openaiApiKey",)
"""Keys that must be set with `pulumi config set --secret`."""

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
     2922, 3288, 3653}
)  # fmt: skip
"""The retention periods CloudWatch Logs accepts (any other value fails at deploy)."""

PERFORMANCE_INSIGHTS_RETENTION_DAYS = frozenset({7, 731, *range(31, 714, 31)})
"""The Performance Insights retention periods RDS accepts."""

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class ConfigIssue(BaseModel):
    """One invalid value: where it is, what it was, what is allowed."""

    model_config = ConfigDict(frozen=True)

    key: str
    value: str | None
    message: str

    def __str__(self) -> str:
        shown = "(not set)" if self.value is None else self.value
        return f"{self.key} = {shown}: {self.message}"


class ConfigError(Exception):
    """The stack's configuration is invalid; `issues` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"invalid stack configuration ({len(issues)} problem(s)):\n{lines}")


def _log_retention(days: int) -> int:
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


def _region(region: str) -> str:
    if not _REGION.match(region):
        raise ValueError("must be an AWS region code such as eu-west-1 or us-east-2")
    return region


def _hostname(name: str) -> str:
    if not _HOSTNAME.match(name):
        raise ValueError("must be a lower-case DNS name such as learn.example.com")
    return name


class _Section(BaseModel):
    """A tier's settings: camelCase keys in YAML, unknown keys rejected (typos), immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class NetworkConfig(_Section):
    """`eduscale:network`: the VPC."""

    cidr: Annotated[str, AfterValidator(_vpc_cidr)] = "10.0.0.0/16"
    az_count: Annotated[int, Field(ge=MIN_AZ_COUNT, le=MAX_AZ_COUNT)] = 3
    nat_per_az: bool = True
    flow_log_retention_days: Annotated[int, AfterValidator(_log_retention)] = 365


class EdgeConfig(_Section):
    """`eduscale:edge`: the public hostnames (the Cloudflare zone is `domain`)."""

    domain: Annotated[str, AfterValidator(_hostname)]
    api_subdomain: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = "api"


class Scaling(_Section):
    """HPA bounds of one service or worker."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 10
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] = 70

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        return self


class ServicesConfig(_Section):
    """`eduscale:services`: HPA bounds per service and worker."""

    auth: Scaling = Scaling()
    course: Scaling = Scaling()
    ai_orchestrator: Scaling = Scaling()
    generation_worker: Scaling = Scaling()
    indexer_worker: Scaling = Scaling()


class DatabaseConfig(_Section):
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

    @model_validator(mode="after")
    def _storage(self) -> Self:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError(
                f"maxAllocatedStorageGb ({self.max_allocated_storage_gb}) must be at least "
                f"allocatedStorageGb ({self.allocated_storage_gb})"
            )
        return self


class CacheConfig(_Section):
    """`eduscale:cache`: ElastiCache Redis, cluster mode, shards x replicas."""

    engine_version: Annotated[str, Field(pattern=r"^[67]\.\d+$")] = "7.1"
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.r7g.large"
    shards: Annotated[int, Field(ge=1, le=500)] = 1
    replicas_per_shard: Annotated[int, Field(ge=0, le=5)] = 1
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7


class KafkaConfig(_Section):
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


class VectorStoreConfig(_Section):
    """`eduscale:vectorStore`: Qdrant on the cluster."""

    replicas: Annotated[int, Field(ge=1, le=64)] = 3
    shards: Annotated[int, Field(ge=1, le=256)] = 6
    replication_factor: Annotated[int, Field(ge=1, le=8)] = 2

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.replication_factor > self.replicas:
            raise ValueError(
                f"replicationFactor ({self.replication_factor}) cannot exceed the number of "
                f"Qdrant replicas ({self.replicas})"
            )
        return self


class StackConfig(_Section):
    """Everything the topology reads from config, validated."""

    region: Annotated[str, AfterValidator(_region)]
    network: NetworkConfig = NetworkConfig()
    edge: EdgeConfig
    services: ServicesConfig = ServicesConfig()
    database: DatabaseConfig = DatabaseConfig()
    cache: CacheConfig = CacheConfig()
    kafka: KafkaConfig = KafkaConfig()
    vector_store: VectorStoreConfig = VectorStoreConfig()


def _cross_section_issues(config: StackConfig) -> list[ConfigIssue]:
    """Rules that relate two sections; reported on the key a user would change."""
    issues = []
    if config.kafka.brokers % config.network.az_count:
        issues.append(
            ConfigIssue(
                key=f"{NAMESPACE}:kafka.brokers",
                value=str(config.kafka.brokers),
                message=f"must be a multiple of network.azCount ({config.network.az_count}): "
                "MSK spreads brokers evenly across the AZs",
            )
        )
    return issues


_SECTIONS = {field.alias or name for name, field in StackConfig.model_fields.items()} - {"region"}


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values, as Pulumi secret outputs (`None` when not set)."""

    openai_api_key: pulumi.Output[str] | None


def parse_stack_config(values: Mapping[str, Any]) -> StackConfig:
    """Validate raw config `values` (`{"aws:region": ..., "eduscale:<section>": ...}`).

    Structured values may be given as JSON strings, as the Pulumi engine passes them.
    Raises `ConfigError` with one issue per bad value, unknown keys included.
    """
    data: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    for key, raw in values.items():
        namespace, _, name = key.partition(":")
        if key == "aws:region":
            data["region"] = raw
        elif namespace != NAMESPACE or name in SECRET_KEYS:
            continue
        elif name in _SECTIONS:
            try:
                data[name] = json.loads(raw) if isinstance(raw, str) else raw
            except json.JSONDecodeError as exc:
                issues.append(ConfigIssue(key=key, value=raw, message=f"not an object ({exc})"))
        else:
            allowed = ", ".join(f"{NAMESPACE}:{s}" for s in sorted({*_SECTIONS, *SECRET_KEYS}))
            issues.append(
                ConfigIssue(key=key, value=_show(raw), message=f"unknown key; known: {allowed}")
            )
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as exc:
        issues.extend(_issue(error, data) for error in exc.errors())
    else:
        issues.extend(_cross_section_issues(config))
    if issues:
        raise ConfigError(issues)
    return config


def load_stack_config() -> StackConfig:
    """Read and validate this stack's config from the Pulumi runtime."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    region = pulumi.Config("aws").get("region")
    if region is not None:
        values["aws:region"] = region
    return parse_stack_config(values)


def load_secrets() -> StackSecrets:
    """Read the secret keys; a secret stored in plain text is refused, not used."""
    config = pulumi.Config(NAMESPACE)
    issues = [
        ConfigIssue(
            key=f"{NAMESPACE}:{key}",
            value="(hidden)",
            message=f"stored in plain text; set it with `pulumi config set --secret "
            f"{NAMESPACE}:{key}`",
        )
        for key in SECRET_KEYS
        if config.get(key) is not None and not runtime_config.is_config_secret(f"{NAMESPACE}:{key}")
    ]
    if issues:
        raise ConfigError(issues)
    return StackSecrets(openai_api_key=config.get_secret("openaiApiKey"))


def _issue(error: Any, data: Mapping[str, Any]) -> ConfigIssue:
    location = [str(part) for part in error["loc"]]
    key = "aws:region" if location[0] == "region" else f"{NAMESPACE}:" + ".".join(location)
    value: Any = data
    for part in error["loc"]:
        value = value.get(part) if isinstance(value, dict) else None
    if error["type"] == "missing":
        return ConfigIssue(key=key, value=None, message="required; not set")
    if error["type"] == "extra_forbidden":
        known = ", ".join(_known_fields(location[:-1]))
        return ConfigIssue(key=key, value=_show(value), message=f"unknown field; known: {known}")
    message = str(error["msg"]).removeprefix("Value error, ")
    return ConfigIssue(key=key, value=_show(value), message=message)


def _known_fields(location: list[str]) -> list[str]:
    """The camelCase field names of the section at `location`."""
    model: type[BaseModel] = StackConfig
    for part in location:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if (
                part in (name, field.alias)
                and isinstance(annotation, type)
                and issubclass(annotation, BaseModel)
            ):
                model = annotation
    return sorted(field.alias or name for name, field in model.model_fields.items())


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)
