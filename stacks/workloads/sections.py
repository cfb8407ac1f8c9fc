"""The stack's values for each settings section the workloads share, written once.

Every function returns a `PodEnvironment` rendered by the section's class from field
values: the infrastructure default of each setting lives here (or in the stack config it
reads), the variable names and formats in the services' settings classes.
"""

from __future__ import annotations

from urllib.parse import quote

import pulumi

from components.analytics import PASSWORD_KEY
from contracts.vector_layout import layout_to_json
from services.ai.settings import AISettings
from services.analytics.settings import AnalyticsSettings
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import DataSettings, LoggingSettings, ServiceSettings
from services.runtime.tracing_settings import TracingSettings
from stacks.service_env import database_url
from stacks.workloads.context import WorkloadContext
from stacks.workloads.pod_env import PodEnvironment, SecretRef, section_env

__all__ = [
    "ai_env",
    "analytics_env",
    "core_env",
    "documents_env",
    "kafka_env",
    "logging_env",
    "tracing_env",
]


def core_env(
    context: WorkloadContext, *, reads_replicas: bool = False, serves_clients: bool = True
) -> PodEnvironment:
    """The data tier, logging and, for a service that serves clients, tokens and CORS.

    No database password exists: the pods log in as the app user with IAM tokens their
    role may sign, over TLS verified against the RDS CA bundle baked into the image.
    `reads_replicas` adds the replicas-only reader endpoint for a workload that serves
    catalogue reads and reports; others never learn the replicas. A worker serves no
    clients, so it is given no token key and no CORS origins.
    """
    config, database, cache = context.config, context.database, context.cache
    redis_url = pulumi.Output.all(cache.auth_token, cache.configuration_endpoint, cache.port).apply(
        lambda parts: f"rediss://:{quote(str(parts[0]), safe='')}@{parts[1]}:{parts[2]}/0"
    )
    replicas = reads_replicas and config.database.replica_count > 0
    data = section_env(
        DataSettings,
        database_url=database_url(database.writer_endpoint, database.port),
        database_replica_urls=(
            database_url(database.reader_endpoint, database.port) if replicas else None
        ),
        database_iam_auth=True,
        aws_region=config.region,
        redis_url=redis_url,
        redis_cluster=True,
        log_level=config.services.log_level,
    )
    if not serves_clients:
        return data
    return data | section_env(
        ServiceSettings,
        jwt_secret=context.token_key,
        jwt_ttl_seconds=config.services.jwt_ttl_seconds,
        cors_origins=(f"https://{config.edge.domain}",),
    )


def logging_env(context: WorkloadContext) -> PodEnvironment:
    """Logging, for a workload without the data tier."""
    return section_env(LoggingSettings, log_level=context.config.services.log_level)


def kafka_env(context: WorkloadContext) -> PodEnvironment:
    """MSK takes IAM identities only: SASL/OAUTHBEARER over TLS, signed per pod role."""
    return section_env(
        KafkaSettings,
        bootstrap_servers=context.event_bus.bootstrap_brokers_iam,
        security_protocol="SASL_SSL",
        aws_region=context.config.region,
    )


def ai_env(context: WorkloadContext) -> PodEnvironment:
    """The provider and Qdrant, for the orchestrator and both AI workers.

    The indexer creates the collection from its layout; the orchestrator (search) and the
    generation worker (grounding) embed queries at its vector size.
    """
    ai, store = context.config.ai, context.vector_store
    return section_env(
        AISettings,
        qdrant_url=store.url,
        qdrant_api_key=store.api_key,
        openai_base_url=ai.openai_base_url,
        openai_model=ai.openai_model,
        openai_api_key=context.secrets.openai_api_key,
        course_layout=store.collection.apply(layout_to_json),
    )


def documents_env(context: WorkloadContext) -> PodEnvironment:
    """The bucket of uploaded PDFs: written by the orchestrator, read by the indexer."""
    return section_env(
        AISettings,
        documents_bucket=context.documents.bucket_name,
        document_max_bytes=context.config.documents.max_upload_bytes,
    )


def analytics_env(context: WorkloadContext) -> PodEnvironment:
    """The ClickHouse cluster, for its clients (the sink and Course's reports).

    The password is read from the analytics component's own Secret, never copied.
    """
    analytics = context.analytics
    return section_env(
        AnalyticsSettings,
        url=analytics.url,
        username=analytics.username,
        cluster=analytics.cluster_name,
        events_ttl_days=context.config.analytics.raw_events_ttl_days,
        password=SecretRef(analytics.credentials_secret_name, PASSWORD_KEY),
    )


def tracing_env(context: WorkloadContext, name: str) -> PodEnvironment:
    """The collector's OTLP/HTTP endpoint and the workload's `service.name` on its spans."""
    return section_env(
        TracingSettings, endpoint=context.trace_collector.otlp_endpoint, service_name=name
    )
