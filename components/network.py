"""The VPC every other tier lives in.

Public subnets hold only the internet-facing load balancer and the NAT gateways; every
workload and data store sits in the private subnets and reaches the internet (container
registries, the OpenAI API) through NAT. With `nat_per_az` each AZ has its own NAT gateway
and route table, so losing one AZ never cuts the others off; a single shared NAT is the
cheap choice for dev. The subnets carry the tags the AWS Load Balancer Controller uses to
find where to put internet-facing and internal load balancers. All traffic is recorded by
VPC flow logs in a KMS-encrypted log group, and the VPC's default security group is
emptied so nothing can be attached to a permissive default by accident.
"""

from collections.abc import Callable
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.log_groups import encrypted_log_group
from components.network_layout import subnet_layout
from components.type_tokens import NETWORK

__all__ = ["Network", "NetworkArgs"]


class NetworkArgs(TypedDict):
    """Inputs of `Network`. All of them shape the graph, so all are plain values."""

    cidr_block: str
    """The VPC's IPv4 range: a private (RFC 1918) /16 to /20."""
    az_count: int
    """How many availability zones to span (2 to 6); the AZs come from the region."""
    nat_per_az: NotRequired[bool]
    """One NAT gateway per AZ (default, for AZ independence) or a single shared one."""
    flow_log_retention_days: NotRequired[int]
    """How long VPC flow logs are kept (default 365 days)."""


class Network(pulumi.ComponentResource):
    """A VPC across N availability zones with public and private subnets per AZ."""

    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    cidr_block: pulumi.Output[str]
    """The VPC's IPv4 range."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Public subnets, one per AZ, in AZ order: for internet-facing load balancers and NAT."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnets, one per AZ, in AZ order: for nodes, pods and data stores."""
    azs: pulumi.Output[list[str]]
    """The availability zones spanned, in the order of the subnet lists."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(NETWORK.token, name, None, NETWORK.options(opts))
        az_count = int(args["az_count"])
        layout = subnet_layout(args["cidr_block"], az_count)
        nat_per_az = bool(args.get("nat_per_az", True))
        child = pulumi.ResourceOptions(parent=self)

        zones = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.azs = zones.names.apply(lambda names: _first_zones(names, az_count))

        vpc_name = physical_name(name)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args["cidr_block"],
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=standard_tags(name, vpc_name),
            opts=child,
        )
        # Managing the default security group with no rules strips its allow-all rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            tags=standard_tags(name, physical_name(name, "default-deny")),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw",
            vpc_id=vpc.id,
            tags=standard_tags(name, physical_name(name, "igw")),
            opts=child,
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=standard_tags(name, physical_name(name, "public")),
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nat_gateways: list[aws.ec2.NatGateway] = []
        for index, pair in enumerate(layout):
            zone = self.azs.apply(_nth(index))
            suffix = f"az{index + 1}"
            public = aws.ec2.Subnet(
                f"{name}-public-{suffix}",
                vpc_id=vpc.id,
                cidr_block=pair.public,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={
                    **standard_tags(name, physical_name(name, "public", suffix)),
                    "kubernetes.io/role/elb": "1",
                },
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{suffix}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-private-{suffix}",
                    vpc_id=vpc.id,
                    cidr_block=pair.private,
                    availability_zone=zone,
                    map_public_ip_on_launch=False,
                    tags={
                        **standard_tags(name, physical_name(name, "private", suffix)),
                        "kubernetes.io/role/internal-elb": "1",
                    },
                    opts=child,
                )
            )
            if nat_per_az or index == 0:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{suffix}",
                    domain="vpc",
                    tags=standard_tags(name, physical_name(name, "nat", suffix)),
                    opts=child,
                )
                nat_gateways.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{suffix}",
                        allocation_id=eip.allocation_id,
                        subnet_id=public.id,
                        connectivity_type="public",
                        tags=standard_tags(name, physical_name(name, "nat", suffix)),
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                    )
                )

        for index, private in enumerate(private_subnets):
            suffix = f"az{index + 1}"
            nat = nat_gateways[index] if nat_per_az else nat_gateways[0]
            routes = aws.ec2.RouteTable(
                f"{name}-private-{suffix}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags=standard_tags(name, physical_name(name, "private", suffix)),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{suffix}",
                subnet_id=private.id,
                route_table_id=routes.id,
                opts=child,
            )

        self._flow_logs(name, vpc, int(args.get("flow_log_retention_days", 365)))

        self.vpc_id = vpc.id
        self.cidr_block = vpc.cidr_block
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "cidr_block": self.cidr_block,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "azs": self.azs,
            }
        )

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, retention_days: int) -> None:
        child = pulumi.ResourceOptions(parent=self)
        key = customer_managed_key(name, "flow-logs", parent=self, for_log_groups=True)
        log_group = encrypted_log_group(
            name, "flow-logs", retention_days=retention_days, key=key, parent=self
        )
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        role_name = physical_name(name, "flow-logs", max_length=64)
        role = aws.iam.Role(
            f"{name}-flow-logs",
            name=role_name,
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            # Only on behalf of this account: no confused deputy.
                            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                        }
                    ],
                }
            ),
            tags=standard_tags(name, role_name),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogGroups",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=standard_tags(name, physical_name(name, "flow-logs")),
            opts=child,
        )


def _nth(index: int) -> Callable[[list[str]], str]:
    return lambda names: names[index]


def _first_zones(names: list[str], count: int) -> list[str]:
    if len(names) < count:
        raise ValueError(
            f"the region offers {len(names)} availability zones ({', '.join(names)}) "
            f"but az_count is {count}; lower it to at most {len(names)}"
        )
    return sorted(names)[:count]
