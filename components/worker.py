"""One Kafka consumer on the cluster: a Deployment scaled by KEDA on its consumer lag.

A worker has no Service and admits no inbound traffic. KEDA owns its replica count (a
`ScaledObject` with a Kafka lag trigger, and CPU as a second trigger), so the Deployment
declares none and no plain HPA is added (KEDA's webhook refuses a workload another HPA
already scales). Replicas beyond the topic's partitions would sit idle, so the maximum
should not exceed them. A stopping worker gets `termination_grace_seconds` to finish its
in-flight job and commit its offset before it is killed; otherwise the job would run
twice. Pods, config, identity and network fences come from `components.workload`.
"""

from typing import NotRequired

import pulumi
import pulumi_kubernetes as k8s

from components.type_tokens import WORKER
from components.workload import (
    Fences,
    WorkloadArgs,
    labels_for,
    workload_parts,
)

__all__ = ["HEALTH_PORT", "Worker", "WorkerArgs"]

HEALTH_PORT = 8081
"""Port of the worker's `/health/live` and `/health/ready` endpoints."""


class WorkerArgs(WorkloadArgs):
    """Inputs of `Worker`: a workload, plus the topic it consumes and how it scales."""

    topic: str
    """The topic it consumes."""
    consumer_group: str
    """Its consumer group (KEDA reads this group's lag)."""
    bootstrap_servers: pulumi.Input[str]
    """Kafka bootstrap servers (SASL/IAM over TLS)."""
    aws_region: pulumi.Input[str]
    """Region of the MSK cluster, for the IAM token KEDA signs."""
    lag_threshold: NotRequired[int]
    """Pending messages per pod KEDA aims for (default 10)."""
    termination_grace_seconds: NotRequired[int]
    """Time to finish and commit the in-flight message (default 300)."""


class Worker(pulumi.ComponentResource):
    """A Kafka consumer Deployment scaled by KEDA on consumer-group lag."""

    deployment_name: pulumi.Output[str]
    """Name of the Deployment."""

    def __init__(
        self, name: str, args: WorkerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(WORKER.token, name, None, WORKER.options(opts))
        minimum, maximum = int(args["min_replicas"]), int(args["max_replicas"])
        if not 0 <= minimum <= maximum or maximum < 1:
            raise ValueError(
                f"{name}: need 0 <= min_replicas <= max_replicas and max_replicas >= 1, "
                f"got {minimum} and {maximum}"
            )
        labels = labels_for(name, "worker")
        grace = int(args.get("termination_grace_seconds", 300))
        env = {
            **args.get("env", {}),
            "KAFKA_TOPIC": args["topic"],
            "KAFKA_CONSUMER_GROUP": args["consumer_group"],
            "KAFKA_BOOTSTRAP_SERVERS": args["bootstrap_servers"],
            "HEALTH_PORT": str(HEALTH_PORT),
        }
        parts = workload_parts(
            name,
            role="worker",
            namespace=args["namespace"],
            image=args["image"],
            args=args.get("args"),
            health_port=HEALTH_PORT,
            resources=args["resources"],
            env=env,
            secret_env=args.get("secret_env", {}),
            secret_refs=args.get("secret_refs", {}),
            fences=Fences(
                ingress_from=[],
                ingress_port=None,
                egress_to=args.get("egress_to", []),
                egress_peers=args.get("egress_peers", []),
            ),
            service_account_role_arn=args.get("service_account_role_arn"),
            schema_migration=args.get("schema_migration"),
            termination_grace_seconds=grace,
            pre_stop_sleep_seconds=None,
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
                    "rolling_update": {"max_unavailable": 0, "max_surge": 1},
                },
                "revision_history_limit": 5,
                "template": parts["pod_template"],
            },
            opts=child,
        )
        auth_name = f"{name}-msk"
        k8s.apiextensions.CustomResource(
            f"{name}-trigger-auth",
            api_version="keda.sh/v1alpha1",
            kind="TriggerAuthentication",
            metadata={"name": auth_name, "namespace": args["namespace"], "labels": labels},
            spec={"podIdentity": {"provider": "aws"}},
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-scaler",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata={"name": name, "namespace": args["namespace"], "labels": labels},
            spec={
                "scaleTargetRef": {"name": deployment.metadata.name},
                "minReplicaCount": minimum,
                "maxReplicaCount": maximum,
                "pollingInterval": 15,
                "cooldownPeriod": 300,
                "triggers": [
                    {
                        "type": "kafka",
                        "metadata": {
                            "bootstrapServers": args["bootstrap_servers"],
                            "consumerGroup": args["consumer_group"],
                            "topic": args["topic"],
                            "lagThreshold": str(args.get("lag_threshold", 10)),
                            "activationLagThreshold": "0",
                            "offsetResetPolicy": "earliest",
                            "allowIdleConsumers": "false",
                            "tls": "enable",
                            "sasl": "oauthbearer",
                            "saslTokenProvider": "aws_msk_iam",
                            "awsRegion": args["aws_region"],
                        },
                        "authenticationRef": {"name": auth_name},
                    },
                    {
                        "type": "cpu",
                        "metricType": "Utilization",
                        "metadata": {"value": str(args.get("cpu_target_percent", 70))},
                    },
                ],
            },
            opts=child,
        )
        self.deployment_name = deployment.metadata.name
        self.register_outputs({"deployment_name": self.deployment_name})
