"""Network rules: what security groups admit (inline and standalone rules), and flow logs."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from policy_harness import (
    mutated_graph_file,
    policy_resource,
    resource_violations,
    resources_of,
    stack_violations,
)
from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, UnknownValueError

from infra.cli import main
from infra.graph import Graph

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
ALB = "aws:lb/loadBalancer:LoadBalancer"
RDS = "aws:rds/instance:Instance"
CLOUDFLARE = ["173.245.48.0/20", "104.16.0.0/13"]
WORLD = "sg-no-world-ingress"
DATA = "sg-data-store-sg-only"


def tcp(port: int, **source: Any) -> dict[str, Any]:
    return {"protocol": "tcp", "fromPort": port, "toPort": port, "description": "d", **source}


def group(*ingress: dict[str, Any], egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"description": "why", "ingress": list(ingress), "egress": egress or []}


def graph(
    alb_ingress: list[dict[str, Any]] | None = None,
    db_ingress: list[dict[str, Any]] | None = None,
    app_ingress: list[dict[str, Any]] | None = None,
    *,
    internal: bool = False,
) -> dict[str, PolicyResource]:
    """An ALB and its group, a database and its group, and an application group."""
    alb_sg = policy_resource(
        SG, group(*(alb_ingress or [tcp(443, cidrBlocks=CLOUDFLARE)])), "urn:test::alb-sg"
    )
    db_sg = policy_resource(
        SG, group(*(db_ingress or [tcp(5432, securityGroups=["sg-app"])])), "urn:test::db-sg"
    )
    app_sg = policy_resource(SG, group(*(app_ingress or [])), "urn:test::app-sg")
    alb = policy_resource(
        ALB, {"internal": internal, "securityGroups": ["sg-alb"]}, "urn:test::alb", [alb_sg]
    )
    db = policy_resource(RDS, {"vpcSecurityGroupIds": ["sg-db"]}, "urn:test::db", [db_sg])
    return {"alb-sg": alb_sg, "db-sg": db_sg, "app-sg": app_sg, "alb": alb, "db": db}


def check(
    name: str,
    resources: dict[str, PolicyResource] | list[PolicyResource],
    config: dict[str, Any] | None = None,
) -> list[tuple[str, str | None]]:
    listed = list(resources.values()) if isinstance(resources, dict) else resources
    return stack_violations(name, listed, config)


@pytest.mark.parametrize("name", [WORLD, DATA, "vpc-flow-logs"])
def test_the_compliant_graph_passes(name: str):
    assert check(name, graph()) == []


@pytest.mark.parametrize(
    "cidrs",
    [["0.0.0.0/0"], ["0.0.0.0/00"], ["10.1.2.3/0"], [" 0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"]],
)
def test_every_ipv4_spelling_of_the_internet_fails(cidrs: list[str]):
    ((message, urn),) = check(WORLD, graph(app_ingress=[tcp(8080, cidrBlocks=cidrs)]))
    assert urn == "urn:test::app-sg"
    assert "ingress rule 1 admits the whole internet on tcp 8080" in message


@pytest.mark.parametrize("cidr", ["::/0", "::0/0", "0000::/0", "0:0:0:0:0:0:0:0/0"])
def test_every_ipv6_spelling_of_the_internet_fails(cidr: str):
    assert check(WORLD, graph(app_ingress=[tcp(8080, ipv6CidrBlocks=[cidr])]))


def test_a_private_range_passes():
    assert check(WORLD, graph(app_ingress=[tcp(8080, cidrBlocks=["10.0.0.0/8"])])) == []


def test_no_ingress_at_all_admits_nothing():
    resources = graph()
    resources["bare"] = policy_resource(SG, {"description": "x"}, "urn:test::bare")
    assert check(WORLD, resources) == []


@pytest.mark.parametrize("port", [443, 80])
def test_the_public_albs_group_may_admit_the_internet_on_its_listener_ports(port: int):
    assert check(WORLD, graph(alb_ingress=[tcp(port, cidrBlocks=["0.0.0.0/0"])])) == []


@pytest.mark.parametrize(
    "rule",
    [
        tcp(22, cidrBlocks=["0.0.0.0/0"]),
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "tcp", "fromPort": 80, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
        {**tcp(443, cidrBlocks=["0.0.0.0/0"]), "protocol": "udp"},
    ],
    ids=["ssh", "all-traffic", "port-range", "udp"],
)
def test_the_albs_group_admits_the_internet_on_nothing_else(rule: dict[str, Any]):
    ((_, urn),) = check(WORLD, graph(alb_ingress=[rule]))
    assert urn == "urn:test::alb-sg"


def test_an_internal_albs_group_gets_no_exception():
    assert check(WORLD, graph(alb_ingress=[tcp(443, cidrBlocks=["0.0.0.0/0"])], internal=True))


def test_the_exception_is_only_for_a_load_balancers_group():
    assert check(WORLD, graph(app_ingress=[tcp(443, cidrBlocks=["0.0.0.0/0"])]))


def test_the_exempt_ports_follow_the_config():
    world_80 = graph(alb_ingress=[tcp(80, cidrBlocks=["0.0.0.0/0"])])
    assert check(WORLD, world_80, {"loadBalancerPorts": [443]})


def test_world_egress_is_not_ingress():
    resources = graph()
    resources["out"] = policy_resource(
        SG, group(egress=[tcp(443, cidrBlocks=["0.0.0.0/0"])]), "urn:test::out"
    )
    assert check(WORLD, resources) == []


def test_an_invalid_cidr_is_reported():
    ((message, _),) = check(WORLD, graph(app_ingress=[tcp(80, cidrBlocks=["0/0"])]))
    assert "0/0 is not a CIDR block" in message


def standalone(
    kind: str, props: dict[str, Any], owner: PolicyResource, urn: str = "urn:test::rule"
) -> PolicyResource:
    return policy_resource(kind, {"description": "d", **props}, urn, [owner])


@pytest.mark.parametrize(
    ("kind", "props"),
    [
        (
            INGRESS_RULE,
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"},
        ),
        (INGRESS_RULE, {"ipProtocol": "-1", "cidrIpv6": "::/0"}),
        (
            GROUP_RULE,
            {
                "type": "ingress",
                "protocol": "tcp",
                "fromPort": 22,
                "toPort": 22,
                "cidrBlocks": ["0.0.0.0/0"],
            },
        ),
    ],
)
def test_standalone_ingress_rules_are_checked_too(kind: str, props: dict[str, Any]):
    resources = graph()
    resources["rule"] = standalone(kind, props, resources["app-sg"])
    ((message, urn),) = check(WORLD, resources)
    assert urn == "urn:test::rule"
    assert "standalone ingress rule rule admits the whole internet" in message


def test_a_standalone_egress_rule_is_not_ingress():
    resources = graph()
    props = {
        "type": "egress",
        "protocol": "-1",
        "fromPort": 0,
        "toPort": 0,
        "cidrBlocks": ["0.0.0.0/0"],
    }
    resources["rule"] = standalone(GROUP_RULE, props, resources["app-sg"])
    assert check(WORLD, resources) == []


def test_a_standalone_rule_on_the_albs_group_gets_the_exception():
    resources = graph()
    props = {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"}
    resources["rule"] = standalone(INGRESS_RULE, props, resources["alb-sg"])
    assert check(WORLD, resources) == []


def test_an_unknown_value_during_preview_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        check(WORLD, graph(app_ingress=[tcp(80, cidrBlocks=UNKNOWN_ARRAY_VALUE)]))


def test_other_resource_types_are_ignored():
    acl = policy_resource(
        "aws:ec2/networkAclRule:NetworkAclRule",
        {"cidrBlock": "0.0.0.0/0", "egress": False},
        "urn:test::acl",
    )
    assert check(WORLD, [acl]) == []


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ({"cidrBlocks": ["10.10.0.0/16"]}, "10.10.0.0/16"),
        ({"ipv6CidrBlocks": ["fd00::/8"]}, "fd00::/8"),
        ({"prefixListIds": ["pl-123"]}, "a prefix list"),
        ({"cidrBlocks": ["10.10.0.0/16"], "securityGroups": ["sg-app"]}, "10.10.0.0/16"),
    ],
)
def test_a_data_store_group_admitting_address_ranges_fails(source: dict[str, Any], shown: str):
    ((message, urn),) = check(DATA, graph(db_ingress=[tcp(5432, **source)]))
    assert urn == "urn:test::db-sg"
    assert f"ingress rule 1 of the security group of db admits {shown}" in message


def test_a_self_reference_is_a_security_group_reference():
    assert check(DATA, graph(db_ingress=[tcp(5432, self=True)])) == []


def test_a_group_no_data_store_uses_may_admit_ranges():
    assert check(DATA, graph(app_ingress=[tcp(8080, cidrBlocks=["10.0.0.0/8"])])) == []


def test_a_standalone_cidr_rule_on_a_data_store_group_fails():
    resources = graph()
    props = {"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv4": "10.0.0.0/8"}
    resources["rule"] = standalone(INGRESS_RULE, props, resources["db-sg"])
    ((_, urn),) = check(DATA, resources)
    assert urn == "urn:test::rule"


def test_a_rule_that_only_references_a_data_store_group_is_not_its_rule():
    """A rule on the clients' group naming the database group as its source: the property
    dependencies say which group it belongs to."""
    resources = graph()
    props = {"ipProtocol": "tcp", "fromPort": 8080, "toPort": 8080, "cidrIpv4": "10.0.0.0/8"}
    rule = policy_resource(
        INGRESS_RULE, props, "urn:test::rule", [resources["app-sg"], resources["db-sg"]]
    )
    rule.property_dependencies = {
        "securityGroupId": [resources["app-sg"]],
        "referencedSecurityGroupId": [resources["db-sg"]],
    }
    resources["rule"] = rule
    assert check(DATA, resources) == []


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("aws:elasticache/replicationGroup:ReplicationGroup", "securityGroupIds"),
        ("aws:msk/cluster:Cluster", "brokerNodeGroupInfo"),
        ("aws:rds/cluster:Cluster", "vpcSecurityGroupIds"),
    ],
)
def test_every_kind_of_data_store_is_covered(kind: str, key: str):
    store_sg = policy_resource(
        SG, group(tcp(6379, cidrBlocks=["10.0.0.0/8"])), "urn:test::store-sg"
    )
    subnet = policy_resource("aws:ec2/subnet:Subnet", {}, "urn:test::subnet")
    store = policy_resource(kind, {}, "urn:test::store", [store_sg, subnet])
    store.property_dependencies = {key: [store_sg, subnet]}
    ((message, urn),) = check(DATA, [store_sg, subnet, store])
    assert urn == "urn:test::store-sg"
    assert "group of store admits 10.0.0.0/8" in message


def test_a_group_shared_by_data_stores_names_them_all():
    resources = graph(db_ingress=[tcp(5432, cidrBlocks=["10.0.0.0/8"])])
    resources["replica"] = policy_resource(RDS, {}, "urn:test::replica", [resources["db-sg"]])
    ((message, _),) = check(DATA, resources)
    assert "security group of db, replica admits" in message


DESCRIBED = group(tcp(443, cidrBlocks=["10.0.0.0/8"]), egress=[tcp(443, cidrBlocks=["10.0.0.0/8"])])


def test_described_groups_and_rules_pass():
    assert resource_violations("sg-rule-descriptions", SG, DESCRIBED) == []
    assert resource_violations("sg-rule-descriptions", INGRESS_RULE, {"description": "d"}) == []


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({**DESCRIBED, "description": None}, "the group has no description"),
        ({**DESCRIBED, "description": "Managed by Pulumi"}, "the group has no description"),
        (
            {**DESCRIBED, "ingress": [{"protocol": "tcp", "fromPort": 1, "toPort": 1}]},
            "ingress rule 1 has no description",
        ),
        (
            {**DESCRIBED, "egress": [{**tcp(443), "description": ""}]},
            "egress rule 1 has no description",
        ),
    ],
)
def test_a_missing_description_is_reported(props: dict[str, Any], message: str):
    (found,) = resource_violations("sg-rule-descriptions", SG, props)
    assert message in found


@pytest.mark.parametrize(
    "kind", [INGRESS_RULE, GROUP_RULE, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"]
)
def test_a_standalone_rule_without_description_fails(kind: str):
    assert resource_violations("sg-rule-descriptions", kind, {"cidrIpv4": "10.0.0.0/8"}) == [
        "the rule has no description"
    ]


def test_the_default_group_has_no_description_to_give():
    default = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
    assert resource_violations("sg-rule-descriptions", default, {"vpcId": "vpc-1"}) == []


def test_descriptions_of_other_types_are_ignored():
    assert resource_violations("sg-rule-descriptions", "aws:ec2/vpc:Vpc", {}) == []


def test_a_vpc_without_flow_logs_fails():
    vpc = policy_resource("aws:ec2/vpc:Vpc", {}, "urn:test::vpc")
    other = policy_resource("aws:ec2/vpc:Vpc", {}, "urn:test::other")
    log = policy_resource(
        "aws:ec2/flowLog:FlowLog", {"trafficType": "ALL"}, "urn:test::log", [other]
    )
    assert check("vpc-flow-logs", [vpc, other, log]) == [
        ("the VPC has no flow log: traffic cannot be traced after an incident", "urn:test::vpc")
    ]


def _database_group(document: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in resources_of(document, SG) if r["name"] == "database-sg")


def open_the_database(document: dict[str, Any]) -> None:
    _database_group(document)["inputs"]["ingress"].append(
        {
            "protocol": "tcp",
            "fromPort": 5432,
            "toPort": 5432,
            "cidrBlocks": ["0.0.0.0/0"],
            "description": "oops",
        }
    )


def broken_rules(graph: Graph, path: Path, mutate: Callable[[dict[str, Any]], None]) -> set[str]:
    """The mandatory rules `eduscale policy` reports for `graph` after `mutate`."""
    report = path / "violations.json"
    assert (
        main(
            [
                "policy",
                "--graph",
                str(mutated_graph_file(graph, path / "graph.json", mutate)),
                "--json",
                str(report),
            ]
        )
        == 1
    )
    return {v["rule"] for v in json.loads(report.read_text()) if v["mandatory"]}


def test_the_cli_fails_a_prod_graph_whose_database_admits_the_internet(
    prod_graph: Graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    named = broken_rules(prod_graph, tmp_path, open_the_database)
    out = capsys.readouterr().out
    assert f"[mandatory] {WORLD}" in out
    assert f"[mandatory] {DATA}" in out
    assert named == {WORLD, DATA}
