"""The EKS cluster as both stacks declare it."""

import json

import pytest
from conftest import PROJECT_DIR

from infra.graph import SECRET_MASK, Graph
from infra.stack_files import load_stack
from stacks.config import StackConfig, parse_stack_config

EKS = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"


def config_of(stack: str) -> StackConfig:
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config)


def test_the_api_endpoint_is_private(stack_graph: Graph):
    vpc = stack_graph.one(EKS).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert vpc["subnetIds"] == stack_graph.outputs["privateSubnetIds"]


def test_secrets_are_envelope_encrypted_with_a_rotating_key(stack_graph: Graph):
    cluster = stack_graph.one(EKS)
    encryption = cluster.inputs["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"].startswith("arn:aws:kms:")
    key = next(
        stack_graph.by_urn(u) for u in cluster.dependencies
        if stack_graph.by_urn(u).type == "aws:kms/key:Key"
    )  # fmt: skip
    assert key.inputs["enableKeyRotation"] is True


def test_every_control_plane_log_type_is_on_into_an_encrypted_group(stack_graph: Graph):
    cluster = stack_graph.one(EKS)
    assert set(cluster.inputs["enabledClusterLogTypes"]) == {
        "api", "audit", "authenticator", "controllerManager", "scheduler"
    }  # fmt: skip
    group = next(
        stack_graph.by_urn(u) for u in cluster.dependencies
        if stack_graph.by_urn(u).type == "aws:cloudwatch/logGroup:LogGroup"
    )  # fmt: skip
    assert group.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_authentication_is_by_access_entries_and_the_nodes_have_one(stack_graph: Graph):
    cluster = stack_graph.one(EKS)
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    (entry,) = stack_graph.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX"
    assert entry.inputs["principalArn"].endswith("-cluster-nodes")


def test_irsa_has_an_oidc_provider_for_the_cluster_issuer(stack_graph: Graph):
    provider = stack_graph.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"].startswith("https://oidc.eks.")
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_node_groups_follow_config_with_an_on_demand_system_group_in_every_az(stack_graph: Graph):
    config = config_of(stack_graph.stack).cluster
    groups = {
        g.inputs["labels"]["eduscale.io/node-group"]: g.inputs
        for g in stack_graph.of_type(NODE_GROUP)
    }
    assert set(groups) == {g.name for g in config.node_groups}
    for wanted in config.node_groups:
        group = groups[wanted.name]
        assert group["scalingConfig"] == {
            "minSize": wanted.min_size, "desiredSize": wanted.desired_size, "maxSize": wanted.max_size
        }  # fmt: skip
        assert group["instanceTypes"] == list(wanted.instance_types)
        assert group["subnetIds"] == stack_graph.outputs["privateSubnetIds"]
    assert groups["system"]["capacityType"] == "ON_DEMAND"


def test_nodes_require_imdsv2_and_encrypt_their_disks(stack_graph: Graph):
    templates = stack_graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == len(stack_graph.of_type(NODE_GROUP))
    for template in templates:
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        assert template.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"


def test_nodes_carry_the_group_the_data_stores_admit(stack_graph: Graph):
    for template in stack_graph.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert (
            stack_graph.outputs["dataClientsSecurityGroupId"]
            in template.inputs["vpcSecurityGroupIds"]
        )


def test_the_kubernetes_provider_is_built_from_the_clusters_kubeconfig(stack_graph: Graph):
    (provider,) = stack_graph.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET_MASK
    assert stack_graph.outputs["kubeconfig"] == SECRET_MASK


def test_every_kubernetes_object_uses_the_clusters_provider(stack_graph: Graph):
    (provider,) = stack_graph.of_type("pulumi:providers:kubernetes")
    objects = [r for r in stack_graph if r.custom and r.type.startswith("kubernetes:")]
    assert len(objects) > 30
    for resource in objects:
        assert resource.provider is not None, resource.urn
        assert resource.provider.startswith(provider.urn + "::"), resource.urn


@pytest.mark.parametrize(
    ("release", "chart", "field"),
    [
        ("metrics-server", "metrics-server", "metrics_server"),
        ("cluster-autoscaler", "cluster-autoscaler", "cluster_autoscaler"),
        (
            "aws-load-balancer-controller",
            "aws-load-balancer-controller",
            "aws_load_balancer_controller",
        ),
        ("keda", "keda", "keda"),
    ],
)
def test_each_addon_is_installed_at_its_pinned_version(
    stack_graph: Graph, release: str, chart: str, field: str
):
    releases = {r.inputs["name"]: r.inputs for r in stack_graph.of_type(RELEASE)}
    assert releases[release]["chart"] == chart
    assert releases[release]["version"] == getattr(
        config_of(stack_graph.stack).cluster.addons, field
    )


def test_controllers_get_aws_access_only_through_their_own_irsa_role(stack_graph: Graph):
    releases = {r.inputs["name"]: r.inputs for r in stack_graph.of_type(RELEASE)}
    autoscaler = releases["cluster-autoscaler"]["values"]
    assert autoscaler["autoDiscovery"]["clusterName"] == stack_graph.outputs["clusterName"]
    role_arn = autoscaler["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    role = next(
        r for r in stack_graph.of_type("aws:iam/role:Role") if role_arn.endswith(r.inputs["name"])
    )
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = trust["Condition"]["StringEquals"]
    assert "system:serviceaccount:kube-system:cluster-autoscaler" in conditions.values()


def test_persistent_volumes_are_encrypted_gp3_and_outlive_their_claims(stack_graph: Graph):
    storage = stack_graph.one("kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage.inputs["provisioner"] == "ebs.csi.aws.com"
    assert storage.inputs["parameters"]["encrypted"] == "true"
    assert storage.inputs["parameters"]["type"] == "gp3"
    assert storage.inputs["reclaimPolicy"] == "Retain"
    addon = stack_graph.one("aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "aws-ebs-csi-driver"
    assert addon.inputs["serviceAccountRoleArn"].startswith("arn:aws:iam::")
