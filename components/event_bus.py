"""MSK (provisioned Kafka): the bus for asynchronous work, with a dead-letter twin per topic.

Every work topic is declared here as a real `aws.msk.Topic`, together with `<topic>.dlq`,
because the cluster refuses to create topics on first use (`auto.create.topics.enable =
false`): a typo in a producer then fails loudly instead of writing into a topic nobody
reads. A dead-letter topic has as many partitions as its work topic (a failed record keeps
its partition on the way back) and a longer retention (time to inspect and replay).

Secure, durable defaults, after terraform-aws-modules/msk-kafka-cluster: TLS only between
clients and brokers and inside the cluster; at-rest encryption with a rotating customer
key; IAM (SASL/IAM) client authentication and no unauthenticated access; no public
access; 9098 reachable only from the given security groups; broker logs to an encrypted
CloudWatch log group; per-topic enhanced monitoring and Prometheus exporters; EBS storage
that grows by itself up to a ceiling; and `min.insync.replicas` below the replication
factor, so one broker can be down without stopping writes.
"""

import json
from collections.abc import Callable
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.log_groups import encrypted_log_group
from components.security import data_store_security_group
from components.type_tokens import EVENT_BUS
from contracts.topics import DLQ_SUFFIX, dlq_name

__all__ = ["EventBus", "EventBusArgs", "TopicArgs"]

PORT = 9098
"""The port of SASL/IAM over TLS."""


class TopicArgs(TypedDict):
    """A work topic; its `<name>.dlq` twin is created with it."""

    name: str
    """Topic name (without `.dlq`)."""
    partitions: int
    """Partitions of the topic and of its dead-letter twin."""
    retention_ms: int
    """How long records are kept."""
    dlq_retention_ms: int
    """How long dead letters are kept (at least `retention_ms`)."""


class EventBusArgs(TypedDict):
    """Inputs of `EventBus`."""

    vpc_id: pulumi.Input[str]
    """The VPC the brokers live in."""
    subnet_ids: pulumi.Input[list[str]]
    """Private subnets, one per AZ; brokers are spread evenly over them."""
    allowed_security_group_ids: pulumi.Input[list[str]]
    """Security groups whose members may connect on 9098; nothing else can."""
    kafka_version: pulumi.Input[str]
    """Kafka version, e.g. `3.9.x`."""
    broker_instance_type: pulumi.Input[str]
    """Broker instance type, e.g. `kafka.m7g.xlarge`."""
    broker_count: int
    """Brokers in all; a multiple of the number of subnets."""
    replication_factor: int
    """Copies of every partition (3 in production)."""
    min_insync_replicas: int
    """Copies that must acknowledge a write; below `replication_factor`."""
    topics: list[TopicArgs]
    """The work topics."""
    volume_size_gb: NotRequired[int]
    """Initial EBS volume per broker (default 1000 GiB)."""
    max_volume_size_gb: NotRequired[int]
    """Storage autoscaling ceiling per broker (default 4000 GiB)."""
    log_retention_days: NotRequired[int]
    """Broker log retention in CloudWatch (default 30 days)."""


class EventBus(pulumi.ComponentResource):
    """An MSK cluster with IAM auth, TLS, and each work topic paired with a `.dlq`."""

    bootstrap_brokers_iam: pulumi.Output[str]
    """Bootstrap servers for SASL/IAM over TLS (port 9098)."""
    cluster_arn: pulumi.Output[str]
    """The cluster's ARN (IAM policies for producers and consumers name it)."""
    topics: pulumi.Output[dict[str, int]]
    """Work topic name -> partitions."""
    dlq_topics: pulumi.Output[list[str]]
    """The dead-letter topics, one per work topic."""
    security_group_id: pulumi.Output[str]
    """The brokers' security group."""

    def __init__(
        self, name: str, args: EventBusArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(EVENT_BUS.token, name, None, EVENT_BUS.options(opts))
        _validate(args)
        child = pulumi.ResourceOptions(parent=self)

        key = customer_managed_key(name, "storage", parent=self, for_log_groups=True)
        security_group = data_store_security_group(
            name,
            vpc_id=args["vpc_id"],
            port=PORT,
            allowed_security_group_ids=args["allowed_security_group_ids"],
            description="Kafka (SASL/IAM over TLS)",
            parent=self,
        )
        broker_logs = encrypted_log_group(
            name,
            "broker-logs",
            retention_days=args.get("log_retention_days", 30),
            key=key,
            parent=self,
        )
        configuration = aws.msk.Configuration(
            f"{name}-configuration",
            name=physical_name(name),
            kafka_versions=[args["kafka_version"]],
            description="Topics only by declaration; durable writes",
            server_properties=_server_properties(args),
            opts=child,
        )
        cluster_name = physical_name(name)
        cluster = aws.msk.Cluster(
            f"{name}-kafka",
            cluster_name=cluster_name,
            kafka_version=args["kafka_version"],
            number_of_broker_nodes=args["broker_count"],
            broker_node_group_info={
                "instance_type": args["broker_instance_type"],
                "client_subnets": pulumi.Output.from_input(args["subnet_ids"]).apply(
                    _brokers_fit(int(args["broker_count"]))
                ),
                "security_groups": [security_group.id],
                "storage_info": {
                    "ebs_storage_info": {"volume_size": args.get("volume_size_gb", 1000)}
                },
                "connectivity_info": {"public_access": {"type": "DISABLED"}},
            },
            encryption_info={
                "encryption_at_rest_kms_key_arn": key.arn,
                "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True},
            },
            client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
            configuration_info={
                "arn": configuration.arn,
                "revision": configuration.latest_revision,
            },
            logging_info={
                "broker_logs": {"cloudwatch_logs": {"enabled": True, "log_group": broker_logs.name}}
            },
            enhanced_monitoring="PER_TOPIC_PER_BROKER",
            open_monitoring={
                "prometheus": {
                    "jmx_exporter": {"enabled_in_broker": True},
                    "node_exporter": {"enabled_in_broker": True},
                }
            },
            tags=standard_tags(name, cluster_name),
            opts=child,
        )
        self._storage_autoscaling(name, cluster, args.get("max_volume_size_gb", 4000))

        for topic in args["topics"]:
            for topic_name, retention_ms in (
                (topic["name"], topic["retention_ms"]),
                (dlq_name(topic["name"]), topic["dlq_retention_ms"]),
            ):
                aws.msk.Topic(
                    f"{name}-{topic_name}",
                    name=topic_name,
                    cluster_arn=cluster.arn,
                    partition_count=topic["partitions"],
                    replication_factor=args["replication_factor"],
                    configs=json.dumps(
                        {
                            "retention.ms": str(retention_ms),
                            "cleanup.policy": "delete",
                            "min.insync.replicas": str(args["min_insync_replicas"]),
                        }
                    ),
                    opts=child,
                )

        self.bootstrap_brokers_iam = cluster.bootstrap_brokers_sasl_iam
        self.cluster_arn = cluster.arn
        self.topics = pulumi.Output.from_input(
            {topic["name"]: topic["partitions"] for topic in args["topics"]}
        )
        self.dlq_topics = pulumi.Output.from_input(
            [dlq_name(topic["name"]) for topic in args["topics"]]
        )
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "bootstrap_brokers_iam": self.bootstrap_brokers_iam,
                "cluster_arn": self.cluster_arn,
                "topics": self.topics,
                "dlq_topics": self.dlq_topics,
                "security_group_id": self.security_group_id,
            }
        )

    def _storage_autoscaling(self, name: str, cluster: aws.msk.Cluster, ceiling: int) -> None:
        target = aws.appautoscaling.Target(
            f"{name}-storage",
            service_namespace="kafka",
            scalable_dimension="kafka:broker-storage:VolumeSize",
            resource_id=cluster.arn,
            min_capacity=1,
            max_capacity=ceiling,
            tags=standard_tags(name, physical_name(name, "storage")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.appautoscaling.Policy(
            f"{name}-storage",
            name=physical_name(name, "storage"),
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration={
                "predefined_metric_specification": {
                    "predefined_metric_type": "KafkaBrokerStorageUtilization"
                },
                "target_value": 70,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )


def _brokers_fit(brokers: int) -> Callable[[list[str]], list[str]]:
    def check(subnet_ids: list[str]) -> list[str]:
        if brokers % len(subnet_ids):
            raise ValueError(
                f"broker_count ({brokers}) must be a multiple of the number of subnets "
                f"({len(subnet_ids)}): MSK spreads brokers evenly over them"
            )
        return subnet_ids

    return check


def _server_properties(args: EventBusArgs) -> str:
    properties = {
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(args["replication_factor"]),
        "min.insync.replicas": str(args["min_insync_replicas"]),
        "unclean.leader.election.enable": "false",
        "num.partitions": "3",
    }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def _validate(args: EventBusArgs) -> None:
    """Reject args MSK or Kafka would reject later, or that would lose data."""
    brokers = int(args["broker_count"])
    factor = int(args["replication_factor"])
    min_isr = int(args["min_insync_replicas"])
    if factor > brokers:
        raise ValueError(f"replication_factor ({factor}) cannot exceed broker_count ({brokers})")
    if factor > 1 and min_isr >= factor:
        raise ValueError(
            f"min_insync_replicas ({min_isr}) must be below replication_factor ({factor})"
        )
    names = [topic["name"] for topic in args["topics"]]
    if len(set(names)) != len(names):
        raise ValueError(f"topic names must be unique, got {names}")
    for topic in args["topics"]:
        if topic["name"].endswith(DLQ_SUFFIX):
            raise ValueError(f"{topic['name']}: dead-letter topics are created automatically")
        if topic["dlq_retention_ms"] < topic["retention_ms"]:
            raise ValueError(f"{topic['name']}: dlq_retention_ms must be at least retention_ms")
        if topic["partitions"] < 1:
            raise ValueError(f"{topic['name']}: partitions must be at least 1")
