"""EKS rules: a passing cluster and launch template, and failing mutations of each."""

import json
from pathlib import Path
from typing import Any

import pytest
from policy_harness import mutated_graph_file, resource_violations, resources_of
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError

from infra.cli import main
from infra.graph import Graph

EKS = "aws:eks/cluster:Cluster"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CLUSTER: dict[str, Any] = {
    "vpcConfig": {
        "endpointPrivateAccess": True,
        "endpointPublicAccess": False,
        "subnetIds": ["subnet-1"],
    },
    "encryptionConfig": {
        "resources": ["secrets"],
        "provider": {"keyArn": "arn:aws:kms:eu-west-1:1:key/k"},
    },
    "enabledClusterLogTypes": LOG_TYPES,
}
NODES: dict[str, Any] = {
    "metadataOptions": {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
}
CLUSTER_RULES = [
    "eks-private-endpoint",
    "eks-public-endpoint-restricted",
    "eks-secrets-encryption",
    "eks-control-plane-logging",
]
NODE_RULES = ["eks-node-imdsv2", "eks-node-imds-hop-limit"]


def endpoint(**vpc: Any) -> dict[str, Any]:
    return {**CLUSTER, "vpcConfig": {**CLUSTER["vpcConfig"], **vpc}}


def metadata(**options: Any) -> dict[str, Any]:
    return {
        "metadataOptions": {
            k: v for k, v in {**NODES["metadataOptions"], **options}.items() if v is not None
        }
    }


@pytest.mark.parametrize("name", CLUSTER_RULES)
def test_a_compliant_cluster_passes(name: str):
    assert resource_violations(name, EKS, CLUSTER) == []


@pytest.mark.parametrize("name", NODE_RULES)
def test_a_compliant_launch_template_passes(name: str):
    assert resource_violations(name, TEMPLATE, NODES) == []


@pytest.mark.parametrize("private", [False, None])
def test_the_private_endpoint_must_be_on(private: Any):
    (found,) = resource_violations(
        "eks-private-endpoint", EKS, endpoint(endpointPrivateAccess=private)
    )
    assert "private endpoint is off" in found


@pytest.mark.parametrize("cidrs", [["198.51.100.0/24"], ["198.51.100.0/24", "2001:db8::/32"]])
def test_a_public_endpoint_for_named_ranges_passes(cidrs: list[str]):
    assert (
        resource_violations(
            "eks-public-endpoint-restricted",
            EKS,
            endpoint(endpointPublicAccess=True, publicAccessCidrs=cidrs),
        )
        == []
    )


@pytest.mark.parametrize(
    ("public", "cidrs", "message"),
    [
        (True, ["0.0.0.0/0"], "admits the whole internet"),
        (True, ["198.51.100.0/24", "::/0"], "admits the whole internet"),
        (True, ["0.0.0.0/00"], "admits the whole internet"),
        (True, ["0.0.0.0/1", "128.0.0.0/1"], "admits the whole internet"),
        (True, None, "EKS opens it to 0.0.0.0/0"),
        (True, [], "EKS opens it to 0.0.0.0/0"),
        (None, None, "EKS opens it to 0.0.0.0/0"),
        (True, ["not-a-cidr"], "not a CIDR block"),
    ],
)
def test_a_public_endpoint_open_to_everyone_fails(public: Any, cidrs: Any, message: str):
    vpc = {
        "endpointPrivateAccess": True,
        "endpointPublicAccess": public,
        "publicAccessCidrs": cidrs,
    }
    props = {**CLUSTER, "vpcConfig": {k: v for k, v in vpc.items() if v is not None}}
    (found,) = resource_violations("eks-public-endpoint-restricted", EKS, props)
    assert message in found


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "not envelope-encrypted"),
        ({"resources": [], "provider": {"keyArn": "arn:k"}}, "not envelope-encrypted"),
        ({"resources": ["secrets"]}, "names no KMS key"),
        ({"resources": ["secrets"], "provider": {"keyArn": ""}}, "names no KMS key"),
    ],
)
def test_secrets_must_be_encrypted_with_a_key(config: Any, message: str):
    (found,) = resource_violations(
        "eks-secrets-encryption", EKS, {**CLUSTER, "encryptionConfig": config}
    )
    assert message in found


def test_an_encryption_config_list_is_read_too():
    listed = {**CLUSTER, "encryptionConfig": [CLUSTER["encryptionConfig"]]}
    assert resource_violations("eks-secrets-encryption", EKS, listed) == []


@pytest.mark.parametrize("missing", LOG_TYPES)
def test_every_control_plane_log_type_is_required(missing: str):
    props = {**CLUSTER, "enabledClusterLogTypes": [t for t in LOG_TYPES if t != missing]}
    assert resource_violations("eks-control-plane-logging", EKS, props) == [
        f"control-plane logs not sent to CloudWatch: {missing}"
    ]


def test_absent_control_plane_logs_fail():
    props = {k: v for k, v in CLUSTER.items() if k != "enabledClusterLogTypes"}
    (found,) = resource_violations("eks-control-plane-logging", EKS, props)
    assert "api, audit, authenticator, controllerManager, scheduler" in found


@pytest.mark.parametrize("tokens", ["optional", None])
def test_imdsv1_fails(tokens: Any):
    assert resource_violations("eks-node-imdsv2", TEMPLATE, metadata(httpTokens=tokens)) == [
        "IMDSv1 is allowed (metadataOptions.httpTokens is not required)"
    ]


def test_a_template_without_metadata_options_allows_imdsv1():
    assert resource_violations("eks-node-imdsv2", TEMPLATE, {})


@pytest.mark.parametrize("name", NODE_RULES)
def test_a_disabled_metadata_service_needs_neither(name: str):
    assert (
        resource_violations(name, TEMPLATE, {"metadataOptions": {"httpEndpoint": "disabled"}}) == []
    )


@pytest.mark.parametrize(
    ("hops", "message"), [(2, "hop limit is 2"), (None, "no metadata hop limit")]
)
def test_a_hop_limit_above_one_fails(hops: Any, message: str):
    (found,) = resource_violations(
        "eks-node-imds-hop-limit", TEMPLATE, metadata(httpPutResponseHopLimit=hops)
    )
    assert message in found


def test_the_hop_limit_follows_the_config():
    assert (
        resource_violations(
            "eks-node-imds-hop-limit", TEMPLATE, metadata(httpPutResponseHopLimit=2), {"maximum": 2}
        )
        == []
    )


@pytest.mark.parametrize("name", CLUSTER_RULES + NODE_RULES)
def test_other_resource_types_are_ignored(name: str):
    assert resource_violations(name, "aws:ec2/instance:Instance", {}) == []


def test_an_unknown_value_during_preview_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        resource_violations(
            "eks-private-endpoint", EKS, endpoint(endpointPrivateAccess=UNKNOWN_BOOLEAN_VALUE)
        )


def open_the_api_server(document: dict[str, Any]) -> None:
    (cluster,) = resources_of(document, EKS)
    cluster["inputs"]["vpcConfig"].update(
        endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]
    )


def test_the_cli_fails_a_prod_graph_whose_api_server_is_public(
    prod_graph: Graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = mutated_graph_file(prod_graph, tmp_path / "graph.json", open_the_api_server)
    report = tmp_path / "violations.json"
    assert main(["policy", "--graph", str(path), "--json", str(report)]) == 1
    assert "[mandatory] eks-public-endpoint-restricted" in capsys.readouterr().out
    assert {v["rule"] for v in json.loads(report.read_text()) if v["mandatory"]} == {
        "eks-public-endpoint-restricted"
    }
