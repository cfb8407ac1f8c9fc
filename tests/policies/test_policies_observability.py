"""Observability rules: a scraped workload and a queue-aware HTTP autoscaler pass; each way of
missing them fails (no monitor, wrong namespace, wrong port, wrong selector; CPU only), and
the prod graph broken through the CLI names the rule."""

from typing import Any

import pytest
from policy_harness import Mutation, MutationCheck, policy_resource, resources_of, stack_violations
from pulumi_policy import PolicyResource

from infra.graph import Graph
from infra.policy_check import check_graph
from policies import observability

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
KEDA = "kubernetes:keda.sh/v1alpha1:ScaledObject"
LABELS = {"app.kubernetes.io/name": "course", "app.kubernetes.io/component": "service"}
URN = "urn:pulumi:test::eduscale::{}::{}"


def workload(
    kind: str = DEPLOYMENT, labels: dict[str, str] | None = None, namespace: str = "eduscale"
) -> PolicyResource:
    props = {
        "metadata": {"name": "course", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels or LABELS},
            "template": {
                "metadata": {"labels": labels or LABELS},
                "spec": {
                    "containers": [
                        {"name": "course", "ports": [{"name": "http", "containerPort": 8000}]}
                    ]
                },
            },
        },
    }
    return policy_resource(kind, props, URN.format(kind, "course"))


def pod_monitor(
    *,
    namespace: str = "eduscale",
    selector: dict[str, str] | None = None,
    port: str = "http",
    namespace_selector: dict[str, Any] | None = None,
) -> PolicyResource:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector or {"app.kubernetes.io/name": "course"}},
        "podMetricsEndpoints": [{"port": port, "path": "/metrics"}],
    }
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    props = {"metadata": {"name": "course", "namespace": namespace}, "spec": spec}
    return policy_resource(POD_MONITOR, props, URN.format(POD_MONITOR, "course-monitor"))


def scraped(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    return stack_violations("k8s-workload-scraped", resources)


def test_a_pod_monitor_on_a_named_port_scrapes_the_workload():
    assert scraped([workload(), pod_monitor()]) == []
    assert scraped([workload(STATEFUL_SET), pod_monitor()]) == []


def test_a_workload_without_a_monitor_is_reported_for_each_kind():
    for kind in (DEPLOYMENT, STATEFUL_SET):
        ((message, urn),) = scraped([workload(kind)])
        assert "no PodMonitor or ServiceMonitor selects its pods" in message
        assert urn == URN.format(kind, "course")


def test_a_monitor_in_another_namespace_does_not_count_unless_it_names_the_namespace():
    elsewhere = pod_monitor(namespace="monitoring")
    assert len(scraped([workload(), elsewhere])) == 1
    named = pod_monitor(namespace="monitoring", namespace_selector={"matchNames": ["eduscale"]})
    assert scraped([workload(), named]) == []
    anywhere = pod_monitor(namespace="monitoring", namespace_selector={"any": True})
    assert scraped([workload(), anywhere]) == []
    wrong = pod_monitor(namespace="monitoring", namespace_selector={"matchNames": ["gateway"]})
    assert len(scraped([workload(), wrong])) == 1


def test_a_monitor_whose_selector_misses_the_pods_does_not_count():
    other = pod_monitor(selector={"app.kubernetes.io/name": "auth"})
    assert len(scraped([workload(), other])) == 1


def test_a_monitor_on_a_port_the_pods_do_not_name_is_reported_with_the_port():
    ((message, _),) = scraped([workload(), pod_monitor(port="metrics")])
    assert "PodMonitor course selects its pods but scrapes port(s) metrics" in message


def test_a_service_monitor_through_a_service_that_selects_the_pods_counts():
    service = policy_resource(
        SERVICE,
        {
            "metadata": {"name": "course", "namespace": "eduscale", "labels": {"scrape": "yes"}},
            "spec": {"selector": LABELS, "ports": [{"name": "web", "port": 8000}]},
        },
        URN.format(SERVICE, "course"),
    )

    def monitor(port: str) -> PolicyResource:
        props = {
            "metadata": {"name": "course", "namespace": "eduscale"},
            "spec": {"selector": {"matchLabels": {"scrape": "yes"}}, "endpoints": [{"port": port}]},
        }
        return policy_resource(SERVICE_MONITOR, props, URN.format(SERVICE_MONITOR, "m"))

    assert scraped([workload(), service, monitor("web")]) == []
    assert len(scraped([workload(), service, monitor("admin")])) == 1
    assert len(scraped([workload(), monitor("web")])) == 1  # no Service in front of the pods


# -- queue depth --------------------------------------------------------------------------------

CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
QUEUE: dict[str, Any] = {
    "type": "Pods",
    "pods": {
        "metric": {"name": "http_server_active_requests"},
        "target": {"type": "AverageValue", "averageValue": "10"},
    },
}


def hpa(*metrics: dict[str, Any], target: str = "course") -> PolicyResource:
    props = {
        "metadata": {"name": target, "namespace": "eduscale"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 3,
            "maxReplicas": 10,
            "metrics": list(metrics),
        },
    }
    return policy_resource(HPA, props, URN.format(HPA, f"{target}-hpa"))


def queue_depth(
    resources: list[PolicyResource], config: dict[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    return stack_violations("k8s-http-autoscaler-queue-depth", resources, config)


def test_an_http_autoscaler_with_cpu_and_queue_depth_passes():
    assert queue_depth([workload(), hpa(CPU, QUEUE)]) == []


def test_an_http_autoscaler_on_cpu_only_is_reported():
    ((message, urn),) = queue_depth([workload(), hpa(CPU)])
    assert "autoscaler course of HTTP service course does not scale on its request queue" in (
        message
    )
    assert urn == URN.format(HPA, "course-hpa")


def test_a_pods_metric_of_another_name_does_not_count_unless_configured():
    other = {**QUEUE, "pods": {**QUEUE["pods"], "metric": {"name": "kong_connections"}}}
    assert len(queue_depth([workload(), hpa(CPU, other)])) == 1
    assert queue_depth([workload(), hpa(CPU, other)], {"metrics": ["kong_connections"]}) == []


def test_a_worker_or_gateway_autoscaler_on_cpu_only_is_not_an_http_service():
    worker = workload(labels={"app.kubernetes.io/name": "course", "app.kubernetes.io/component": "worker"})  # fmt: skip
    assert queue_depth([worker, hpa(CPU)]) == []


def test_an_autoscaler_of_another_deployment_is_not_matched():
    assert queue_depth([workload(), hpa(CPU, target="auth")]) == []


def test_a_keda_prometheus_trigger_reading_the_metric_counts():
    def scaled(query: str) -> PolicyResource:
        props = {
            "metadata": {"name": "course", "namespace": "eduscale"},
            "spec": {
                "scaleTargetRef": {"name": "course"},
                "triggers": [{"type": "prometheus", "metadata": {"query": query}}],
            },
        }
        return policy_resource(KEDA, props, URN.format(KEDA, "course-scaler"))

    good = 'sum(http_server_active_requests{job="course"})'
    assert queue_depth([workload(), scaled(good)]) == []
    assert len(queue_depth([workload(), scaled("sum(up)")])) == 1


# -- the recorded stacks, through the CLI ----------------------------------------------------

OBSERVABILITY_RULES = {p.name for p in observability.POLICIES}


def test_both_stacks_pass_every_observability_rule(dev_graph: Graph, prod_graph: Graph):
    assert check_graph(dev_graph, observability.POLICIES) == []
    assert check_graph(prod_graph, observability.POLICIES) == []


def drop_qdrant_monitor(document: dict[str, Any]) -> None:
    document["resources"] = [
        r
        for r in document["resources"]
        if not (r["type"] == POD_MONITOR and r["inputs"]["metadata"]["name"] == "qdrant")
    ]


def worker_monitor_wrong_port(document: dict[str, Any]) -> None:
    monitor = next(
        r
        for r in resources_of(document, POD_MONITOR)
        if r["inputs"]["metadata"]["name"] == "indexer-worker"
    )
    monitor["inputs"]["spec"]["podMetricsEndpoints"][0]["port"] = "metrics"


def auth_on_cpu_only(document: dict[str, Any]) -> None:
    auth = next(r for r in resources_of(document, HPA) if r["inputs"]["metadata"]["name"] == "auth")
    auth["inputs"]["spec"]["metrics"] = auth["inputs"]["spec"]["metrics"][:1]


MUTATIONS: list[Mutation] = [
    ("Qdrant without a PodMonitor", drop_qdrant_monitor, "k8s-workload-scraped"),
    ("indexer scraped on a port it lacks", worker_monitor_wrong_port, "k8s-workload-scraped"),
    ("auth HPA on CPU only", auth_on_cpu_only, "k8s-http-autoscaler-queue-depth"),
]


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_prod_graph_fails_naming_the_rule(
    case: Mutation, prod_graph_broken_by: MutationCheck
) -> None:
    prod_graph_broken_by(case, within=OBSERVABILITY_RULES)
