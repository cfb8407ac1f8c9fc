"""Another team's stack built from our components: its own project, stack, names and tags.

The program below is what the LMS team writes in their own Pulumi project: import
`Network` and `Database` from `components`, pass the minimum, wire one into the other.
What they must get is theirs alone: physical names and tags derived from *their* project
and stack, so nothing collides with our stacks or anyone else's in the same account, and
a database that lives in the private subnets of the network they declared.
"""

import pulumi
import pulumi_aws as aws
import pytest
from conftest import aws_resources, is_taggable, run_program

from components import Database, Network
from infra.graph import Graph

PROJECT = "lms-team"
STACK = "staging"
PREFIX = f"{PROJECT}-{STACK}-"

RDS_INSTANCE = "aws:rds/instance:Instance"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"


def lms_program() -> None:
    network = Network("net", {"cidr_block": "10.40.0.0/16", "az_count": 2, "nat_per_az": False})
    app = aws.ec2.SecurityGroup("lms-app", vpc_id=network.vpc_id, description="LMS app")
    Database(
        "db",
        {
            "vpc_id": network.vpc_id,
            "subnet_ids": network.private_subnet_ids,
            "availability_zones": network.azs,
            "allowed_security_group_ids": pulumi.Output.all(app.id),
            "engine_version": "17.4",
            "instance_class": "db.t4g.medium",
            "replica_count": 1,
        },
    )
    pulumi.export("privateSubnetIds", network.private_subnet_ids)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return run_program(lms_program, project=PROJECT, stack=STACK)


def test_their_database_instances_are_tagged_with_their_project_and_stack(graph: Graph):
    instances = graph.of_type(RDS_INSTANCE)
    assert len(instances) == 2  # the writer and the one replica asked for
    for instance in instances:
        tags = instance.inputs["tags"]
        assert (tags["project"], tags["stack"], tags["component"]) == (PROJECT, STACK, "db")


def test_their_database_instances_are_named_after_their_project_and_stack(graph: Graph):
    identifiers = sorted(i.inputs["identifier"] for i in graph.of_type(RDS_INSTANCE))
    assert identifiers == [f"{PREFIX}db-replica-1", f"{PREFIX}db-writer"]
    assert graph.one("aws:rds/subnetGroup:SubnetGroup").inputs["name"] == f"{PREFIX}db"


def test_everything_our_components_declare_for_them_carries_their_names_and_tags(
    graph: Graph,
):
    declared = [r for r in aws_resources(graph) if graph.component_of(r) is not None]
    tagged = [r for r in declared if is_taggable(r.type)]
    assert tagged
    for resource in tagged:
        tags = resource.inputs["tags"]
        assert (tags["project"], tags["stack"]) == (PROJECT, STACK), resource.urn
        # Inside rather than at the start for names AWS dictates the shape of, such as
        # `/aws/rds/instance/<instance id>/postgresql`.
        assert PREFIX in tags["Name"], resource.urn


def test_their_database_sits_in_their_networks_private_subnets(graph: Graph):
    subnet_group = graph.one("aws:rds/subnetGroup:SubnetGroup")
    assert subnet_group.inputs["subnetIds"] == graph.outputs["privateSubnetIds"]
    private = {
        s.urn
        for s in graph.of_type(SUBNET)
        if "kubernetes.io/role/internal-elb" in s.inputs["tags"]
    }
    assert len(private) == 2
    assert set(subnet_group.dependencies) == private


def test_only_their_app_may_connect_to_their_database(graph: Graph):
    (app,) = [g for g in graph.of_type(SECURITY_GROUP) if g.name == "lms-app"]
    (database_sg,) = [g for g in graph.of_type(SECURITY_GROUP) if g.name == "db-sg"]
    (rule,) = database_sg.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"]) == (5432, 5432)
    assert len(rule["securityGroups"]) == 1
    assert app.urn in database_sg.dependencies


def test_their_stack_shows_one_network_and_one_database_holding_the_rds_resources(
    graph: Graph,
):
    # The same tokens as in the published schema, whichever language built the stack.
    network = graph.one("eduscale:index:Network")
    database = graph.one("eduscale:index:Database")
    assert network.urn.startswith(f"urn:pulumi:{STACK}::{PROJECT}::")
    for instance in graph.of_type(RDS_INSTANCE):
        assert graph.component_of(instance) == database
