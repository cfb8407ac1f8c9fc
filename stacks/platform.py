"""The whole platform, composed from the typed stack config.

One function builds every tier and wires the real outputs of one into the next, so the
same topology is deployed by `pulumi up` and recorded by `eduscale preview`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.analytics import Analytics
from components.api_gateway import PROXY_PORT, STATUS_PORT, ApiGateway
from components.cache import Cache
from components.cdn import Cdn
from components.cluster import Cluster, NodeGroupArgs
from components.container_image import ContainerImage
from components.conventions import physical_name, standard_tags
from components.database import Database
from components.document_store import DocumentStore
from components.event_bus import EventBus, TopicArgs
from components.load_balancer import LoadBalancer
from components.monitoring import Monitoring
from components.network import Network
from components.origin_authentication import OriginAuthentication
from components.schema_migration import SchemaMigration
from components.trace_collector import OTLP_HTTP_PORT, TraceCollector
from components.vector_store import VectorStore
from contracts.topics import WORK_TOPICS
from contracts.vector_layout import PARTITION_KEY, Distance
from stacks.config import StackConfig, StackSecrets
from stacks.image_source import DOCKERFILE, release_tag
from stacks.monitoring import build_monitoring
from stacks.schema_migration import build_schema_migration
from stacks.tracing import COLLECTOR, build_trace_collector
from stacks.workloads import (
    ANALYTICS_CLIENTS,
    ANALYTICS_NAME,
    APP_NAMESPACE,
    GATEWAY,
    HTTP_PORT,
    Workloads,
    build_workloads,
)

__all__ = ["PROJECT_ROOT", "Platform", "build_platform", "export_outputs"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: the services' image is built from its Dockerfile."""


@dataclass(frozen=True)
class Platform:
    """The components of one deployed platform."""

    network: Network
    data_clients: aws.ec2.SecurityGroup
    database: Database
    cache: Cache
    event_bus: EventBus
    documents: DocumentStore
    cluster: Cluster
    services_image: ContainerImage
    schema_migration: SchemaMigration
    vector_store: VectorStore
    analytics: Analytics
    workloads: Workloads
    gateway: ApiGateway
    origin_authentication: OriginAuthentication
    load_balancer: LoadBalancer
    cdn: Cdn
    monitoring: Monitoring
    trace_collector: TraceCollector


def build_platform(config: StackConfig, secrets: StackSecrets) -> Platform:
    """Declare every tier of the platform for `config`."""
    network = Network(
        "network",
        {
            "cidr_block": config.network.cidr,
            "az_count": config.network.az_count,
            "nat_per_az": config.network.nat_per_az,
            "flow_log_retention_days": config.network.flow_log_retention_days,
        },
    )
    # Membership in this group is what grants a workload access to the data stores; it
    # carries no rules itself. The compute tier attaches it to the nodes that run services.
    clients_name = physical_name("data-clients")
    data_clients = aws.ec2.SecurityGroup(
        "data-clients",
        name=clients_name,
        description="Members may reach PostgreSQL, Redis and Kafka",
        vpc_id=network.vpc_id,
        ingress=[],
        egress=[],
        tags=standard_tags("data-clients", clients_name),
    )
    allowed = pulumi.Output.all(data_clients.id)
    db = config.database
    database = Database(
        "database",
        {
            "vpc_id": network.vpc_id,
            "subnet_ids": network.private_subnet_ids,
            "availability_zones": network.azs,
            "allowed_security_group_ids": allowed,
            "engine_version": db.engine_version,
            "instance_class": db.instance_class,
            "replica_instance_class": db.replica_class,
            "replica_count": db.replica_count,
            "multi_az": db.multi_az,
            "allocated_storage_gb": db.allocated_storage_gb,
            "max_allocated_storage_gb": db.max_allocated_storage_gb,
            "backup_retention_days": db.backup_retention_days,
            "deletion_protection": db.deletion_protection,
            "performance_insights_retention_days": db.performance_insights_retention_days,
            "slow_statement_ms": db.slow_statement_ms,
            "log_retention_days": db.log_retention_days,
        },
    )
    # Generated, never typed by a person; kept in state as a Pulumi secret.
    auth_token = random.RandomPassword("cache-auth-token", length=64, special=False)
    cache = Cache(
        "cache",
        {
            "vpc_id": network.vpc_id,
            "subnet_ids": network.private_subnet_ids,
            "allowed_security_group_ids": allowed,
            "auth_token": auth_token.result,
            "node_type": config.cache.node_type,
            "engine_version": config.cache.engine_version,
            "num_shards": config.cache.shards,
            "replicas_per_shard": config.cache.replicas_per_shard,
            "snapshot_retention_days": config.cache.snapshot_retention_days,
        },
    )
    kafka = config.kafka
    topics: list[TopicArgs] = [
        {
            "name": topic.name,
            "partitions": kafka.partitions,
            "retention_ms": topic.retention_ms,
            "dlq_retention_ms": topic.dlq_retention_ms,
        }
        for topic in WORK_TOPICS
    ]
    event_bus = EventBus(
        "event-bus",
        {
            "vpc_id": network.vpc_id,
            "subnet_ids": network.private_subnet_ids,
            "allowed_security_group_ids": allowed,
            "kafka_version": kafka.kafka_version,
            "broker_instance_type": kafka.broker_instance_type,
            "broker_count": kafka.brokers,
            "replication_factor": kafka.replication_factor,
            "min_insync_replicas": kafka.min_insync_replicas,
            "volume_size_gb": kafka.volume_size_gb,
            "max_volume_size_gb": kafka.max_volume_size_gb,
            "topics": topics,
        },
    )
    documents = DocumentStore(
        "documents",
        {
            "noncurrent_version_days": config.documents.noncurrent_version_days,
            "access_log_retention_days": config.documents.access_log_retention_days,
        },
    )
    cluster = _cluster(config, network, allowed)
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
    namespace = _restricted_namespace("app-namespace", APP_NAMESPACE, cluster)
    services_image = _services_image(config)
    schema_migration = build_schema_migration(
        database=database,
        image=services_image.image_ref,
        namespace=namespace.metadata.name,
        service_account_namespace=APP_NAMESPACE,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        vpc_cidr=config.network.cidr,
        region=config.region,
        deadline_seconds=config.services.migration_deadline_seconds,
        ttl_seconds_after_finished=config.services.migration_ttl_seconds,
        opts=on_cluster,
    )
    vector_store = _vector_store(config, namespace.metadata.name, on_cluster)
    analytics = _analytics(config, namespace.metadata.name, on_cluster)
    trace_collector = build_trace_collector(config, cluster, on_cluster)
    workloads = build_workloads(
        config,
        secrets,
        network=network,
        cluster=cluster,
        database=database,
        cache=cache,
        event_bus=event_bus,
        vector_store=vector_store,
        documents=documents,
        analytics=analytics,
        image=services_image.image_ref,
        schema_migration=schema_migration.job_name,
        namespace=namespace.metadata.name,
        trace_collector=trace_collector,
        opts=on_cluster,
    )
    gateway_namespace = _restricted_namespace("gateway-namespace", GATEWAY["namespace"], cluster)
    gateway = _gateway(
        config,
        workloads,
        cache,
        trace_collector,
        namespace=gateway_namespace.metadata.name,
        opts=on_cluster,
    )
    monitoring = build_monitoring(
        config,
        app_namespace=namespace.metadata.name,
        gateway_namespace=gateway_namespace.metadata.name,
        vector_store_api_key=vector_store.api_key,
        opts=on_cluster,
        depends_on=[cluster],
    )
    origin_authentication = OriginAuthentication(
        "origin-authentication", {"zone_id": config.edge.cloudflare_zone_id}
    )
    load_balancer = LoadBalancer(
        "alb",
        {
            "vpc_id": network.vpc_id,
            "vpc_cidr": network.cidr_block,
            "public_subnet_ids": network.public_subnet_ids,
            "cloudflare_ipv4_ranges": list(config.edge.cloudflare_ipv4_ranges),
            "cloudflare_ipv6_ranges": list(config.edge.cloudflare_ipv6_ranges),
            "hostnames": [config.edge.api_hostname, config.edge.domain],
            "cloudflare_zone_id": config.edge.cloudflare_zone_id,
            "target_namespace": gateway.proxy_service_namespace,
            "target_service": gateway.proxy_service_name,
            "target_port": PROXY_PORT,
            "health_check_port": STATUS_PORT,
            "client_ca_certificate_pem": origin_authentication.ca_certificate_pem,
            "deletion_protection": config.edge.alb_deletion_protection,
            "access_log_retention_days": config.edge.access_log_retention_days,
        },
        opts=on_cluster,
    )
    cdn = Cdn(
        "cdn",
        {
            "zone_id": config.edge.cloudflare_zone_id,
            "api_hostname": config.edge.api_hostname,
            "web_hostname": config.edge.domain,
            "origin": load_balancer.dns_name,
            "auth_requests_per_minute": config.edge.auth_requests_per_minute,
        },
    )
    return Platform(
        network=network,
        data_clients=data_clients,
        database=database,
        cache=cache,
        event_bus=event_bus,
        documents=documents,
        cluster=cluster,
        services_image=services_image,
        schema_migration=schema_migration,
        vector_store=vector_store,
        analytics=analytics,
        workloads=workloads,
        gateway=gateway,
        origin_authentication=origin_authentication,
        load_balancer=load_balancer,
        cdn=cdn,
        monitoring=monitoring,
        trace_collector=trace_collector,
    )


def _services_image(config: StackConfig) -> ContainerImage:
    """The one image every service, worker and the schema Job run, pinned by digest.

    Built from this repository's Dockerfile during `pulumi up`, unless the stack names a
    prebuilt image (`eduscale:services.image`).
    """
    services = config.services
    if services.image is not None:
        return ContainerImage(
            "services-image",
            {"prebuilt_image": services.image, "keep_releases": services.keep_images},
        )
    if not (PROJECT_ROOT / DOCKERFILE).is_file():
        raise FileNotFoundError(
            f"no {DOCKERFILE} in {PROJECT_ROOT} to build the services' image from; set "
            "eduscale:services.image to a prebuilt image pinned by digest"
        )
    # Relative to the program's working directory, so the state does not record this
    # machine's paths (Pulumi runs the program from the project directory).
    context = os.path.relpath(PROJECT_ROOT, Path.cwd())
    return ContainerImage(
        "services-image",
        {
            "build": {
                "context": context,
                "dockerfile": os.path.join(context, DOCKERFILE),  # noqa: PTH118 - a relative str
                "platforms": list(services.image_platforms),
                "tag": release_tag(PROJECT_ROOT),
            },
            "keep_releases": services.keep_images,
        },
    )


def _restricted_namespace(resource: str, name: str, cluster: Cluster) -> k8s.core.v1.Namespace:
    """A namespace where the restricted Pod Security Standard is enforced, not just audited."""
    return k8s.core.v1.Namespace(
        resource,
        metadata={
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
        opts=pulumi.ResourceOptions(provider=cluster.provider),
    )


def _gateway(
    config: StackConfig,
    workloads: Workloads,
    cache: Cache,
    trace_collector: TraceCollector,
    *,
    namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> ApiGateway:
    settings = config.gateway
    services = {
        "auth": workloads.auth,
        "course": workloads.course,
        "ai-orchestrator": workloads.ai_orchestrator,
    }
    return ApiGateway(
        GATEWAY["labels"]["app.kubernetes.io/name"],
        {
            "namespace": namespace,
            "image": settings.image,
            "min_replicas": settings.min_replicas,
            "max_replicas": settings.max_replicas,
            "cpu_target_percent": settings.cpu_target_percent,
            "resources": {
                "cpu_request": settings.cpu_request,
                "cpu_limit": settings.cpu_limit,
                "memory_request": settings.memory_request,
                "memory_limit": settings.memory_limit,
            },
            "upstreams": [
                {
                    "name": name,
                    "host": service.service_name,
                    "port": HTTP_PORT,
                    "peer": {
                        "namespace": APP_NAMESPACE,
                        "labels": {"app.kubernetes.io/name": name},
                    },
                }
                for name, service in services.items()
            ],
            "limits": {
                "requests_per_minute": settings.requests_per_minute,
                "strict_requests_per_minute": settings.strict_requests_per_minute,
                "max_body_mb": settings.max_body_mb,
                "cors_origins": list(settings.cors_origins) or [f"https://{config.edge.domain}"],
            },
            "redis_host": cache.configuration_endpoint,
            "redis_port": cache.port,
            "redis_password": cache.auth_token,
            "trusted_cidr": config.network.cidr,
            "tracing": {
                "traces_endpoint": trace_collector.traces_endpoint,
                "sampling_rate": config.tracing.sampling_rate,
                "collector": COLLECTOR,
                "port": OTLP_HTTP_PORT,
            },
        },
        opts=opts,
    )


def _cluster(
    config: StackConfig, network: Network, data_clients: pulumi.Input[list[str]]
) -> Cluster:
    settings = config.cluster
    groups: list[NodeGroupArgs] = [
        {
            "name": group.name,
            "instance_types": list(group.instance_types),
            "capacity_type": group.capacity_type,
            "ami_type": group.ami_type,
            "min_size": group.min_size,
            "desired_size": group.desired_size,
            "max_size": group.max_size,
            "disk_size_gb": group.disk_size_gb,
            "system": group.system,
            "labels": dict(group.labels),
        }
        for group in settings.node_groups
    ]
    addons = settings.addons
    return Cluster(
        "cluster",
        {
            "vpc_id": network.vpc_id,
            "subnet_ids": network.private_subnet_ids,
            "kubernetes_version": settings.kubernetes_version,
            "node_groups": groups,
            "node_security_group_ids": data_clients,
            "endpoint_public_access": settings.endpoint_public_access,
            "public_access_cidrs": list(settings.public_access_cidrs),
            "admin_principal_arns": list(settings.admin_principal_arns),
            "log_retention_days": settings.log_retention_days,
            "addon_versions": {
                "metrics_server": addons.metrics_server,
                "cluster_autoscaler": addons.cluster_autoscaler,
                "aws_load_balancer_controller": addons.aws_load_balancer_controller,
                "keda": addons.keda,
                "ebs_csi_driver": addons.ebs_csi_driver,
            },
        },
    )


def _vector_store(
    config: StackConfig, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> VectorStore:
    settings = config.vector_store
    api_key = random.RandomPassword("vector-store-api-key", length=48, special=False)
    ai_pods = ("ai-orchestrator", "generation-worker", "indexer-worker")
    return VectorStore(
        "qdrant",
        {
            "namespace": namespace,
            "image": settings.image,
            "replicas": settings.replicas,
            "storage_gb": settings.storage_gb,
            "cpu": settings.cpu,
            "memory": settings.memory,
            "api_key": api_key.result,
            "collection": {
                "name": "course_chunks",
                "vector_size": settings.vector_size,
                "distance": Distance.COSINE,
                "shard_number": settings.shards,
                "replication_factor": settings.replication_factor,
                "hnsw_m": settings.hnsw_m,
                "hnsw_ef_construct": settings.hnsw_ef_construct,
                "hnsw_payload_m": settings.hnsw_m,
                "partition_key": PARTITION_KEY,
            },
            "allowed_clients": [
                {"namespace": APP_NAMESPACE, "labels": {"app.kubernetes.io/name": pod}}
                for pod in ai_pods
            ],
        },
        opts=opts,
    )


def _analytics(
    config: StackConfig, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> Analytics:
    settings = config.analytics
    # Generated, never typed by a person; kept in state as a Pulumi secret.
    password = random.RandomPassword("analytics-password", length=48, special=False)
    return Analytics(
        ANALYTICS_NAME,
        {
            "namespace": namespace,
            "image": settings.image,
            "keeper_image": settings.keeper_image or settings.image,
            "shards": settings.shards,
            "replicas_per_shard": settings.replicas_per_shard,
            "keeper_nodes": settings.keeper_nodes,
            "storage_gb": settings.storage_gb,
            "keeper_storage_gb": settings.keeper_storage_gb,
            "cpu": settings.cpu,
            "memory": settings.memory,
            "keeper_cpu": settings.keeper_cpu,
            "keeper_memory": settings.keeper_memory,
            "database": settings.database,
            "username": "eduscale",
            "password": password.result,
            "allowed_clients": [
                {"namespace": APP_NAMESPACE, "labels": {"app.kubernetes.io/name": pod}}
                for pod in ANALYTICS_CLIENTS
            ],
        },
        opts=opts,
    )


def export_outputs(platform: Platform) -> None:
    """The stack outputs an operator needs to reach and connect to the platform."""
    pulumi.export("vpcId", platform.network.vpc_id)
    pulumi.export("availabilityZones", platform.network.azs)
    pulumi.export("privateSubnetIds", platform.network.private_subnet_ids)
    pulumi.export("publicSubnetIds", platform.network.public_subnet_ids)
    pulumi.export("dataClientsSecurityGroupId", platform.data_clients.id)
    pulumi.export("databaseWriterEndpoint", platform.database.writer_endpoint)
    pulumi.export("databaseReaderEndpoint", platform.database.reader_endpoint)
    pulumi.export("databaseReaderEndpoints", platform.database.reader_endpoints)
    pulumi.export("databaseMasterSecretArn", platform.database.master_secret_arn)
    pulumi.export("servicesImage", platform.services_image.image_ref)
    pulumi.export("imageRepositoryUrl", platform.services_image.repository_url)
    pulumi.export("schemaMigrationJob", platform.schema_migration.job_name)
    pulumi.export("cacheEndpoint", platform.cache.configuration_endpoint)
    pulumi.export("cacheAuthToken", platform.cache.auth_token)
    pulumi.export("kafkaBootstrapBrokers", platform.event_bus.bootstrap_brokers_iam)
    pulumi.export("kafkaTopics", platform.event_bus.topics)
    pulumi.export("kafkaDeadLetterTopics", platform.event_bus.dlq_topics)
    pulumi.export("documentsBucket", platform.documents.bucket_name)
    pulumi.export("clusterName", platform.cluster.name)
    pulumi.export("kubeconfig", platform.cluster.kubeconfig)
    pulumi.export("vectorStoreUrl", platform.vector_store.url)
    pulumi.export("vectorStoreCollection", platform.vector_store.collection)
    pulumi.export("analyticsEndpoint", platform.analytics.endpoint)
    pulumi.export("analyticsCluster", platform.analytics.cluster_name)
    pulumi.export("analyticsCredentialsSecret", platform.analytics.credentials_secret_name)
    pulumi.export("apiUrl", pulumi.Output.concat("https://", platform.cdn.api_hostname))
    pulumi.export("webUrl", pulumi.Output.concat("https://", platform.cdn.web_hostname))
    pulumi.export("loadBalancerDnsName", platform.load_balancer.dns_name)
    pulumi.export("prometheusUrl", platform.monitoring.prometheus_url)
    pulumi.export(
        "originPullCertificateExpiry", platform.origin_authentication.client_certificate_expiry
    )
