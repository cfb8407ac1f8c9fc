"""How the stack declares an HTTP service or a Kafka worker of the platform.

A workload whose environment names the trace collector (`tracing_env`) may reach it.

The per-deployable modules say what differs (scaling section, environment, role,
fences); these two functions say what every service or worker shares (image, namespace,
schema wait, ingress from the gateway), with the components' typed arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi_aws as aws

from components.microservice import Microservice
from components.worker import Worker, WorkerArgs
from components.workload import EgressRuleArgs, PeerArgs
from contracts.platform_metrics import HTTP_ACTIVE_REQUESTS
from services.runtime.tracing_settings import TracingSettings
from stacks.compute_sections import ServiceSettings, WorkerSettings
from stacks.tracing import COLLECTOR
from stacks.workloads.context import GATEWAY, HTTP_PORT, WorkloadContext, resources
from stacks.workloads.pod_env import PodEnvironment

__all__ = ["http_service", "kafka_worker"]


def http_service(
    context: WorkloadContext,
    name: str,
    scaling: ServiceSettings,
    environment: PodEnvironment,
    role: aws.iam.Role,
    *,
    egress_to: Sequence[EgressRuleArgs],
    egress_peers: Sequence[PeerArgs] = (),
) -> Microservice:
    """`eduscale serve <name>` behind the gateway, waiting for the schema Job."""
    return Microservice(
        name,
        {
            "namespace": context.namespace,
            "image": context.image,
            "args": ["serve", name],
            "port": HTTP_PORT,
            "min_replicas": scaling.min_replicas,
            "max_replicas": scaling.max_replicas,
            "cpu_target_percent": scaling.cpu_target_percent,
            # Beside CPU, the request queue: requests in progress per pod.
            "queue_depth_metric": HTTP_ACTIVE_REQUESTS.series,
            "queue_depth_target": scaling.active_requests_target,
            "resources": resources(scaling),
            "ingress_from": [GATEWAY],
            "env": environment.plain,
            "secret_env": environment.secret,
            "secret_refs": environment.refs,
            "egress_to": list(egress_to),
            "egress_peers": _with_collector(egress_peers, environment),
            "service_account_role_arn": role.arn,
            "schema_migration": context.schema_migration,
        },
        opts=context.opts,
    )


def kafka_worker(
    context: WorkloadContext,
    name: str,
    *,
    command: str,
    topic: str,
    scaling: WorkerSettings,
    environment: PodEnvironment,
    role: aws.iam.Role,
    egress_to: Sequence[EgressRuleArgs],
    egress_peers: Sequence[PeerArgs] = (),
    uses_database: bool = True,
) -> Worker:
    """`eduscale worker <command>` consuming `topic` in group `name`, scaled on its lag.

    A worker that `uses_database` waits for the schema Job before it rolls out.
    """
    args: WorkerArgs = {
        "namespace": context.namespace,
        "image": context.image,
        "args": ["worker", command],
        "topic": topic,
        "consumer_group": name,
        "bootstrap_servers": context.event_bus.bootstrap_brokers_iam,
        "aws_region": context.config.region,
        "min_replicas": scaling.min_replicas,
        "max_replicas": scaling.max_replicas,
        "cpu_target_percent": scaling.cpu_target_percent,
        "lag_threshold": scaling.lag_threshold,
        "termination_grace_seconds": scaling.termination_grace_seconds,
        "resources": resources(scaling),
        "env": environment.plain,
        "secret_env": environment.secret,
        "secret_refs": environment.refs,
        "egress_to": list(egress_to),
        "egress_peers": _with_collector(egress_peers, environment),
        "service_account_role_arn": role.arn,
    }
    if uses_database:
        args["schema_migration"] = context.schema_migration
    return Worker(name, args, opts=context.opts)


def _with_collector(peers: Sequence[PeerArgs], environment: PodEnvironment) -> list[PeerArgs]:
    """`peers`, and the trace collector if the workload exports traces to it."""
    exports = TracingSettings.env_name("endpoint") in environment.names()
    return [*peers, COLLECTOR] if exports else list(peers)
