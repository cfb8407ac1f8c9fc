"""The compute components used directly, as another team would; bad args refused early."""

from typing import Any

import pytest
from conftest import run_program

from components.cluster import Cluster, ClusterArgs
from components.microservice import Microservice, MicroserviceArgs
from components.worker import Worker, WorkerArgs

RESOURCES = {
    "cpu_request": "100m",
    "cpu_limit": "1",
    "memory_request": "128Mi",
    "memory_limit": "256Mi",
}


def microservice(**changes: Any) -> Microservice:
    args: MicroserviceArgs = {
        "namespace": "team", "image": "registry.example/api:1.2.3@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "port": 8080,
        "min_replicas": 2, "max_replicas": 4, "resources": RESOURCES,  # type: ignore[typeddict-item]
        "ingress_from": [{"namespace": "edge", "labels": {"app": "proxy"}}],
    }  # fmt: skip
    args.update(changes)  # type: ignore[typeddict-item]
    return Microservice("api", args)


def worker(**changes: Any) -> Worker:
    args: WorkerArgs = {
        "namespace": "team", "image": "registry.example/jobs@sha256:" + "a" * 64,
        "topic": "jobs", "consumer_group": "jobs", "bootstrap_servers": "b-1:9098",
        "aws_region": "eu-west-1", "min_replicas": 0, "max_replicas": 6,
        "resources": RESOURCES,  # type: ignore[typeddict-item]
    }  # fmt: skip
    args.update(changes)  # type: ignore[typeddict-item]
    return Worker("jobs", args)


def test_a_foreign_service_gets_its_hpa_and_a_queue_depth_metric_when_asked():
    graph = run_program(
        lambda: microservice(queue_depth_metric="inflight_requests", queue_depth_target=20)
    )
    metrics = graph.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"][
        "metrics"
    ]
    assert [m["type"] for m in metrics] == ["Resource", "Pods"]
    assert metrics[1]["pods"]["target"] == {"type": "AverageValue", "averageValue": "20"}


def test_a_worker_pinned_by_digest_may_scale_to_zero():
    graph = run_program(worker)
    scaler = graph.one("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert scaler.inputs["spec"]["minReplicaCount"] == 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: microservice(min_replicas=5, max_replicas=2), r"need 1 <= min_replicas <= max_replicas, got 5 and 2"),
        (lambda: microservice(image="registry.example/api:latest"), "must be pinned"),
        (lambda: microservice(image="registry.example/api"), "must be pinned"),
        (lambda: worker(max_replicas=0), "max_replicas >= 1"),
        (lambda: worker(image="jobs"), "must be pinned"),
        (lambda: microservice(image="registry.example/api:1.2.3"), "must be pinned by digest"),
    ],
)  # fmt: skip
def test_workloads_refuse_unpinned_images_and_impossible_bounds(build: Any, message: str):
    with pytest.raises(ValueError, match=message):
        run_program(build)


def cluster(**changes: Any) -> Cluster:
    args: ClusterArgs = {
        "vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], "kubernetes_version": "1.33",
        "node_groups": [{"name": "system", "instance_types": ["m7g.large"], "min_size": 2,
                         "desired_size": 2, "max_size": 3, "system": True}],
        "addon_versions": {"metrics_server": "1", "cluster_autoscaler": "1",
                           "aws_load_balancer_controller": "1", "keda": "1", "ebs_csi_driver": "v1"},
    }  # fmt: skip
    args.update(changes)  # type: ignore[typeddict-item]
    return Cluster("eks", args)


def test_a_public_endpoint_answers_only_the_named_ranges():
    graph = run_program(
        lambda: cluster(endpoint_public_access=True, public_access_cidrs=["198.51.100.0/24"])
    )
    vpc = graph.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.0/24"]


def test_named_admins_get_access_entries():
    arn = "arn:aws:iam::123456789012:role/platform-admins"
    graph = run_program(lambda: cluster(admin_principal_arns=[arn]))
    entries = {
        e.inputs["principalArn"]: e.inputs["type"]
        for e in graph.of_type("aws:eks/accessEntry:AccessEntry")
    }
    assert entries[arn] == "STANDARD"
    (association,) = graph.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert association.inputs["policyArn"].endswith("AmazonEKSClusterAdminPolicy")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint_public_access": True}, "needs public_access_cidrs"),
        ({"endpoint_public_access": True, "public_access_cidrs": ["0.0.0.0/0"]}, "whole internet"),
        ({"node_groups": [{"name": "apps", "instance_types": ["c7g.large"], "min_size": 1,
                           "desired_size": 1, "max_size": 2}]}, "on-demand group with system=True"),
        ({"node_groups": [{"name": "system", "instance_types": ["m7g.large"], "min_size": 3,
                           "desired_size": 1, "max_size": 2, "system": True}]}, "min_size <= desired_size"),
    ],
)  # fmt: skip
def test_the_cluster_refuses_insecure_or_impossible_args(changes: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        run_program(lambda: cluster(**changes))
