"""The whole platform, composed from the typed stack config.

One function builds every tier and wires the real outputs of one into the next, so the
same topology is deployed by `pulumi up` and recorded by `eduscale preview`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.cache import Cache
from components.conventions import physical_name, standard_tags
from components.database import Database
from components.event_bus import EventBus, TopicArgs
from components.network import Network
from services.topics import WORK_TOPICS
from stacks.config import StackConfig, StackSecrets

__all__ = ["Platform", "build_platform", "export_outputs"]


@dataclass(frozen=True)
class Platform:
    """The components of one deployed platform."""

    network: Network
    data_clients: aws.ec2.SecurityGroup
    database: Database
    cache: Cache
    event_bus: EventBus


def build_platform(config: StackConfig, secrets: StackSecrets) -> Platform:
    """Declare every tier of the platform for `config`."""
    del secrets  # read and validated by the program; the service tiers will consume them
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
            "replica_count": db.replica_count,
            "multi_az": db.multi_az,
            "allocated_storage_gb": db.allocated_storage_gb,
            "max_allocated_storage_gb": db.max_allocated_storage_gb,
            "backup_retention_days": db.backup_retention_days,
            "deletion_protection": db.deletion_protection,
            "performance_insights_retention_days": db.performance_insights_retention_days,
            "slow_statement_ms": db.slow_statement_ms,
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
    return Platform(
        network=network,
        data_clients=data_clients,
        database=database,
        cache=cache,
        event_bus=event_bus,
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
    pulumi.export("cacheEndpoint", platform.cache.configuration_endpoint)
    pulumi.export("cacheAuthToken", platform.cache.auth_token)
    pulumi.export("kafkaBootstrapBrokers", platform.event_bus.bootstrap_brokers_iam)
    pulumi.export("kafkaTopics", platform.event_bus.topics)
    pulumi.export("kafkaDeadLetterTopics", platform.event_bus.dlq_topics)
