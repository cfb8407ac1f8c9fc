"""The monitoring stack in the recorded graphs: the charts, one scrape object per workload,
the rules, the boards, and the HTTP autoscalers on CPU 70 % and the request queue depth;
its config section validated like every other."""

from typing import Any, get_args

import pytest
from test_config import VALID

from components.alert_rules import rule_groups
from components.monitoring import IMAGE_DIGEST_KEYS
from infra.graph import Graph
from stacks.config import ConfigError, parse_stack_config
from stacks.monitoring import HTTP_SERVICES
from stacks.monitoring_section import ChartImage, MonitoringConfig

RELEASE = "kubernetes:helm.sh/v3:Release"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
WORKLOADS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")


def charts(graph: Graph) -> dict[str, dict[str, Any]]:
    return {r.inputs["chart"]: r.inputs for r in graph.of_type(RELEASE)}


def test_prod_runs_the_pinned_prometheus_stack_and_adapter(prod_graph: Graph):
    defaults = MonitoringConfig()
    found = charts(prod_graph)
    assert found["kube-prometheus-stack"]["version"] == defaults.stack_chart_version
    assert found["prometheus-adapter"]["version"] == defaults.adapter_chart_version
    spec = found["kube-prometheus-stack"]["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["replicas"] == 2
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "gp3"


def test_dev_differs_only_by_its_smaller_sizes(dev_graph: Graph):
    spec = charts(dev_graph)["kube-prometheus-stack"]["values"]["prometheus"]["prometheusSpec"]
    assert (spec["retention"], spec["replicas"]) == ("7d", 1)


def test_every_workload_has_exactly_one_pod_monitor(stack_graph: Graph):
    workloads = {r.inputs["metadata"]["name"] for r in stack_graph if r.type in WORKLOADS}
    monitors = [r.inputs["metadata"]["name"] for r in stack_graph.of_type(POD_MONITOR)]
    assert sorted(monitors) == sorted(set(monitors))
    # ClickHouse's servers run one StatefulSet per shard, all scraped by one monitor.
    assert {w if not w.startswith("clickhouse-shard") else "clickhouse" for w in workloads} == set(
        monitors
    )


def test_the_rules_and_the_boards_ship_with_the_stack(prod_graph: Graph):
    assert prod_graph.one(RULE).inputs["spec"]["groups"] == rule_groups()
    boards = [
        r
        for r in prod_graph.of_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert len(boards) == 4


def test_http_services_scale_on_cpu_70_and_active_requests(prod_graph: Graph):
    scalers = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in prod_graph.of_type(HPA)}
    for service in HTTP_SERVICES:
        cpu, queue = scalers[service]["metrics"]
        assert cpu["resource"]["name"] == "cpu"
        assert cpu["resource"]["target"]["averageUtilization"] == 70
        assert queue["type"] == "Pods"
        assert queue["pods"]["metric"]["name"] == "http_server_active_requests"
        assert queue["pods"]["target"] == {"type": "AverageValue", "averageValue": "10"}


def test_every_chart_image_the_config_names_can_be_pinned():
    assert set(get_args(ChartImage)) == set(IMAGE_DIGEST_KEYS)


def issues(monitoring: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({**VALID, "eduscale:monitoring": monitoring})
    return [str(issue) for issue in caught.value.issues]


def test_a_digest_must_be_sha256_and_name_a_known_image():
    (bad,) = issues({"imageDigests": {"grafana": "latest"}})
    assert bad.startswith("eduscale:monitoring.imageDigests.grafana = latest:")
    (unknown,) = issues({"imageDigests": {"grafna": "sha256:" + "a" * 64}})
    assert "eduscale:monitoring.imageDigests.grafna" in unknown


def test_retention_and_sizes_are_bounded():
    found = issues({"retentionDays": 0, "storageGb": 5, "replicaz": 2})
    assert len(found) == 3
    assert any(i.startswith("eduscale:monitoring.replicaz") and "unknown field" in i for i in found)
