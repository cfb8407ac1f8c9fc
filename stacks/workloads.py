"""The platform's services and workers on the cluster, and what each may reach.

Each workload gets exactly the configuration and network access its job needs: the
Course service reads from the replicas (reports never touch the writer), every service
and worker may write learning events to `analytics.events` but only the AI orchestrator
may queue work, only the AI tier reaches the internet (HTTPS to the OpenAI API) and
Qdrant, only the AI orchestrator (which stores uploads) and the indexer worker (which
reads them) reach the documents bucket, and only the analytics sink (which writes events)
and the Course service (which reports on them) reach ClickHouse. Secrets arrive as
Kubernetes Secrets from Pulumi secrets; the ClickHouse password is read from the
analytics component's own Secret, never copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.analytics import PASSWORD_KEY, Analytics, server_labels
from components.cache import Cache
from components.cluster import Cluster
from components.database import Database
from components.document_store import DOCUMENTS_PREFIX, DocumentStore
from components.event_bus import EventBus
from components.irsa import service_account_role
from components.microservice import Microservice
from components.network import Network
from components.vector_store import VectorStore
from components.worker import Worker
from components.workload import EgressRuleArgs, PeerArgs, ResourcesArgs, SecretKeyArgs
from contracts.platform_metrics import HTTP_ACTIVE_REQUESTS  # issue 20: queue-depth HPA
from contracts.topics import ANALYTICS_EVENTS, DOCUMENT_UPLOADED, GENERATION_REQUESTED
from contracts.vector_layout import layout_to_json
from stacks.access import (
    DOCUMENT_READ,
    DOCUMENT_WRITE,
    database_login_policy,
    kafka_client_policy,
    with_database_login,
    with_document_access,
)
from stacks.compute_sections import Scaling, ServiceSettings  # issue 20: ServiceSettings
from stacks.config import StackConfig, StackSecrets
from stacks.service_env import ServiceEnvironment, core_environment, token_key

__all__ = [
    "ANALYTICS_CLIENTS",
    "ANALYTICS_NAME",
    "APP_NAMESPACE",
    "GATEWAY",
    "HTTP_PORT",
    "Workloads",
    "build_workloads",
]

APP_NAMESPACE = "eduscale"
HTTP_PORT = 8000
GATEWAY: PeerArgs = {"namespace": "gateway", "labels": {"app.kubernetes.io/name": "api-gateway"}}
"""The API gateway's pods: the only callers of the HTTP services."""
ANALYTICS_NAME = "clickhouse"
"""Name of the ClickHouse cluster's objects (its client Service is `clickhouse`)."""
ANALYTICS_CLIENTS = ("course", "analytics-sink")
"""The only pods that reach ClickHouse: the sink writes events, Course reports on them."""
_EVENTS_ONLY = (ANALYTICS_EVENTS.name,)
"""What a workload that only emits learning events may write."""
_HTTPS_OUT: EgressRuleArgs = {"cidr": "0.0.0.0/0", "ports": [443]}
"""AWS APIs (STS for IRSA, Secrets Manager) and the OpenAI API, through NAT."""


@dataclass(frozen=True)
class Workloads:
    """The services and workers of one platform."""

    auth: Microservice
    course: Microservice
    ai_orchestrator: Microservice
    generation_worker: Worker
    indexer_worker: Worker
    analytics_sink: Worker


@dataclass(frozen=True)
class _Tiers:
    network: Network
    cluster: Cluster
    database: Database
    cache: Cache
    event_bus: EventBus
    vector_store: VectorStore
    documents: DocumentStore
    region: str


def _resources(scaling: Scaling) -> ResourcesArgs:
    return {
        "cpu_request": scaling.cpu_request,
        "cpu_limit": scaling.cpu_limit,
        "memory_request": scaling.memory_request,
        "memory_limit": scaling.memory_limit,
    }


def build_workloads(
    config: StackConfig,
    secrets: StackSecrets,
    *,
    network: Network,
    cluster: Cluster,
    database: Database,
    cache: Cache,
    event_bus: EventBus,
    vector_store: VectorStore,
    documents: DocumentStore,
    analytics: Analytics,
    image: pulumi.Input[str],
    schema_migration: pulumi.Input[str],
    namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> Workloads:
    """Declare every service and worker, wired to the data tier.

    `image` is the services' image pinned by digest; every workload that uses the
    database waits for `schema_migration` (the schema Job's name) before it rolls out.
    """
    tiers = _Tiers(
        network, cluster, database, cache, event_bus, vector_store, documents, config.region
    )
    services = config.services
    data_stores: EgressRuleArgs = {
        "cidr": config.network.cidr,
        "ports": [5432, 6379],
    }
    kafka: EgressRuleArgs = {"cidr": config.network.cidr, "ports": [9098]}
    qdrant: PeerArgs = {"namespace": APP_NAMESPACE, "labels": {"app.kubernetes.io/name": "qdrant"}}
    clickhouse: PeerArgs = {"namespace": APP_NAMESPACE, "labels": server_labels(ANALYTICS_NAME)}
    # Every emitter of learning events produces to Kafka with its own IAM identity.
    producer_env: dict[str, pulumi.Input[str]] = {
        "KAFKA_BOOTSTRAP_SERVERS": event_bus.bootstrap_brokers_iam,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    }
    # The contract the analytics clients (sink and reports) read.
    analytics_env: dict[str, pulumi.Input[str]] = {
        "ANALYTICS_URL": analytics.url,
        "ANALYTICS_USERNAME": analytics.username,
        "ANALYTICS_CLUSTER": analytics.cluster_name,
        "ANALYTICS_EVENTS_TTL_DAYS": str(config.analytics.raw_events_ttl_days),
    }
    analytics_password: dict[str, SecretKeyArgs] = {
        "ANALYTICS_PASSWORD": {"name": analytics.credentials_secret_name, "key": PASSWORD_KEY}
    }
    token_secret = token_key(opts)

    def core(*, reads_replicas: bool = False) -> ServiceEnvironment:
        return core_environment(
            config,
            database=database,
            cache=cache,
            token_secret=token_secret,
            reads_replicas=reads_replicas,
        )

    ai_env: dict[str, pulumi.Input[str]] = {
        "QDRANT_URL": vector_store.url,
        "OPENAI_BASE_URL": config.ai.openai_base_url,
        "OPENAI_MODEL": config.ai.openai_model,
        # MSK takes IAM identities only: SASL/OAUTHBEARER over TLS, signed per pod role.
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        # The indexer creates the collection from it; the orchestrator (search) and the
        # generation worker (grounding) embed queries at its vector size.
        "QDRANT_COLLECTION_LAYOUT": vector_store.collection.apply(layout_to_json),
    }
    # The bucket where uploaded PDFs are kept: written by the orchestrator, read by the
    # indexer; the generation worker never sees a file, so it is not told the bucket.
    documents_env: dict[str, pulumi.Input[str]] = {
        "DOCUMENTS_BUCKET": documents.bucket_name,
        "DOCUMENT_MAX_BYTES": str(config.documents.max_upload_bytes),
    }
    ai_secrets: dict[str, pulumi.Input[str]] = {"QDRANT_API_KEY": vector_store.api_key}
    if secrets.openai_api_key is not None:
        ai_secrets["OPENAI_API_KEY"] = secrets.openai_api_key

    def service(
        name: str,
        scaling: ServiceSettings,  # issue 20: was Scaling; has active_requests_target
        environment: ServiceEnvironment,
        role: aws.iam.Role,
        **extra: object,
    ) -> Microservice:
        return Microservice(
            name,
            {
                "namespace": namespace,
                "image": image,
                "args": ["serve", name],
                "port": HTTP_PORT,
                "min_replicas": scaling.min_replicas,
                "max_replicas": scaling.max_replicas,
                "cpu_target_percent": scaling.cpu_target_percent,
                "resources": _resources(scaling),
                "ingress_from": [GATEWAY],
                "env": environment.plain,
                "secret_env": environment.secret,
                "service_account_role_arn": role.arn,
                "schema_migration": schema_migration,
                # issue 20: scale on the request queue depth per pod beside CPU.
                "queue_depth_metric": HTTP_ACTIVE_REQUESTS.series,
                "queue_depth_target": scaling.active_requests_target,
                **extra,  # type: ignore[typeddict-item]
            },
            opts=opts,
        )

    auth_env = core()
    auth = service(
        "auth",
        services.auth,
        ServiceEnvironment(plain={**auth_env.plain, **producer_env}, secret=auth_env.secret),
        _role(tiers, "auth", kafka=(_EVENTS_ONLY, None)),
        egress_to=[data_stores, kafka, _HTTPS_OUT],
    )
    course_env = core(reads_replicas=True)
    course = service(
        "course",
        services.course,
        ServiceEnvironment(
            plain={**course_env.plain, **producer_env, **analytics_env},
            secret=course_env.secret,
        ),
        _role(tiers, "course", kafka=(_EVENTS_ONLY, None)),
        egress_to=[data_stores, kafka, _HTTPS_OUT],
        egress_peers=[clickhouse],
        secret_refs=analytics_password,
    )
    orchestrator = core()
    ai_orchestrator = service(
        "ai-orchestrator",
        services.ai_orchestrator,
        ServiceEnvironment(
            plain={
                **orchestrator.plain,
                "KAFKA_BOOTSTRAP_SERVERS": event_bus.bootstrap_brokers_iam,
                **ai_env,
                **documents_env,
            },
            secret={**orchestrator.secret, **ai_secrets},
        ),
        _role(
            tiers,
            "ai-orchestrator",
            kafka=((GENERATION_REQUESTED.name, DOCUMENT_UPLOADED.name, *_EVENTS_ONLY), None),
            documents=DOCUMENT_WRITE,
        ),
        egress_to=[data_stores, kafka, _HTTPS_OUT],
        egress_peers=[qdrant],
    )
    worker_env = core(reads_replicas=True)
    worker_plain = {k: v for k, v in worker_env.plain.items() if k != "CORS_ORIGINS"}
    worker_secret = {k: v for k, v in worker_env.secret.items() if k != "JWT_SECRET"}
    workers = {}
    for name, topic, settings, extra_env, files in (
        ("generation-worker", GENERATION_REQUESTED, services.generation_worker, {}, None),
        (
            "indexer-worker",
            DOCUMENT_UPLOADED,
            services.indexer_worker,
            documents_env,
            DOCUMENT_READ,
        ),
    ):
        # Workers emit learning events too (generation finished, document indexed).
        role = _role(tiers, name, kafka=(_EVENTS_ONLY, topic.name), documents=files)
        workers[name] = Worker(
            name,
            {
                "namespace": namespace,
                "image": image,
                "args": ["worker", name.removesuffix("-worker")],
                "topic": topic.name,
                "consumer_group": name,
                "bootstrap_servers": event_bus.bootstrap_brokers_iam,
                "aws_region": config.region,
                "min_replicas": settings.min_replicas,
                "max_replicas": settings.max_replicas,
                "cpu_target_percent": settings.cpu_target_percent,
                "lag_threshold": settings.lag_threshold,
                "termination_grace_seconds": settings.termination_grace_seconds,
                "resources": _resources(settings),
                "env": {
                    **worker_plain,
                    **ai_env,
                    **extra_env,
                    "WORKER_CONCURRENCY": str(settings.worker_concurrency),
                },
                "secret_env": {**worker_secret, **ai_secrets},
                "egress_to": [data_stores, kafka, _HTTPS_OUT],
                "egress_peers": [qdrant],
                "service_account_role_arn": role.arn,
                "schema_migration": schema_migration,
            },
            opts=opts,
        )
    sink_settings = services.analytics_sink
    # The sink touches Kafka and ClickHouse only: no database login, Redis or data-store
    # route, so a compromised sink reaches nothing of the relational data.
    sink_role = _role(tiers, "analytics-sink", kafka=((), ANALYTICS_EVENTS.name), database=False)
    sink_plain = {k: worker_plain[k] for k in ("APP_ENV", "AWS_REGION", "LOG_LEVEL")}
    analytics_sink = Worker(
        "analytics-sink",
        {
            "namespace": namespace,
            "image": image,
            "args": ["worker", "analytics"],
            "topic": ANALYTICS_EVENTS.name,
            "consumer_group": "analytics-sink",
            "bootstrap_servers": event_bus.bootstrap_brokers_iam,
            "aws_region": config.region,
            "min_replicas": sink_settings.min_replicas,
            "max_replicas": sink_settings.max_replicas,
            "cpu_target_percent": sink_settings.cpu_target_percent,
            "lag_threshold": sink_settings.lag_threshold,
            "termination_grace_seconds": sink_settings.termination_grace_seconds,
            "resources": _resources(sink_settings),
            "env": {**sink_plain, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", **analytics_env},
            "secret_env": {},
            "secret_refs": analytics_password,
            "egress_to": [kafka],
            "egress_peers": [clickhouse],
            "service_account_role_arn": sink_role.arn,
        },
        opts=opts,
    )
    return Workloads(
        auth=auth,
        course=course,
        ai_orchestrator=ai_orchestrator,
        generation_worker=workers["generation-worker"],
        indexer_worker=workers["indexer-worker"],
        analytics_sink=analytics_sink,
    )


def _role(
    tiers: _Tiers,
    name: str,
    *,
    kafka: tuple[tuple[str, ...], str | None] | None,
    documents: tuple[str, ...] | None = None,
    database: bool = True,
) -> aws.iam.Role:
    """An IRSA role for `name`: database login, and topics and documents if its job uses them.

    `kafka` is (topics it writes, topic it consumes): exactly the topics its job needs.
    `documents` is the S3 actions it needs on the objects under `documents/`.
    `database` is False for a pod that never connects to PostgreSQL.
    """
    if kafka is None:
        policy = tiers.database.app_user_arns.apply(database_login_policy)
    elif not database:
        produce, consume = kafka
        policy = tiers.event_bus.cluster_arn.apply(
            lambda arn: kafka_client_policy(arn, produce=produce, consume=consume, group=name)
        )
    else:
        produce, consume = kafka
        policy = pulumi.Output.all(tiers.event_bus.cluster_arn, tiers.database.app_user_arns).apply(
            lambda values: with_database_login(
                kafka_client_policy(values[0], produce=produce, consume=consume, group=name),
                values[1],
            )
        )
    if documents is not None:
        actions, store = documents, tiers.documents
        policy = pulumi.Output.all(policy, store.bucket_arn, store.kms_key_arn).apply(
            lambda values: with_document_access(
                values[0],
                bucket_arn=values[1],
                key_arn=values[2],
                prefix=DOCUMENTS_PREFIX,
                actions=actions,
                region=tiers.region,
            )
        )
    return service_account_role(
        name,
        "pods",
        oidc_provider_arn=tiers.cluster.oidc_provider_arn,
        oidc_issuer=tiers.cluster.oidc_issuer,
        namespace=APP_NAMESPACE,
        service_account=name,
        policy=policy,
        parent=None,
    )
