"""One stateless HTTP service on the cluster: Deployment, Service and HorizontalPodAutoscaler.

The HPA owns the replica count, so the Deployment declares none: with `spec.replicas` set,
every `pulumi up` would snap a scaled-out service back to that number mid-traffic. The
rolling update adds pods before removing any (`maxUnavailable: 0`), so a deploy never
goes below the PodDisruptionBudget. Pods, config, identity and network fences come from
`components.workload`.
"""

from typing import NotRequired

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.autoscaling.v2 import MetricSpecArgsDict

from components.type_tokens import MICROSERVICE
from components.workload import (
    Fences,
    PeerArgs,
    WorkloadArgs,
    cpu_autoscaler,
    labels_for,
    workload_parts,
)

__all__ = ["Microservice", "MicroserviceArgs"]


class MicroserviceArgs(WorkloadArgs):
    """Inputs of `Microservice`: a workload, plus how it is reached and scaled."""

    port: int
    """Port the service listens on; it serves `/health/live` and `/health/ready` there."""
    ingress_from: list[PeerArgs]
    """The only pods that may connect (the API gateway)."""
    queue_depth_metric: NotRequired[str]
    """Optional per-pod metric of queued requests, as a second HPA metric."""
    queue_depth_target: NotRequired[int]
    """Average value of `queue_depth_metric` per pod to aim for (default 10)."""


class Microservice(pulumi.ComponentResource):
    """A stateless HTTP service with an HPA, a PDB, probes and a NetworkPolicy."""

    service_name: pulumi.Output[str]
    """In-cluster DNS name of the Service."""
    service_port: pulumi.Output[int]
    """Port of the Service."""

    def __init__(
        self, name: str, args: MicroserviceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(MICROSERVICE.token, name, None, MICROSERVICE.options(opts))
        minimum, maximum = int(args["min_replicas"]), int(args["max_replicas"])
        if not 1 <= minimum <= maximum:
            raise ValueError(
                f"{name}: need 1 <= min_replicas <= max_replicas, got {minimum} and {maximum}"
            )
        port = int(args["port"])
        labels = labels_for(name, "service")
        parts = workload_parts(
            name,
            role="service",
            namespace=args["namespace"],
            image=args["image"],
            args=args.get("args"),
            health_port=port,
            resources=args["resources"],
            env=args.get("env", {}),
            secret_env=args.get("secret_env", {}),
            secret_refs=args.get("secret_refs", {}),
            fences=Fences(
                ingress_from=args["ingress_from"],
                ingress_port=port,
                egress_to=args.get("egress_to", []),
                egress_peers=args.get("egress_peers", []),
            ),
            service_account_role_arn=args.get("service_account_role_arn"),
            schema_migration=args.get("schema_migration"),
            termination_grace_seconds=30,
            pre_stop_sleep_seconds=5,
            parent=self,
        )
        child = pulumi.ResourceOptions(parent=self)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": name, "namespace": args["namespace"], "labels": labels},
            spec={
                "selector": {"match_labels": labels},
                "strategy": {
                    "type": "RollingUpdate",
                    "rolling_update": {"max_unavailable": 0, "max_surge": "25%"},
                },
                "revision_history_limit": 5,
                "template": parts["pod_template"],
            },
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": name, "namespace": args["namespace"], "labels": labels},
            spec={
                "type": "ClusterIP",
                "selector": labels,
                "ports": [{"name": "http", "port": port, "target_port": "http"}],
            },
            opts=child,
        )
        extra: list[MetricSpecArgsDict] = []
        if "queue_depth_metric" in args:
            extra.append(
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": args["queue_depth_metric"]},
                        "target": {
                            "type": "AverageValue",
                            "average_value": str(args.get("queue_depth_target", 10)),
                        },
                    },
                }
            )
        cpu_autoscaler(
            name,
            namespace=args["namespace"],
            labels=labels,
            deployment=deployment,
            replicas=(minimum, maximum),
            cpu_target_percent=int(args.get("cpu_target_percent", 70)),
            extra_metrics=extra,
            parent=self,
        )
        self.service_name = pulumi.Output.concat(
            service.metadata.name, ".", service.metadata.namespace, ".svc.cluster.local"
        )
        self.service_port = pulumi.Output.from_input(port)
        self.register_outputs(
            {"service_name": self.service_name, "service_port": self.service_port}
        )
