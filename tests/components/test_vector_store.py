"""Qdrant on the cluster and the collection layout it exports."""

import json

import pytest
from conftest import PROJECT_DIR, run_program

from components.vector_store import VectorStore
from contracts.vector_layout import CollectionLayout, Distance, layout_from_json, layout_to_json
from infra.graph import Graph
from infra.stack_files import load_stack
from stacks.config import parse_stack_config

STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"


def qdrant(graph: Graph):
    (statefulset,) = [
        s for s in graph.of_type(STATEFUL_SET) if s.inputs["metadata"]["name"] == "qdrant"
    ]
    return statefulset


def settings(stack: str):
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config).vector_store


def test_qdrant_runs_the_configured_replicas_and_prod_has_three(stack_graph: Graph):
    spec = qdrant(stack_graph).inputs["spec"]
    assert spec["replicas"] == settings(stack_graph.stack).replicas
    assert spec["podManagementPolicy"] == "Parallel"
    if stack_graph.stack == "prod":
        assert spec["replicas"] >= 3


def test_qdrant_is_never_autoscaled(stack_graph: Graph):
    targets = [h.inputs["spec"]["scaleTargetRef"]["name"]
               for h in stack_graph.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")]  # fmt: skip
    assert "qdrant" not in targets


def test_nodes_never_share_a_host_and_spread_over_zones(stack_graph: Graph):
    pod = qdrant(stack_graph).inputs["spec"]["template"]["spec"]
    (rule,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert rule["topologyKey"] == "kubernetes.io/hostname"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"


def test_each_node_keeps_its_data_on_its_own_gp3_volume(stack_graph: Graph):
    (claim,) = qdrant(stack_graph).inputs["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "gp3"
    assert (
        claim["spec"]["resources"]["requests"]["storage"]
        == f"{settings(stack_graph.stack).storage_gb}Gi"
    )


def test_the_api_key_comes_from_a_secret_and_the_pod_is_restricted(stack_graph: Graph):
    (container,) = qdrant(stack_graph).inputs["spec"]["template"]["spec"]["containers"]
    (env,) = container["env"]
    assert env["name"] == "QDRANT__SERVICE__API_KEY"
    assert "secretKeyRef" in env["valueFrom"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert stack_graph.outputs["vectorStoreUrl"].endswith(".svc.cluster.local:6333")


def test_peers_bootstrap_through_the_headless_service(stack_graph: Graph):
    services = {
        s.inputs["metadata"]["name"]: s.inputs["spec"]
        for s in stack_graph.of_type("kubernetes:core/v1:Service")
    }
    assert services["qdrant-headless"]["clusterIP"] == "None"
    assert {p["port"] for p in services["qdrant-headless"]["ports"]} == {6333, 6334, 6335}
    (container,) = qdrant(stack_graph).inputs["spec"]["template"]["spec"]["containers"]
    script = container["command"][-1]
    assert '--bootstrap "http://qdrant-0.qdrant-headless.eduscale.svc.cluster.local:6335"' in script
    config_map = next(
        c
        for c in stack_graph.of_type("kubernetes:core/v1:ConfigMap")
        if "production.yaml" in c.inputs["data"]
    )
    config = json.loads(config_map.inputs["data"]["production.yaml"])
    assert config["cluster"]["enabled"] is True
    assert config["service"]["enable_cors"] is False


def test_a_budget_lets_only_one_node_go_at_a_time(stack_graph: Graph):
    budgets = {
        b.inputs["metadata"]["name"]: b
        for b in stack_graph.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    }
    assert budgets["qdrant"].inputs["spec"]["maxUnavailable"] == 1


def test_only_the_ai_tier_may_call_qdrant(stack_graph: Graph):
    policy = next(p for p in stack_graph.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                  if p.inputs["metadata"]["name"] == "qdrant")  # fmt: skip
    clients = policy.inputs["spec"]["ingress"][0]["from"]
    names = {c["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for c in clients}
    assert names == {"ai-orchestrator", "generation-worker", "indexer-worker"}


def test_the_collection_layout_is_exported_from_config(stack_graph: Graph):
    wanted = settings(stack_graph.stack)
    layout = stack_graph.outputs["vectorStoreCollection"]
    assert layout["shard_number"] == wanted.shards
    assert layout["replication_factor"] == wanted.replication_factor
    assert layout["vector_size"] == wanted.vector_size
    assert (layout["hnsw_m"], layout["hnsw_ef_construct"]) == (
        wanted.hnsw_m,
        wanted.hnsw_ef_construct,
    )
    assert layout["partition_key"] == "course_id"
    if stack_graph.stack == "prod":
        assert layout["replication_factor"] >= 2


def test_the_ai_tier_receives_the_same_layout(stack_graph: Graph):
    config_maps = [c for c in stack_graph.of_type("kubernetes:core/v1:ConfigMap")
                   if "QDRANT_COLLECTION_LAYOUT" in c.inputs.get("data", {})]  # fmt: skip
    names = {c.inputs["metadata"]["labels"]["app.kubernetes.io/name"] for c in config_maps}
    # The indexer creates the collection; search and grounding embed at its vector size.
    assert names == {"indexer-worker", "ai-orchestrator", "generation-worker"}
    for config_map in config_maps:
        assert (
            layout_from_json(config_map.inputs["data"]["QDRANT_COLLECTION_LAYOUT"])
            == stack_graph.outputs["vectorStoreCollection"]
        )


LAYOUT: CollectionLayout = {
    "name": "c", "vector_size": 8, "distance": Distance.COSINE, "shard_number": 2,
    "replication_factor": 3, "hnsw_m": 16, "hnsw_ef_construct": 100, "hnsw_payload_m": 16,
    "partition_key": "course_id",
}  # fmt: skip


def test_a_replication_factor_above_the_replicas_is_refused():
    with pytest.raises(ValueError, match=r"replication_factor \(3\) cannot exceed replicas \(2\)"):
        run_program(lambda: VectorStore("q", {
            "namespace": "ns", "image": "qdrant/qdrant:v1.15.0-unprivileged", "replicas": 2,
            "storage_gb": 10, "cpu": "1", "memory": "1Gi", "api_key": "k", "collection": LAYOUT,
            "allowed_clients": [],
        }))  # fmt: skip


def test_a_layout_with_missing_fields_is_refused():
    text = layout_to_json(LAYOUT)
    assert layout_from_json(text) == LAYOUT
    broken = json.loads(text)
    del broken["shard_number"]
    with pytest.raises(ValueError, match="collection layout needs exactly"):
        layout_from_json(json.dumps(broken))
