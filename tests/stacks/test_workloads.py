"""Every service and worker on the cluster, as both stacks declare them."""

import re
from typing import Any

import pytest
from conftest import PROJECT_DIR

from contracts.secret_files import FILE_SUFFIX, SECRETS_DIR
from contracts.topics import ANALYTICS_EVENTS, DOCUMENT_UPLOADED, GENERATION_REQUESTED
from infra.graph import Graph, RecordedResource
from infra.stack_files import load_stack
from stacks.config import StackConfig, parse_stack_config

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SERVICES = ("auth", "course", "ai-orchestrator")
WORKERS = ("generation-worker", "indexer-worker", "analytics-sink")
WORKER_COMMANDS = {
    "generation-worker": "generation",
    "indexer-worker": "indexer",
    "analytics-sink": "analytics",
}


def config_of(stack: str) -> StackConfig:
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config)


def by_name(graph: Graph, type_token: str) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in graph.of_type(type_token)}


def pod(graph: Graph, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = by_name(graph, DEPLOYMENT)[name].inputs["spec"]["template"]["spec"]
    return spec


def test_one_deployment_per_service_and_worker(stack_graph: Graph):
    assert set(by_name(stack_graph, DEPLOYMENT)) == {*SERVICES, *WORKERS, "api-gateway"}
    assert {c.name for c in stack_graph.of_type("eduscale:index:Microservice")} == set(SERVICES)
    assert {c.name for c in stack_graph.of_type("eduscale:index:Worker")} == set(WORKERS)


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_an_hpa_on_cpu_with_its_configured_bounds(stack_graph: Graph, name: str):
    settings = getattr(config_of(stack_graph.stack).services, name.replace("-", "_"))
    spec = by_name(stack_graph, HPA)[name].inputs["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (
        settings.min_replicas,
        settings.max_replicas,
    )
    (cpu,) = [m for m in spec["metrics"] if m["type"] == "Resource"]
    assert cpu["resource"]["name"] == "cpu"
    assert cpu["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_prod_services_keep_at_least_three_pods(prod_graph: Graph):
    for hpa in prod_graph.of_type(HPA):
        assert hpa.inputs["spec"]["minReplicas"] >= 3
        assert hpa.inputs["spec"]["maxReplicas"] > hpa.inputs["spec"]["minReplicas"]


def test_no_deployment_declares_replicas_its_autoscaler_owns(stack_graph: Graph):
    for deployment in stack_graph.of_type(DEPLOYMENT):
        assert "replicas" not in deployment.inputs["spec"], deployment.name


def test_rollouts_never_go_below_the_disruption_budget(stack_graph: Graph):
    budgets = by_name(stack_graph, "kubernetes:policy/v1:PodDisruptionBudget")
    for name, deployment in by_name(stack_graph, DEPLOYMENT).items():
        assert deployment.inputs["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        budget = budgets[name].inputs["spec"]
        assert budget["maxUnavailable"] == 1
        assert budget["selector"] == deployment.inputs["spec"]["selector"]


@pytest.mark.parametrize("name", SERVICES + WORKERS)
def test_probes_resources_and_the_restricted_security_context(stack_graph: Graph, name: str):
    spec = pod(stack_graph, name)
    (container,) = spec["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    zones = [
        c
        for c in spec["topologySpreadConstraints"]
        if c["topologyKey"] == "topology.kubernetes.io/zone"
    ]
    assert [z["whenUnsatisfiable"] for z in zones] == ["DoNotSchedule"]


@pytest.mark.parametrize("name", SERVICES + WORKERS)
def test_images_are_pinned_and_config_comes_from_a_configmap_and_a_secret(
    stack_graph: Graph, name: str
):
    (container,) = pod(stack_graph, name)["containers"]
    # One image runs each workload by name: the services' image, as pushed, by digest.
    assert container["image"] == stack_graph.outputs["servicesImage"]
    assert re.fullmatch(
        r"[^@]+/eduscale-[a-z]+-services-image:v[^@]+@sha256:[0-9a-f]{64}", container["image"]
    )
    assert container["args"] == (
        ["serve", name] if name in SERVICES else ["worker", WORKER_COMMANDS[name]]
    )
    sources = [next(iter(source)) for source in container["envFrom"]]
    # The analytics sink holds no secret of its own (its ClickHouse password is a
    # secretKeyRef to the cluster's Secret), so it gets no Secret to mount.
    assert (
        sources == ["configMapRef"] if name == "analytics-sink" else ["configMapRef", "secretRef"]
    )


def test_secrets_reach_pods_only_through_kubernetes_secrets(stack_graph: Graph):
    for secret in stack_graph.of_type("kubernetes:core/v1:Secret"):
        values = secret.inputs["stringData"].values()
        assert set(values) == {"[secret]"}
    for config_map in stack_graph.of_type("kubernetes:core/v1:ConfigMap"):
        for key, value in config_map.inputs.get("data", {}).items():
            if key.endswith(FILE_SUFFIX):  # where the secret's file is, not the secret
                assert value.startswith(f"{SECRETS_DIR}/"), key
                continue
            assert "PASSWORD" not in key, key
            assert "API_KEY" not in key, key


def test_course_reads_from_the_replicas_and_auth_does_not_know_them(stack_graph: Graph):
    maps = {c.inputs["metadata"]["labels"]["app.kubernetes.io/name"]: c.inputs["data"]
            for c in stack_graph.of_type("kubernetes:core/v1:ConfigMap")
            if "DATABASE_URL" in c.inputs.get("data", {})}  # fmt: skip
    reader = stack_graph.outputs["databaseReaderEndpoint"]
    assert f"@{reader}:5432/" in maps["course"]["DATABASE_REPLICA_URLS"]
    assert "DATABASE_REPLICA_URLS" not in maps["auth"]
    writer = stack_graph.outputs["databaseWriterEndpoint"]
    for name in ("auth", "course"):
        assert maps[name]["DATABASE_URL"].startswith(f"postgresql://eduscale_app@{writer}:5432/")
        assert "sslmode=verify-full" in maps[name]["DATABASE_URL"]


@pytest.mark.parametrize("name", SERVICES)
def test_services_admit_traffic_only_from_the_gateway(stack_graph: Graph, name: str):
    policy = by_name(stack_graph, "kubernetes:networking.k8s.io/v1:NetworkPolicy")[name].inputs[
        "spec"
    ]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "gateway"}
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]


@pytest.mark.parametrize("name", WORKERS)
def test_workers_admit_no_traffic_and_have_no_service(stack_graph: Graph, name: str):
    policy = by_name(stack_graph, "kubernetes:networking.k8s.io/v1:NetworkPolicy")[name].inputs[
        "spec"
    ]
    assert policy["ingress"] == []
    assert name not in by_name(stack_graph, "kubernetes:core/v1:Service")
    assert name not in by_name(stack_graph, HPA)


@pytest.mark.parametrize(("name", "topic"), [("generation-worker", GENERATION_REQUESTED.name),
                                             ("indexer-worker", DOCUMENT_UPLOADED.name),
                                             ("analytics-sink", ANALYTICS_EVENTS.name)])  # fmt: skip
def test_workers_scale_on_the_lag_of_their_topic(stack_graph: Graph, name: str, topic: str):
    settings = getattr(config_of(stack_graph.stack).services, name.replace("-", "_"))
    scaler = by_name(stack_graph, SCALED_OBJECT)[name].inputs["spec"]
    assert scaler["scaleTargetRef"] == {"name": name}
    assert (scaler["minReplicaCount"], scaler["maxReplicaCount"]) == (
        settings.min_replicas, settings.max_replicas
    )  # fmt: skip
    (kafka,) = [t for t in scaler["triggers"] if t["type"] == "kafka"]
    assert kafka["metadata"]["topic"] == topic
    assert kafka["metadata"]["consumerGroup"] == name
    assert kafka["metadata"]["lagThreshold"] == str(settings.lag_threshold)
    assert kafka["metadata"]["bootstrapServers"] == stack_graph.outputs["kafkaBootstrapBrokers"]
    assert (
        pod(stack_graph, name)["terminationGracePeriodSeconds"]
        == settings.termination_grace_seconds
    )


def test_prod_workers_never_outnumber_their_partitions(prod_graph: Graph):
    partitions = prod_graph.outputs["kafkaTopics"]
    for scaler in prod_graph.of_type(SCALED_OBJECT):
        (kafka,) = [t for t in scaler.inputs["spec"]["triggers"] if t["type"] == "kafka"]
        assert scaler.inputs["spec"]["maxReplicaCount"] <= partitions[kafka["metadata"]["topic"]]


def test_namespaces_enforce_the_restricted_pod_security_standard(stack_graph: Graph):
    namespaces = stack_graph.of_type("kubernetes:core/v1:Namespace")
    assert {n.inputs["metadata"]["name"] for n in namespaces} == {"eduscale", "gateway"}
    for namespace in namespaces:
        labels = namespace.inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
