"""`Monitoring` used directly, as another team would: the charts, the queue-depth metric for
the HPAs, one scrape object per target, the rules and the boards; bad args refused early."""

from typing import Any

import pytest
import yaml
from conftest import PROJECT_DIR, run_program

from components.alert_rules import rule_groups
from components.monitoring import IMAGE_DIGEST_KEYS, Monitoring, MonitoringArgs
from infra.graph import Graph, RecordedResource

RELEASE = "kubernetes:helm.sh/v3:Release"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DIGEST = "sha256:" + "c" * 64


def args(**changes: Any) -> MonitoringArgs:
    base: MonitoringArgs = {
        "namespace": "observability",
        "stack_chart_version": "88.5.3",
        "adapter_chart_version": "5.3.0",
        "retention_days": 15,
        "storage_gb": 200,
        "storage_class": "gp3",
        "replicas": 2,
        "cpu": "1",
        "memory": "4Gi",
        "grafana_storage_gb": 10,
        "scrape_targets": [
            {
                "name": "api",
                "namespace": "team",
                "labels": {"app": "api"},
                "port": "http",
                "http_service": True,
            },
            {
                "name": "search",
                "namespace": "team",
                "labels": {"app": "search"},
                "port": "rest",
                "path": "/prometheus",
                "bearer_token": "s3cret-token",
            },
        ],
    }
    base.update(changes)  # type: ignore[typeddict-item]
    return base


def record(**changes: Any) -> Graph:
    return run_program(lambda: Monitoring("obs", args(**changes)))


def release(graph: Graph, chart: str) -> RecordedResource:
    return next(r for r in graph.of_type(RELEASE) if r.inputs["chart"] == chart)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return record(image_digests={"prometheus": DIGEST, "grafana": DIGEST, "adapter": DIGEST})


def test_the_prometheus_stack_is_pinned_sized_and_kept_on_encrypted_volumes(graph: Graph):
    stack = release(graph, "kube-prometheus-stack")
    assert stack.inputs["version"] == "88.5.3"
    assert stack.inputs["namespace"] == "observability"
    spec = stack.inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    assert spec["replicas"] == 2
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == "200Gi"
    assert spec["retentionSize"] == "180GB"  # a full disk would stop ingestion
    assert spec["resources"]["limits"]["memory"] == "4Gi"
    # Our PodMonitors and rules are selected, not only the chart's own.
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert spec["ruleSelectorNilUsesHelmValues"] is False


def test_grafana_loads_the_dashboards_labelled_for_its_sidecar(graph: Graph):
    grafana = release(graph, "kube-prometheus-stack").inputs["values"]["grafana"]
    sidecar = grafana["sidecar"]["dashboards"]
    assert grafana["persistence"]["storageClassName"] == "gp3"
    boards = [r for r in graph.of_type(CONFIG_MAP) if "dashboard" in r.name]
    assert len(boards) == 4
    for board in boards:
        assert board.inputs["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
    golden = next(b for b in boards if b.inputs["metadata"]["name"] == "eduscale-golden-signals")
    text = next(iter(golden.inputs["data"].values()))
    assert 'job=\\"api\\"' in text  # the HTTP service has its row
    assert 'job=\\"search\\"' not in text  # the other target serves no HTTP metrics


def test_image_digests_pin_the_chart_images(graph: Graph):
    values = release(graph, "kube-prometheus-stack").inputs["values"]
    assert values["prometheus"]["prometheusSpec"]["image"]["sha"] == DIGEST
    assert values["grafana"]["image"]["sha"] == DIGEST
    adapter = release(graph, "prometheus-adapter").inputs["values"]
    assert adapter["image"]["tag"].endswith(f"@{DIGEST}")
    unpinned = release(record(), "kube-prometheus-stack").inputs["values"]
    assert "image" not in unpinned["prometheus"]["prometheusSpec"]


def test_the_adapter_serves_only_the_active_requests_gauge_per_pod(graph: Graph):
    adapter = release(graph, "prometheus-adapter")
    assert adapter.inputs["version"] == "5.3.0"
    values = adapter.inputs["values"]
    assert values["prometheus"]["url"] == "http://kube-prometheus-prometheus.observability.svc"
    assert values["rules"]["default"] is False
    (rule,) = values["rules"]["custom"]
    assert rule["name"]["as"] == "http_server_active_requests"
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert rule["seriesQuery"].startswith("http_server_active_requests{")


def test_each_target_gets_a_pod_monitor_in_its_namespace(graph: Graph):
    monitors = {r.inputs["metadata"]["name"]: r.inputs for r in graph.of_type(POD_MONITOR)}
    assert set(monitors) == {"api", "search"}
    api = monitors["api"]
    assert api["metadata"]["namespace"] == "team"
    assert api["spec"]["selector"] == {"matchLabels": {"app": "api"}}
    assert api["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    assert api["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"
    assert api["spec"]["jobLabel"] == "app.kubernetes.io/name"
    search = monitors["search"]["spec"]["podMetricsEndpoints"][0]
    assert search["path"] == "/prometheus"
    assert search["authorization"]["type"] == "Bearer"
    assert search["authorization"]["credentials"]["key"] == "token"
    (secret,) = graph.of_type(SECRET)
    assert secret.inputs["metadata"]["namespace"] == "team"
    assert "s3cret-token" not in str(secret.inputs)  # recorded as a Pulumi secret


def test_prometheus_alone_may_reach_each_metrics_port(graph: Graph):
    policies = {r.inputs["metadata"]["name"]: r.inputs for r in graph.of_type(NETPOL)}
    search = policies["search-scrape"]["spec"]
    assert search["podSelector"] == {"matchLabels": {"app": "search"}}
    assert search["policyTypes"] == ["Ingress"]
    (rule,) = search["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "observability"
    }
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert rule["ports"] == [{"port": "rest", "protocol": "TCP"}]


def test_the_prometheus_rule_holds_the_same_groups_as_the_rule_file(graph: Graph):
    rule = graph.one(RULE)
    assert rule.inputs["spec"]["groups"] == rule_groups()
    text = (PROJECT_DIR / "observability" / "rules.yml").read_text()
    assert yaml.safe_load(text)["groups"] == rule.inputs["spec"]["groups"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"retention_days": 0}, "retention_days must be at least 1"),
        ({"image_digests": {"promethues": DIGEST}}, "unknown key\\(s\\) promethues"),
        ({"image_digests": {"grafana": "latest"}}, "image_digests.grafana must be sha256"),
        (
            {"scrape_targets": [args()["scrape_targets"][0]] * 2},
            "scrape_targets name api twice",
        ),
    ],
)
def test_bad_args_are_refused_before_anything_is_declared(changes: dict[str, Any], message: str):
    with pytest.raises(Exception, match=message):
        record(**changes)


def test_every_chart_image_key_can_be_pinned():
    values = release(
        record(image_digests=dict.fromkeys(IMAGE_DIGEST_KEYS, DIGEST)), "kube-prometheus-stack"
    ).inputs["values"]
    assert values["prometheus-node-exporter"]["image"]["digest"] == DIGEST
    assert values["prometheusOperator"]["prometheusConfigReloader"]["image"]["sha"] == DIGEST
