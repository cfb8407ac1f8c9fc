import ipaddress
import itertools
import json

import pytest
from conftest import STANDARD_TAG_KEYS, aws_resources, is_taggable, run_program

from components.network import Network, NetworkArgs
from infra.graph import Graph

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def network_graph(**overrides: object) -> Graph:
    args: NetworkArgs = {"cidr_block": "10.20.0.0/16", "az_count": 3}
    args.update(overrides)  # type: ignore[typeddict-item]

    def body() -> None:
        Network("net", args)

    return run_program(body)


def subnets(graph: Graph, role: str) -> list[dict[str, object]]:
    tag = {"public": "kubernetes.io/role/elb", "private": "kubernetes.io/role/internal-elb"}[role]
    return [r.inputs for r in graph.of_type(SUBNET) if tag in r.inputs["tags"]]


@pytest.mark.parametrize("az_count", [2, 3, 6])
def test_one_public_and_one_private_subnet_per_az_in_distinct_zones(az_count: int):
    graph = network_graph(az_count=az_count)
    for role in ("public", "private"):
        found = subnets(graph, role)
        assert len(found) == az_count
        assert len({s["availabilityZone"] for s in found}) == az_count


def test_subnet_cidrs_are_inside_the_vpc_and_disjoint():
    graph = network_graph()
    vpc = ipaddress.IPv4Network(graph.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"])
    cidrs = [ipaddress.IPv4Network(r.inputs["cidrBlock"]) for r in graph.of_type(SUBNET)]
    assert all(c.subnet_of(vpc) for c in cidrs)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(cidrs, 2))


def test_no_subnet_hands_out_public_ips():
    graph = network_graph()
    assert all(r.inputs["mapPublicIpOnLaunch"] is False for r in graph.of_type(SUBNET))


def _nat_of_private_subnet(graph: Graph) -> dict[str, str]:
    """private subnet URN -> URN of the NAT gateway its route table sends 0.0.0.0/0 to."""
    result = {}
    for association in graph.of_type(ASSOCIATION):
        deps = [graph.by_urn(u) for u in association.dependencies]
        subnet = next(d for d in deps if d.type == SUBNET)
        table = next(d for d in deps if d.type == ROUTE_TABLE)
        if "kubernetes.io/role/internal-elb" not in subnet.inputs["tags"]:
            continue
        (route,) = table.inputs["routes"]
        assert route["cidrBlock"] == "0.0.0.0/0"
        (nat,) = [graph.by_urn(u) for u in table.dependencies if graph.by_urn(u).type == NAT]
        result[subnet.urn] = nat.urn
    return result


def test_nat_per_az_gives_each_private_subnet_the_nat_of_its_own_az():
    graph = network_graph(nat_per_az=True)
    nats = graph.of_type(NAT)
    assert len(nats) == 3
    routing = _nat_of_private_subnet(graph)
    assert len(routing) == 3
    assert len(set(routing.values())) == 3
    for subnet_urn, nat_urn in routing.items():
        nat_subnet = next(
            graph.by_urn(u)
            for u in graph.by_urn(nat_urn).dependencies
            if graph.by_urn(u).type == SUBNET
        )
        zone = graph.by_urn(subnet_urn).inputs["availabilityZone"]
        assert nat_subnet.inputs["availabilityZone"] == zone


def test_a_shared_nat_serves_every_private_subnet():
    graph = network_graph(nat_per_az=False)
    assert len(graph.of_type(NAT)) == 1
    assert set(_nat_of_private_subnet(graph).values()) == {graph.one(NAT).urn}


def test_public_subnets_route_to_the_internet_gateway():
    graph = network_graph()
    igw = graph.one("aws:ec2/internetGateway:InternetGateway")
    public_tables = [t for t in graph.of_type(ROUTE_TABLE) if igw.urn in t.dependencies]
    assert len(public_tables) == 1
    associated = [a for a in graph.of_type(ASSOCIATION) if public_tables[0].urn in a.dependencies]
    assert len(associated) == 3


def test_every_taggable_resource_carries_the_standard_tags():
    graph = network_graph()
    checked = 0
    for resource in aws_resources(graph):
        if not is_taggable(resource.type):
            continue
        tags = resource.inputs.get("tags", {})
        assert tags.keys() >= STANDARD_TAG_KEYS, resource.urn
        assert tags["project"] == "foreign"
        assert tags["stack"] == "test"
        assert tags["component"] == "net"
        assert tags["managed-by"] == "pulumi"
        checked += 1
    assert checked >= 15


def test_every_child_is_parented_to_the_component():
    graph = network_graph()
    component = graph.one("eduscale:index:Network")
    for resource in graph:
        if resource.custom:
            assert resource.parent == component.urn, resource.urn


def test_flow_logs_record_all_traffic_into_an_encrypted_log_group():
    graph = network_graph(flow_log_retention_days=90)
    flow_log = graph.one("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["vpcId"].startswith("vpc-")
    log_group = graph.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["retentionInDays"] == 90
    key = graph.one("aws:kms/key:Key")
    assert key.urn in log_group.dependencies
    assert key.inputs["enableKeyRotation"] is True
    policy = json.loads(key.inputs["policy"])
    services = [s["Principal"].get("Service") for s in policy["Statement"]]
    assert "logs.eu-west-1.amazonaws.com" in services


def test_the_default_security_group_is_emptied():
    group = network_graph().one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not group.inputs.get("ingress")
    assert not group.inputs.get("egress")


def test_outputs_list_subnets_in_az_order():
    captured: dict[str, object] = {}

    def body() -> None:
        network = Network("net", {"cidr_block": "10.20.0.0/16", "az_count": 3})
        network.azs.apply(lambda v: captured.setdefault("azs", v))
        network.private_subnet_ids.apply(lambda v: captured.setdefault("private", v))
        network.vpc_id.apply(lambda v: captured.setdefault("vpc", v))

    graph = run_program(body)
    assert captured["azs"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert str(captured["vpc"]).startswith("vpc-")
    private = [r for r in graph.of_type(SUBNET) if "internal-elb" in json.dumps(r.inputs)]
    assert len(captured["private"]) == 3  # type: ignore[arg-type]
    assert [r.inputs["availabilityZone"] for r in private] == captured["azs"]


def test_invalid_args_fail_before_any_resource_is_declared():
    with pytest.raises(ValueError, match="az_count is 1; allowed is 2 to 6"):
        network_graph(az_count=1)
