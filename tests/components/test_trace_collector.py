"""The trace collector component on its own: the chart, its pipeline, its IAM role."""

from typing import Any

import pulumi
import pytest
from conftest import run_program

from components.trace_collector import COLLECTOR_LABELS, TraceCollector, TraceCollectorArgs
from infra.graph import Graph

RELEASE = "kubernetes:helm.sh/v3:Release"


def args(**changes: Any) -> TraceCollectorArgs:
    base: TraceCollectorArgs = {
        "namespace": "traces",
        "chart_version": "0.127.2",
        "replicas": 3,
        "region": "eu-central-1",
        "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.example",
        "oidc_issuer": "https://oidc.eks.example/id/ABC",
    }
    base.update(changes)  # type: ignore[typeddict-item]
    return base


def record(**changes: Any) -> Graph:
    def program() -> None:
        collector = TraceCollector("otel", args(**changes))
        pulumi.export("otlp", collector.otlp_endpoint)
        pulumi.export("traces", collector.traces_endpoint)

    return run_program(program)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return record()


def test_the_chart_is_pinned_and_receives_only_otlp_http(graph: Graph):
    release = graph.one(RELEASE)
    assert (release.inputs["chart"], release.inputs["version"]) == (
        "opentelemetry-collector",
        "0.127.2",
    )
    assert release.inputs["repositoryOpts"]["repo"] == (
        "https://open-telemetry.github.io/opentelemetry-helm-charts"
    )
    values = release.inputs["values"]
    assert values["replicaCount"] == 3
    receivers = values["config"]["receivers"]
    assert receivers["otlp"]["protocols"] == {"grpc": None, "http": {"endpoint": "0.0.0.0:4318"}}
    assert values["config"]["exporters"] == {"awsxray": {"region": "eu-central-1"}}
    assert values["config"]["service"]["pipelines"]["metrics"] is None


def test_the_collector_may_only_write_to_xray_as_its_own_service_account(graph: Graph):
    role = graph.one("aws:iam/role:Role")
    trust = role.inputs["assumeRolePolicy"]
    assert "system:serviceaccount:traces:trace-collector" in trust
    attachment = graph.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
    values = graph.one(RELEASE).inputs["values"]
    assert values["serviceAccount"]["name"] == "trace-collector"


def test_its_endpoints_name_the_service_the_chart_creates(graph: Graph):
    base = "http://trace-collector.traces.svc.cluster.local:4318"
    assert graph.outputs["otlp"] == base
    assert graph.outputs["traces"] == f"{base}/v1/traces"
    assert graph.one(RELEASE).inputs["values"]["fullnameOverride"] == "trace-collector"
    assert COLLECTOR_LABELS["app.kubernetes.io/instance"] == graph.one(RELEASE).inputs["name"]


def test_no_replica_is_refused():
    with pytest.raises(Exception, match="replicas must be at least 1"):
        record(replicas=0)
