"""Rules for the network tier: what each security group admits, and VPC flow logs.

A security group's ingress is declared in two ways: inline (`ingress` on the group) and as
standalone rule resources that name the group (`securityGroupId`). Every rule here reads
both, through `ingress_rules`, so moving a rule out of the group cannot hide it. The links
between resources (which group an ALB or a database uses, which group a standalone rule
belongs to) come from the engine's property dependencies, never from ids, which are unknown
until the group exists.

CIDRs are compared as networks, not strings: "0.0.0.0/00", "::0/0" and "10.0.0.0/0" all
mean the whole internet, and so do "0.0.0.0/1" plus "128.0.0.0/1" together.

The edge rules (`policies.edge`) reuse the helpers here for the ALB's group.
"""

import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies.support import config_value, get, resource_rule, stack_rule

__all__ = [
    "LOAD_BALANCERS",
    "POLICIES",
    "SECURITY_GROUPS",
    "Ingress",
    "IpNetwork",
    "ingress_rules",
    "invalid_cidrs",
    "linked",
    "opens_world",
    "parse_cidr",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUPS = frozenset({SECURITY_GROUP, DEFAULT_SECURITY_GROUP})
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
"""`type` = "ingress" or "egress"."""
STANDALONE_RULES = frozenset({INGRESS_RULE, EGRESS_RULE, GROUP_RULE})
LOAD_BALANCERS = frozenset(
    {"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"}
)
DATA_STORES: Mapping[str, str] = {
    "aws:rds/instance:Instance": "vpcSecurityGroupIds",
    "aws:rds/cluster:Cluster": "vpcSecurityGroupIds",
    "aws:elasticache/replicationGroup:ReplicationGroup": "securityGroupIds",
    "aws:elasticache/cluster:Cluster": "securityGroupIds",
    "aws:msk/cluster:Cluster": "brokerNodeGroupInfo",
}
"""Data-store type -> the input that holds its security groups."""
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
PULUMI_DEFAULT_DESCRIPTION = "Managed by Pulumi"
TCP = frozenset({"tcp", "6"})


def linked(resource: PolicyResource, key: str, types: Collection[str]) -> list[PolicyResource]:
    """The resources of `types` that `resource`'s input `key` refers to.

    The engine says which input each dependency feeds; where a caller gives no property
    dependencies at all, the plain dependency list stands in for every input.
    """
    by_input = resource.property_dependencies or {}
    candidates = by_input.get(key, []) if by_input else resource.dependencies
    return [r for r in candidates if r.resource_type in types]


def parse_cidr(cidr: Any) -> IpNetwork | None:
    """`cidr` as a network (host bits ignored, as AWS does), or None if it is not a CIDR."""
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError:
        return None


def invalid_cidrs(cidrs: Iterable[str]) -> list[str]:
    """The entries of `cidrs` that are not CIDR blocks."""
    return [c for c in cidrs if parse_cidr(c) is None]


def opens_world(cidrs: Iterable[str]) -> bool:
    """Whether `cidrs` together cover every IPv4 or every IPv6 address."""
    networks = [n for n in map(parse_cidr, cidrs) if n is not None]
    v4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
    return any(n.prefixlen == 0 for n in v4) or any(n.prefixlen == 0 for n in v6)


@dataclass(frozen=True)
class Ingress:
    """One ingress rule: an inline entry of a group, or a standalone rule resource."""

    owner: PolicyResource
    """The resource that declares the rule (the group, or the standalone rule)."""
    label: str
    props: Mapping[str, Any]

    def cidrs(self) -> list[str]:
        """Every address range the rule admits (IPv4 and IPv6, any property spelling)."""
        found = [
            str(c) for key in ("cidrBlocks", "ipv6CidrBlocks") for c in get(self.props, key) or []
        ]
        found += [str(v) for key in ("cidrIpv4", "cidrIpv6") if (v := get(self.props, key))]
        return found

    def prefix_lists(self) -> bool:
        """Whether the rule admits a managed prefix list (its content is not in the stack)."""
        return bool(get(self.props, "prefixListIds") or get(self.props, "prefixListId"))

    def tcp_port(self) -> int | None:
        """The one TCP port the rule opens, or None if it opens a range or another protocol."""
        protocol = str(get(self.props, "protocol") or get(self.props, "ipProtocol") or "").lower()
        low, high = get(self.props, "fromPort"), get(self.props, "toPort")
        return low if protocol in TCP and isinstance(low, int) and low == high else None

    def span(self) -> str:
        """The protocol and ports, for messages."""
        protocol = str(get(self.props, "protocol") or get(self.props, "ipProtocol") or "?")
        if protocol in {"-1", "all"}:
            return "all traffic"
        low, high = get(self.props, "fromPort"), get(self.props, "toPort")
        return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def _is_ingress(resource: PolicyResource) -> bool:
    if resource.resource_type == INGRESS_RULE:
        return True
    return resource.resource_type == GROUP_RULE and get(resource.props, "type") == "ingress"


def ingress_rules(group: PolicyResource, resources: Sequence[PolicyResource]) -> list[Ingress]:
    """Every ingress rule of `group`: its inline entries and the standalone rules naming it."""
    inline = [
        Ingress(group, f"ingress rule {i}", entry)
        for i, entry in enumerate(get(group.props, "ingress") or [], start=1)
    ]
    standalone = [
        Ingress(r, f"standalone ingress rule {r.name}", r.props)
        for r in resources
        if _is_ingress(r)
        and group.urn in {g.urn for g in linked(r, "securityGroupId", SECURITY_GROUPS)}
    ]
    return inline + standalone


def _public_load_balancer_groups(resources: Sequence[PolicyResource]) -> set[str]:
    return {
        group.urn
        for lb in resources
        if lb.resource_type in LOAD_BALANCERS and get(lb.props, "internal") is not True
        for group in linked(lb, "securityGroups", SECURITY_GROUPS)
    }


def _world_ingress(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    public_ports = {int(p) for p in config_value(args, "loadBalancerPorts", default=[443, 80])}
    edge_groups = _public_load_balancer_groups(args.resources)
    for group in (r for r in args.resources if r.resource_type in SECURITY_GROUPS):
        for rule in ingress_rules(group, args.resources):
            cidrs = rule.cidrs()
            if bad := invalid_cidrs(cidrs):
                yield f"{rule.label}: {', '.join(bad)} is not a CIDR block", rule.owner.urn
            if not opens_world(cidrs):
                continue
            if group.urn in edge_groups and rule.tcp_port() in public_ports:
                continue
            yield f"{rule.label} admits the whole internet on {rule.span()}", rule.owner.urn


def _data_store_groups(
    resources: Sequence[PolicyResource],
) -> dict[str, tuple[PolicyResource, set[str]]]:
    found: dict[str, tuple[PolicyResource, set[str]]] = {}
    for store in resources:
        key = DATA_STORES.get(store.resource_type)
        for group in linked(store, key, SECURITY_GROUPS) if key else []:
            found.setdefault(group.urn, (group, set()))[1].add(store.name)
    return found


def _data_store_sg_only(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    for group, stores in _data_store_groups(args.resources).values():
        users = ", ".join(sorted(stores))
        for rule in ingress_rules(group, args.resources):
            sources = rule.cidrs() + (["a prefix list"] if rule.prefix_lists() else [])
            if sources:
                message = (
                    f"{rule.label} of the security group of {users} admits {', '.join(sources)}; "
                    "a data store admits only security groups"
                )
                yield message, rule.owner.urn


def _descriptions(args: ResourceValidationArgs) -> Iterable[str]:
    props = args.props
    if args.resource_type in STANDALONE_RULES:
        if not get(props, "description"):
            yield "the rule has no description"
        return
    if args.resource_type == SECURITY_GROUP and get(props, "description") in {
        None,
        "",
        PULUMI_DEFAULT_DESCRIPTION,
    }:
        yield f"the group has no description of its own (AWS shows {PULUMI_DEFAULT_DESCRIPTION!r})"
    for direction in ("ingress", "egress"):
        for i, entry in enumerate(get(props, direction) or [], start=1):
            if not get(entry, "description"):
                yield f"{direction} rule {i} has no description"


def _flow_logs(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    logged = {
        vpc.urn
        for log in args.resources
        if log.resource_type == FLOW_LOG
        for vpc in linked(log, "vpcId", {VPC})
    }
    for vpc in args.resources:
        if vpc.resource_type == VPC and vpc.urn not in logged:
            yield "the VPC has no flow log: traffic cannot be traced after an incident", vpc.urn


POLICIES = [
    stack_rule(
        "sg-no-world-ingress",
        "No security group may admit the whole internet: every service sits behind the ALB, "
        "and the ALB's group is the only door (port 443, and 80 which only redirects to "
        "HTTPS, enforced by alb-listener-https-only).",
        severity=Severity.CRITICAL, mandatory=True, check=_world_ingress,
        fix="Replace 0.0.0.0/0 and ::/0 with the sources that need access: a security group "
        "reference inside the VPC, or Cloudflare's ranges on the ALB.",
        scanners=["CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_277", "AWS-0107"],
        config={"loadBalancerPorts": {"type": "array", "items": {"type": "integer"},
                                      "default": [443, 80]}},
    ),
    stack_rule(
        "sg-data-store-sg-only",
        "PostgreSQL, Redis and Kafka admit only the security groups of their clients, never "
        "address ranges: a CIDR admits whatever later lands in it (a new subnet, a peered VPC).",
        severity=Severity.HIGH, mandatory=True, check=_data_store_sg_only,
        fix="Replace cidrBlocks/ipv6CidrBlocks/prefixListIds with securityGroups = [the "
        "clients' group] (referencedSecurityGroupId on a standalone rule).",
        scanners=["derived"],
    ),
    resource_rule(
        "sg-rule-descriptions",
        "Each security group and each of its rules says why it exists, so a review can tell "
        "a needed opening from a forgotten one.",
        types=[*SECURITY_GROUPS, *STANDALONE_RULES], severity=Severity.LOW, mandatory=False,
        check=_descriptions,
        fix="Set description on the group and on every ingress/egress rule.",
        scanners=["CKV_AWS_23", "AWS-0099", "AWS-0124"],
    ),
    stack_rule(
        "vpc-flow-logs",
        "Flow logs are the only record of which addresses talked to which after an incident.",
        severity=Severity.MEDIUM, mandatory=False, check=_flow_logs,
        fix="Give every VPC an aws.ec2.FlowLog (the Network component creates one).",
        scanners=["CKV2_AWS_11", "AWS-0178"],
    ),
]  # fmt: skip
