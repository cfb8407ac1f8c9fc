"""The offline preview of the shipped stacks, and the graph it records."""

import json

import pulumi
import pulumi_aws as aws
from conftest import STANDARD_TAG_KEYS, aws_resources, is_taggable, run_program

from infra.graph import SECRET_MASK, Graph
from infra.summary import render_summary


def test_both_stacks_declare_the_network(stack_graph: Graph):
    network = stack_graph.one("eduscale:index:Network")
    assert network.parent is not None
    assert stack_graph.by_urn(network.parent).type == "pulumi:pulumi:Stack"
    assert len(stack_graph.of_type("aws:ec2/vpc:Vpc")) == 1


def test_prod_spans_three_azs_with_a_nat_each_and_dev_two_with_one(
    dev_graph: Graph, prod_graph: Graph
):
    assert len(prod_graph.of_type("aws:ec2/subnet:Subnet")) == 6
    assert len(prod_graph.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert len(dev_graph.of_type("aws:ec2/subnet:Subnet")) == 4
    assert len(dev_graph.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert prod_graph.outputs["availabilityZones"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def test_every_taggable_aws_resource_has_the_standard_tags(stack_graph: Graph):
    taggable = [r for r in aws_resources(stack_graph) if is_taggable(r.type)]
    assert taggable
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        missing = STANDARD_TAG_KEYS - tags.keys()
        assert not missing, f"{resource.urn} lacks {missing}"
        assert tags["stack"] == stack_graph.stack
        assert tags["project"] == "eduscale"


def test_the_json_document_has_the_documented_shape(prod_graph: Graph):
    document = json.loads(json.dumps(prod_graph.to_json()))
    assert document["stack"] == "prod"
    urns = {r["urn"] for r in document["resources"]}
    for resource in document["resources"]:
        assert {"urn", "type", "name", "parent", "inputs", "dependencies"} <= resource.keys()
        assert resource["parent"] is None or resource["parent"] in urns
        assert set(resource["dependencies"]) <= urns
    vpc = next(r for r in document["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    assert (
        vpc["urn"]
        == "urn:pulumi:prod::eduscale::eduscale:index:Network$aws:ec2/vpc:Vpc::network-vpc"
    )
    # Wire format: camelCase keys, whole numbers as integers.
    assert vpc["inputs"]["cidrBlock"] == "10.10.0.0/16"
    assert vpc["inputs"]["enableDnsHostnames"] is True
    group = next(
        r
        for r in document["resources"]
        if r["name"] == "network-flow-logs" and r["type"].endswith("logGroup:LogGroup")
    )
    assert group["inputs"]["retentionInDays"] == 365


def test_dependencies_are_recorded_as_the_engine_receives_them(prod_graph: Graph):
    nat = prod_graph.of_type("aws:ec2/natGateway:NatGateway")[0]
    dependency_types = {prod_graph.by_urn(u).type for u in nat.dependencies}
    assert {
        "aws:ec2/eip:Eip",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/internetGateway:InternetGateway",
    } <= dependency_types


def test_secret_inputs_are_masked_in_the_graph():
    def body() -> None:
        secret = aws.secretsmanager.Secret("s", name="api-key")
        aws.secretsmanager.SecretVersion(
            "v", secret_id=secret.id, secret_string=pulumi.Output.secret("sk-do-not-print")
        )

    graph = run_program(body)
    version = graph.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretString"] == SECRET_MASK
    assert version.inputs["secretId"] != SECRET_MASK
    assert "sk-do-not-print" not in json.dumps(graph.to_json())


def test_a_secret_map_keeps_its_keys_and_masks_every_value():
    def body() -> None:
        aws.ssm.Parameter(
            "p",
            type="String",
            value="v",
            tags=pulumi.Output.secret({"owner": "sk-secret-1", "cost": "sk-secret-2"}),
        )

    graph = run_program(body)
    assert graph.one("aws:ssm/parameter:Parameter").inputs["tags"] == {
        "owner": SECRET_MASK,
        "cost": SECRET_MASK,
    }
    assert "sk-secret" not in json.dumps(graph.to_json())


def test_the_summary_shows_the_component_tree_and_counts(prod_graph: Graph):
    summary = render_summary(prod_graph)
    assert "pulumi:pulumi:Stack eduscale-prod (prod)" in summary
    assert "├─ eduscale:index:Network network (31 resources)" in summary
    assert "├─ eduscale:index:EventBus event-bus" in summary
    assert "├─ eduscale:index:LoadBalancer alb" in summary
    assert "└─ eduscale:index:Monitoring monitoring" in summary
    subnets = len(prod_graph.of_type("aws:ec2/subnet:Subnet"))
    assert any(
        line.split() == ["aws:ec2/subnet:Subnet", str(subnets)] for line in summary.splitlines()
    )
