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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from stacks.compute_sections import (
    AnalyticsConfig,
    ClusterConfig,
    GatewayConfig,
    ServicesConfig,
    VectorStoreConfig,
)
from stacks.monitoring_section import MonitoringConfig
from stacks.sections import (
    AiConfig,
    CacheConfig,
    DatabaseConfig,
    DocumentsConfig,
    EdgeConfig,
    KafkaConfig,
    NetworkConfig,
    Section,
    region,
)
from stacks.tracing_section import TracingConfig

__all__ = [
    "NAMESPACE",
    "SECRET_KEYS",
    "ConfigError",
    "ConfigIssue",
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


class StackConfig(Section):
    """Everything the topology reads from config, validated."""

    region: Annotated[str, AfterValidator(region)]
    """The AWS region (`aws:region`, the AWS provider's own key), e.g. `eu-west-1`."""
    network: NetworkConfig = NetworkConfig()
    """The VPC."""
    edge: EdgeConfig
    """Public host names, the Cloudflare zone and the ALB."""
    gateway: GatewayConfig = GatewayConfig()
    """Kong, its scaling and its limits."""
    ai: AiConfig = AiConfig()
    """The LLM provider the AI tier calls."""
    cluster: ClusterConfig = ClusterConfig()
    """The EKS control plane, node groups and add-ons."""
    services: ServicesConfig = ServicesConfig()
    """The services' image, the schema step, and scaling per service and worker."""
    database: DatabaseConfig = DatabaseConfig()
    """RDS PostgreSQL: the writer and its read replicas."""
    cache: CacheConfig = CacheConfig()
    """ElastiCache Redis."""
    kafka: KafkaConfig = KafkaConfig()
    """MSK: brokers, durability and the work topics' partitions."""
    vector_store: VectorStoreConfig = VectorStoreConfig()
    """Qdrant on the cluster, and the collection layout."""
    analytics: AnalyticsConfig = AnalyticsConfig()
    """ClickHouse on the cluster and its Keeper."""
    documents: DocumentsConfig = DocumentsConfig()
    """The S3 bucket of uploaded course PDFs, and the upload limit."""
    monitoring: MonitoringConfig = MonitoringConfig()
    """Prometheus, the metrics adapter, alert rules and Grafana on the cluster."""
    tracing: TracingConfig = TracingConfig()
    """The OpenTelemetry Collector (traces to X-Ray) and the gateway's sampling rate."""


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
    if config.documents.max_upload_mb >= config.gateway.max_body_mb:
        issues.append(
            ConfigIssue(
                key=f"{NAMESPACE}:documents.maxUploadMb",
                value=str(config.documents.max_upload_mb),
                message=f"must be below gateway.maxBodyMb ({config.gateway.max_body_mb}): "
                "Kong refuses larger request bodies, and an upload also carries its "
                "multipart envelope",
            )
        )
    services = config.services
    missing = sorted(
        {group.platform for group in config.cluster.node_groups} - set(services.image_platforms)
    )
    if services.image is None and missing:
        issues.append(
            ConfigIssue(
                key=f"{NAMESPACE}:services.imagePlatforms",
                value=_show(list(services.image_platforms)),
                message=f"must include {', '.join(missing)}: cluster.nodeGroups run nodes of "
                "that architecture, which could not start the services' image",
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
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            value = None
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
            if part not in (name, field.alias):
                continue
            # A section, or a tuple of them (node groups): descend into the model.
            for candidate in (field.annotation, *get_args(field.annotation)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    model = candidate
    return sorted(field.alias or name for name, field in model.model_fields.items())


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)
