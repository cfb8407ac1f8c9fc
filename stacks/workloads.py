"""The platform's services and workers on the cluster, and what each may reach.

Each workload gets exactly the configuration and network access its job needs: the
Course service reads from the replicas (reports never touch the writer), only the AI
orchestrator and the workers talk to Kafka, only the AI tier reaches the internet (HTTPS
to the OpenAI API) and Qdrant. Secrets arrive as Kubernetes Secrets from Pulumi secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cache import Cache
from components.cluster import Cluster
from components.database import Database
from components.event_bus import EventBus
from components.irsa import service_account_role
from components.microservice import Microservice
from components.network import Network
from components.vector_store import VectorStore
from components.worker import Worker
from components.workload import EgressRuleArgs, PeerArgs, ResourcesArgs
from services.topics import DOCUMENT_UPLOADED, GENERATION_REQUESTED
from services.vector_layout import layout_to_json
from stacks.access import kafka_client_policy
from stacks.compute_sections import Scaling
from stacks.config import StackConfig, StackSecrets

__all__ = ["APP_NAMESPACE", "GATEWAY", "HTTP_PORT", "Workloads", "build_workloads"]

APP_NAMESPACE = "eduscale"
HTTP_PORT = 8000
GATEWAY: PeerArgs = {"namespace": "gateway", "labels": {"app.kubernetes.io/name": "api-gateway"}}
"""The API gateway's pods: the only callers of the HTTP services."""
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


@dataclass(frozen=True)
class _Tiers:
    network: Network
    cluster: Cluster
    database: Database
    cache: Cache
    event_bus: EventBus
    vector_store: VectorStore


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
    namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> Workloads:
    """Declare every service and worker, wired to the data tier."""
    tiers = _Tiers(network, cluster, database, cache, event_bus, vector_store)
    services = config.services
    data_stores: EgressRuleArgs = {
        "cidr": config.network.cidr,
        "ports": [5432, 6379],
    }
    kafka: EgressRuleArgs = {"cidr": config.network.cidr, "ports": [9098]}
    qdrant: PeerArgs = {"namespace": APP_NAMESPACE, "labels": {"app.kubernetes.io/name": "qdrant"}}
    common: dict[str, pulumi.Input[str]] = {
        "APP_ENV": pulumi.get_stack(),
        "DATABASE_HOST": database.writer_endpoint,
        "DATABASE_PORT": database.port.apply(str),
        "DATABASE_NAME": "eduscale",
        "REDIS_HOST": cache.configuration_endpoint,
        "REDIS_PORT": cache.port.apply(str),
        "REDIS_TLS": "true",
    }
    ai_env: dict[str, pulumi.Input[str]] = {
        "QDRANT_URL": vector_store.url,
        "OPENAI_BASE_URL": config.ai.openai_base_url,
    }
    redis_secret: dict[str, pulumi.Input[str]] = {"REDIS_PASSWORD": cache.auth_token}
    ai_secrets = dict(redis_secret)
    ai_secrets["QDRANT_API_KEY"] = vector_store.api_key
    if secrets.openai_api_key is not None:
        ai_secrets["OPENAI_API_KEY"] = secrets.openai_api_key
    image = f"{services.image_registry}/{{}}:{services.image_tag}"

    def service(
        name: str, scaling: Scaling, env: dict[str, pulumi.Input[str]], **extra: object
    ) -> Microservice:
        return Microservice(
            name,
            {
                "namespace": namespace,
                "image": image.format(name),
                "port": HTTP_PORT,
                "min_replicas": scaling.min_replicas,
                "max_replicas": scaling.max_replicas,
                "cpu_target_percent": scaling.cpu_target_percent,
                "resources": _resources(scaling),
                "ingress_from": [GATEWAY],
                "env": {**common, **env},
                **extra,  # type: ignore[typeddict-item]
            },
            opts=opts,
        )

    auth = service(
        "auth",
        services.auth,
        {},
        secret_env=redis_secret,
        egress_to=[data_stores, _HTTPS_OUT],
    )
    course = service(
        "course",
        services.course,
        {"DATABASE_READER_HOST": database.reader_endpoint},
        secret_env=redis_secret,
        egress_to=[data_stores, _HTTPS_OUT],
    )
    orchestrator_role = _kafka_role(tiers, "ai-orchestrator", produce=True, consume=None)
    ai_orchestrator = service(
        "ai-orchestrator",
        services.ai_orchestrator,
        {"KAFKA_BOOTSTRAP_SERVERS": event_bus.bootstrap_brokers_iam, **ai_env},
        secret_env=ai_secrets,
        egress_to=[data_stores, kafka, _HTTPS_OUT],
        egress_peers=[qdrant],
        service_account_role_arn=orchestrator_role.arn,
    )
    workers = {}
    layout: dict[str, pulumi.Input[str]] = {
        "QDRANT_COLLECTION_LAYOUT": vector_store.collection.apply(layout_to_json)
    }
    for name, topic, settings, extra_env in (
        ("generation-worker", GENERATION_REQUESTED, services.generation_worker, {}),
        ("indexer-worker", DOCUMENT_UPLOADED, services.indexer_worker, layout),
    ):
        role = _kafka_role(tiers, name, produce=False, consume=topic.name)
        workers[name] = Worker(
            name,
            {
                "namespace": namespace,
                "image": image.format(name),
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
                "env": {**common, **ai_env, **extra_env},
                "secret_env": ai_secrets,
                "egress_to": [data_stores, kafka, _HTTPS_OUT],
                "egress_peers": [qdrant],
                "service_account_role_arn": role.arn,
            },
            opts=opts,
        )
    return Workloads(
        auth=auth,
        course=course,
        ai_orchestrator=ai_orchestrator,
        generation_worker=workers["generation-worker"],
        indexer_worker=workers["indexer-worker"],
    )


def _kafka_role(tiers: _Tiers, name: str, *, produce: bool, consume: str | None) -> aws.iam.Role:
    """An IRSA role for `name` that may use exactly the topics its job needs."""
    return service_account_role(
        name,
        "pods",
        oidc_provider_arn=tiers.cluster.oidc_provider_arn,
        oidc_issuer=tiers.cluster.oidc_issuer,
        namespace=APP_NAMESPACE,
        service_account=name,
        policy=tiers.event_bus.cluster_arn.apply(
            lambda arn: kafka_client_policy(arn, produce=produce, consume=consume, group=name)
        ),
        parent=None,
    )
