"""Every Kubernetes object the stacks declare, validated against the upstream schemas.

The recorded inputs of a Kubernetes resource are its manifest. Built-in kinds are
validated offline with `kubernetes-validate` against the cluster's Kubernetes version, in
strict mode (unknown fields fail). KEDA's and the Load Balancer Controller's kinds have no schema there; their required
structure is checked by hand. Helm releases are third-party charts and not ours to check.
"""

from typing import Any

import kubernetes_validate
import pytest
from conftest import PROJECT_DIR
from manifest_kinds import CUSTOM_KINDS

from infra.graph import Graph
from infra.stack_files import load_stack
from stacks.config import parse_stack_config


def manifests(graph: Graph) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.urn, r.inputs)
        for r in graph
        if r.custom
        and r.type.startswith("kubernetes:")
        and not r.type.startswith("kubernetes:helm.sh")
        and r.type not in CUSTOM_KINDS
    ]


def test_every_builtin_object_matches_the_kubernetes_schema(stack_graph: Graph):
    version = parse_stack_config(
        load_stack(PROJECT_DIR, stack_graph.stack).config
    ).cluster.kubernetes_version
    checked = manifests(stack_graph)
    assert len(checked) >= 40
    failures = []
    for urn, manifest in checked:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{urn}: {error.message} at {list(error.path)}")
    assert not failures, "\n".join(failures)


def test_the_validation_catches_a_misspelt_field(prod_graph: Graph):
    _, deployment = next(m for m in manifests(prod_graph) if m[1]["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 3}}
    with pytest.raises(kubernetes_validate.ValidationError, match="replicaz"):
        kubernetes_validate.validate(broken, "1.33", strict=True)


def test_custom_objects_have_the_structure_their_controllers_require(stack_graph: Graph):
    for resource in stack_graph:
        if resource.type == "kubernetes:keda.sh/v1alpha1:ScaledObject":
            spec = resource.inputs["spec"]
            assert spec["scaleTargetRef"]["name"]
            assert all({"type", "metadata"} <= t.keys() for t in spec["triggers"])
            assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        if resource.type == "kubernetes:monitoring.coreos.com/v1:PodMonitor":
            spec = resource.inputs["spec"]
            assert spec["selector"]["matchLabels"]
            assert all(e["port"] and e["path"] for e in spec["podMetricsEndpoints"])
        if resource.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule":
            groups = resource.inputs["spec"]["groups"]
            assert groups
            assert all(g["name"] and g["rules"] for g in groups)
            assert all(("alert" in r) != ("record" in r) for g in groups for r in g["rules"])
        elif resource.type == "kubernetes:keda.sh/v1alpha1:TriggerAuthentication":
            assert resource.inputs["spec"]["podIdentity"]["provider"] == "aws"
        elif resource.type == "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding":
            spec = resource.inputs["spec"]
            assert spec["targetType"] == "ip"
            assert spec["targetGroupARN"].startswith("arn:aws:elasticloadbalancing:")
            assert {"name", "port"} <= spec["serviceRef"].keys()
