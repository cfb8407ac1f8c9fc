"""Security groups for data stores: one port, reachable only from named security groups.

Every data store (PostgreSQL, Redis, Kafka) gets its own group that admits its port from
the security groups it is given and from nothing else: no CIDR rule, so no address range,
peered VPC or stray instance in the subnet can reach it. The group has no egress rules; a
managed data store initiates no connections of its own through it.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags

__all__ = ["data_store_security_group"]


def data_store_security_group(
    component: str,
    *,
    vpc_id: pulumi.Input[str],
    port: int,
    allowed_security_group_ids: pulumi.Input[list[str]],
    description: str,
    parent: pulumi.Resource,
) -> aws.ec2.SecurityGroup:
    """Declare `component`'s security group admitting TCP `port` from the given groups."""
    name = physical_name(component)
    return aws.ec2.SecurityGroup(
        f"{component}-sg",
        name=name,
        description=description,
        vpc_id=vpc_id,
        ingress=[
            {
                "description": f"{description}: clients on {port}/tcp",
                "protocol": "tcp",
                "from_port": port,
                "to_port": port,
                "security_groups": allowed_security_group_ids,
            }
        ],
        egress=[],
        tags=standard_tags(component, name),
        opts=pulumi.ResourceOptions(parent=parent),
    )
