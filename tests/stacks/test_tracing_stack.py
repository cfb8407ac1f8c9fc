"""Traces in the recorded graphs: the collector, every traced workload's environment and
its path to the collector, and Kong's `opentelemetry` plugin with W3C propagation."""

from typing import Any

import pytest
from test_edge import kong_config
from test_workloads import by_name

from components.trace_collector import COLLECTOR_LABELS
from infra.graph import Graph, RecordedResource
from stacks.tracing_section import TracingConfig

RELEASE = "kubernetes:helm.sh/v3:Release"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
TRACED = {
    "auth": "auth",
    "course": "course",
    "ai-orchestrator": "ai-orchestrator",
    "generation-worker": "generation-worker",
    "indexer-worker": "indexer-worker",
}
ENDPOINT = "http://trace-collector.tracing.svc.cluster.local:4318"


def collector(graph: Graph) -> RecordedResource:
    (release,) = [
        r for r in graph.of_type(RELEASE) if r.inputs["chart"] == "opentelemetry-collector"
    ]
    return release


def env_of(graph: Graph, name: str) -> dict[str, str]:
    maps = [
        c.inputs["data"]
        for c in graph.of_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"].get("labels", {}).get("app.kubernetes.io/name") == name
        and "LOG_LEVEL" in c.inputs.get("data", {})
    ]
    (data,) = maps
    return dict(data)


def test_prod_runs_the_pinned_collector_exporting_to_xray(prod_graph: Graph):
    release = collector(prod_graph)
    assert release.inputs["version"] == TracingConfig().collector_chart_version
    assert release.inputs["namespace"] == "tracing"
    values: dict[str, Any] = release.inputs["values"]
    assert values["mode"] == "deployment"
    assert values["replicaCount"] == 2
    pipeline = values["config"]["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["exporters"] == ["awsxray"]
    assert values["config"]["exporters"]["awsxray"]["region"] == "eu-west-1"
    role_arn = values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    (attachment,) = [
        r
        for r in prod_graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.inputs["policyArn"].endswith("/AWSXrayWriteOnlyAccess")
    ]
    assert role_arn.startswith("arn:aws:iam::")
    assert attachment.inputs["role"] in role_arn


def test_dev_runs_one_collector(dev_graph: Graph):
    assert collector(dev_graph).inputs["values"]["replicaCount"] == 1


@pytest.mark.parametrize("name", sorted(TRACED))
def test_each_traced_workload_exports_to_the_collector_and_may_reach_it(
    stack_graph: Graph, name: str
):
    env = env_of(stack_graph, name)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == ENDPOINT
    assert env["OTEL_SERVICE_NAME"] == TRACED[name]
    egress = by_name(stack_graph, POLICY)[name].inputs["spec"]["egress"]
    peers = [peer for rule in egress for peer in rule.get("to", [])]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tracing"}},
        "podSelector": {"matchLabels": COLLECTOR_LABELS},
    } in peers


def test_the_analytics_sink_is_not_traced(stack_graph: Graph):
    env = env_of(stack_graph, "analytics-sink")
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env


def test_kong_traces_with_w3c_propagation_to_the_collector(stack_graph: Graph, request):
    plugins = {p["name"]: p["config"] for p in kong_config(stack_graph)["plugins"]}
    otel = plugins["opentelemetry"]
    assert otel["traces_endpoint"] == f"{ENDPOINT}/v1/traces"
    assert otel["propagation"] == {"extract": ["w3c"], "inject": ["w3c"], "default_format": "w3c"}
    rate = 1.0 if "dev" in request.node.callspec.id else TracingConfig().sampling_rate
    assert otel["sampling_rate"] == rate
    (container,) = by_name(stack_graph, DEPLOYMENT)["api-gateway"].inputs["spec"]["template"][
        "spec"
    ]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KONG_TRACING_INSTRUMENTATIONS"] == "request"
    assert float(env["KONG_TRACING_SAMPLING_RATE"]) == rate
    egress = by_name(stack_graph, POLICY)["api-gateway"].inputs["spec"]["egress"]
    assert {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tracing"}},
                "podSelector": {"matchLabels": COLLECTOR_LABELS},
            }
        ],
        "ports": [{"port": 4318, "protocol": "TCP"}],
    } in egress
