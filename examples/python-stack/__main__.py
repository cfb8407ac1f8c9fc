"""A data tier for an LMS, built from eduscale's components in another team's project.

Nothing from eduscale's own stacks is used: the components are imported from the
`components` package, given this project's values, and wired into each other and into a
security group the team owns. Physical names and tags come from this project and stack
(`lms-data-tier-dev-...`), so the tier cannot collide with anyone else's in the account.
"""

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import Cache, Database, DocumentStore, Network

config = pulumi.Config()
az_count = config.get_int("azCount") or 2

network = Network("net", {"cidr_block": "10.60.0.0/16", "az_count": az_count, "nat_per_az": False})

# The team's application; only its members may reach the data stores.
app = aws.ec2.SecurityGroup("lms-app", vpc_id=network.vpc_id, description="LMS application")
clients = pulumi.Output.all(app.id)

database = Database(
    "db",
    {
        "vpc_id": network.vpc_id,
        "subnet_ids": network.private_subnet_ids,
        "availability_zones": network.azs,
        "allowed_security_group_ids": clients,
        "engine_version": "17.4",
        "instance_class": "db.t4g.medium",
        "replica_count": config.get_int("replicaCount") or 1,
        "slow_statement_ms": 250,
    },
)

cache_token = random.RandomPassword("cache-token", length=48, special=False)
cache = Cache(
    "cache",
    {
        "vpc_id": network.vpc_id,
        "subnet_ids": network.private_subnet_ids,
        "allowed_security_group_ids": clients,
        "auth_token": cache_token.result,
        "node_type": "cache.t4g.small",
        "num_shards": 1,
        "replicas_per_shard": 1,
    },
)

documents = DocumentStore("documents", {"noncurrent_version_days": 14})

pulumi.export("vpcId", network.vpc_id)
pulumi.export("databaseWriter", database.writer_endpoint)
pulumi.export("databaseReader", database.reader_endpoint)
pulumi.export("cacheEndpoint", cache.configuration_endpoint)
pulumi.export("documentBucket", documents.bucket_name)
