"""ElastiCache Redis in cluster mode: the platform's cache and rate-limit store.

Holds the write-through cache of user profiles, the TTL cache of course content, Kong's
rate-limit counters and the AI circuit breaker's state. Everything in it can be rebuilt
from PostgreSQL, so the eviction policy is `allkeys-lru`: under memory pressure the
coldest keys go, writes never fail.

Cluster mode is always on, so scaling out is a config change (`num_node_groups`) rather
than a migration; one shard with no replicas is a valid (dev) size. Secure defaults,
after terraform-aws-modules/elasticache: TLS required in transit, encryption at rest with
a rotating customer key, an AUTH token that clients must present, automatic failover and
Multi-AZ whenever there are replicas, only the private subnets, 6379 reachable only from
the given security groups, and the slow log shipped to an encrypted CloudWatch log group.
"""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.log_groups import encrypted_log_group
from components.security import data_store_security_group
from components.type_tokens import CACHE

__all__ = ["Cache", "CacheArgs"]

PORT = 6379


class CacheArgs(TypedDict):
    """Inputs of `Cache`."""

    vpc_id: pulumi.Input[str]
    """The VPC the cache lives in."""
    subnet_ids: pulumi.Input[list[str]]
    """Private subnets (one per AZ) for the cache subnet group."""
    allowed_security_group_ids: pulumi.Input[list[str]]
    """Security groups whose members may connect on 6379; nothing else can."""
    auth_token: pulumi.Input[str]
    """The AUTH token clients present (16-128 characters); pass a Pulumi secret."""
    node_type: pulumi.Input[str]
    """Node type, e.g. `cache.r7g.xlarge`."""
    num_shards: int
    """Node groups (shards) the key space is split over."""
    replicas_per_shard: int
    """Replicas per shard (0 to 5); with at least one, Multi-AZ failover is on."""
    engine_version: NotRequired[str]
    """Redis version (default `7.1`); its major version picks the parameter group family."""
    snapshot_retention_days: NotRequired[int]
    """Daily snapshots kept this many days (default 7; 0 turns them off)."""
    log_retention_days: NotRequired[int]
    """Slow log retention in CloudWatch (default 30 days)."""


class Cache(pulumi.ComponentResource):
    """A Redis replication group in cluster mode with TLS, AUTH and encryption."""

    configuration_endpoint: pulumi.Output[str]
    """The cluster's configuration endpoint: clients discover the shards through it."""
    port: pulumi.Output[int]
    """The Redis port."""
    auth_token: pulumi.Output[str]
    """The AUTH token (secret)."""
    security_group_id: pulumi.Output[str]
    """The cache's security group."""

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(CACHE.token, name, None, CACHE.options(opts))
        shards = int(args["num_shards"])
        replicas = int(args["replicas_per_shard"])
        if shards < 1:
            raise ValueError(f"num_shards is {shards}; allowed is 1 to 500")
        if not 0 <= replicas <= 5:  # noqa: PLR2004
            raise ValueError(f"replicas_per_shard is {replicas}; allowed is 0 to 5")
        version = args.get("engine_version", "7.1")
        family = f"redis{version.split('.')[0]}"
        child = pulumi.ResourceOptions(parent=self)

        key = customer_managed_key(name, "storage", parent=self, for_log_groups=True)
        security_group = data_store_security_group(
            name,
            vpc_id=args["vpc_id"],
            port=PORT,
            allowed_security_group_ids=args["allowed_security_group_ids"],
            description="Redis",
            parent=self,
        )
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=physical_name(name),
            description=f"{physical_name(name)}: private subnets",
            subnet_ids=args["subnet_ids"],
            tags=standard_tags(name, physical_name(name)),
            opts=child,
        )
        parameters = aws.elasticache.ParameterGroup(
            f"{name}-parameters",
            name=physical_name(name, family),
            family=family,
            description=f"{physical_name(name)}: cluster mode, evict least recently used",
            parameters=[
                {"name": "cluster-enabled", "value": "yes"},
                {"name": "maxmemory-policy", "value": "allkeys-lru"},
            ],
            tags=standard_tags(name, physical_name(name, family)),
            opts=child,
        )
        slow_log = encrypted_log_group(
            name,
            "slow-log",
            retention_days=args.get("log_retention_days", 30),
            key=key,
            parent=self,
        )
        auth_token = pulumi.Output.secret(args["auth_token"])
        group_id = physical_name(name, max_length=40)
        group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            replication_group_id=group_id,
            description=f"{group_id}: profiles, course content, rate limits",
            engine="redis",
            engine_version=version,
            node_type=args["node_type"],
            port=PORT,
            num_node_groups=shards,
            replicas_per_node_group=replicas,
            parameter_group_name=parameters.name,
            subnet_group_name=subnet_group.name,
            security_group_ids=[security_group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=auth_token,
            auth_token_update_strategy="ROTATE",  # noqa: S106 (a strategy, not a token)
            # Cluster mode requires automatic failover; Multi-AZ needs a replica to fail to.
            automatic_failover_enabled=True,
            multi_az_enabled=replicas > 0,
            snapshot_retention_limit=args.get("snapshot_retention_days", 7),
            snapshot_window="01:00-02:00",
            maintenance_window="sun:02:30-sun:03:30",
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            log_delivery_configurations=[
                {
                    "destination": slow_log.name,
                    "destination_type": "cloudwatch-logs",
                    "log_format": "json",
                    "log_type": "slow-log",
                }
            ],
            tags=standard_tags(name, group_id),
            opts=child,
        )

        self.configuration_endpoint = group.configuration_endpoint_address
        self.port = group.port.apply(lambda port: port or PORT)
        self.auth_token = auth_token
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "configuration_endpoint": self.configuration_endpoint,
                "port": self.port,
                "auth_token": self.auth_token,
                "security_group_id": self.security_group_id,
            }
        )
