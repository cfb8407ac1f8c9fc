"""The schema step of a deploy: a Kubernetes Job that migrates the database, then finishes.

Pulumi's Kubernetes provider waits for a Job to succeed before it creates or updates
anything that depends on it, and fails the update when the Job fails (its backoff limit
or deadline is reached). Workloads name the Job in their pod template
(`WorkloadArgs.schema_migration`), so a failed migration stops `pulumi up` before any pod
of the new code rolls out, and the running pods keep serving the old schema.

The Job is named after the migrations' content (`revision`): a new migration makes a new
Job, which runs once; an unchanged set keeps the Job, so an ordinary deploy does not run
it again (a new image replaces it in place, and the migrator then finds nothing to do).
A finished Job is removed by the cluster after `ttl_seconds_after_finished`, its pod's
logs with it; after that, `pulumi refresh` sees it gone and the next `up` runs it once
more, which is harmless because migrating is idempotent.

The pod is as locked down as every workload's (restricted Pod Security Standard, read-only
root, no service-account token); its identity (IRSA) may read the database's master
secret and nothing else, and its NetworkPolicy lets it reach DNS and the destinations
given (the database port, HTTPS for STS and Secrets Manager) and accepts no connection.
"""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.type_tokens import SCHEMA_MIGRATION
from components.workload import (
    RUN_AS,
    EgressRuleArgs,
    Fences,
    ResourcesArgs,
    labels_for,
    network_policy,
    pinned,
    restricted_container_context,
    restricted_pod_context,
)

__all__ = ["SchemaMigration", "SchemaMigrationArgs"]

_REVISION_LENGTH = 12
_TIMEOUT_MARGIN_SECONDS = 120
"""How much longer Pulumi waits than the cluster lets the Job run: the cluster decides."""


class SchemaMigrationArgs(TypedDict):
    """Inputs of `SchemaMigration`."""

    namespace: pulumi.Input[str]
    """Namespace to run in."""
    image: pulumi.Input[str]
    """The services' image, pinned by digest: it carries the migrator and the migrations."""
    args: list[str]
    """Arguments to the image's entry point, e.g. `["migrate"]`."""
    env: dict[str, pulumi.Input[str]]
    """The migrator's environment (the writer's URL, the master secret's ARN, the region);
    no secret value: the pod reads the password from Secrets Manager."""
    revision: str
    """Content hash of the migrations; the Job's name ends with its first 12 characters."""
    service_account_role_arn: pulumi.Input[str]
    """IAM role of the Job's pods (IRSA): may read the master secret, nothing else."""
    egress_to: list[EgressRuleArgs]
    """Destinations the Job may reach besides DNS (the database, HTTPS to AWS APIs)."""
    resources: NotRequired[ResourcesArgs]
    """Container requests and limits (default 100m/256Mi, limit 1 CPU/512Mi)."""
    deadline_seconds: NotRequired[int]
    """How long the Job may run before it is failed (default 900)."""
    ttl_seconds_after_finished: NotRequired[int]
    """How long a finished Job is kept before the cluster deletes it (default 86400)."""
    backoff_limit: NotRequired[int]
    """Retries of a failed pod before the Job fails (default 2)."""


class SchemaMigration(pulumi.ComponentResource):
    """A Job that runs the schema migrations once per set of migrations, gating rollouts."""

    job_name: pulumi.Output[str]
    """Name of the Job (`<name>-<revision>`): what workloads name in `schema_migration`."""

    def __init__(
        self, name: str, args: SchemaMigrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(SCHEMA_MIGRATION.token, name, None, SCHEMA_MIGRATION.options(opts))
        revision = args["revision"]
        if len(revision) < _REVISION_LENGTH or not revision.isalnum():
            raise ValueError(f"revision must be a hash (12+ letters or digits), got {revision!r}")
        deadline = int(args.get("deadline_seconds", 900))
        ttl = int(args.get("ttl_seconds_after_finished", 86400))
        backoff = int(args.get("backoff_limit", 2))
        if not 60 <= deadline <= 86400:  # noqa: PLR2004 - a minute to a day
            raise ValueError(f"deadline_seconds must be between 60 and 86400, got {deadline}")
        if ttl < 0 or backoff < 0:
            raise ValueError("ttl_seconds_after_finished and backoff_limit must not be negative")
        namespace = args["namespace"]
        labels = labels_for(name, "schema-migration")
        child = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata={
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {"eks.amazonaws.com/role-arn": args["service_account_role_arn"]},
            },
            automount_service_account_token=False,
            opts=child,
        )
        network_policy(
            name,
            namespace,
            labels,
            Fences(
                ingress_from=[], ingress_port=None, egress_to=args["egress_to"], egress_peers=[]
            ),
            self,
        )
        resources = args.get(
            "resources",
            {
                "cpu_request": "100m",
                "cpu_limit": "1",
                "memory_request": "256Mi",
                "memory_limit": "512Mi",
            },
        )
        job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata={
                "name": f"{name}-{revision[:_REVISION_LENGTH].lower()}",
                "namespace": namespace,
                "labels": labels,
                "annotations": {
                    # Pulumi waits for the Job; let the cluster's deadline decide first.
                    "pulumi.com/timeoutSeconds": str(deadline + _TIMEOUT_MARGIN_SECONDS),
                },
            },
            spec={
                "backoff_limit": backoff,
                "active_deadline_seconds": deadline,
                "ttl_seconds_after_finished": ttl,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restart_policy": "Never",
                        "service_account_name": account.metadata.name,
                        "automount_service_account_token": False,
                        "security_context": restricted_pod_context(RUN_AS),
                        "containers": [
                            {
                                "name": "migrate",
                                "image": pinned(args["image"]),
                                "image_pull_policy": "IfNotPresent",
                                "args": list(args["args"]),
                                "env": [
                                    {"name": key, "value": value}
                                    for key, value in sorted(args["env"].items())
                                ],
                                "resources": {
                                    "requests": {
                                        "cpu": resources["cpu_request"],
                                        "memory": resources["memory_request"],
                                    },
                                    "limits": {
                                        "cpu": resources["cpu_limit"],
                                        "memory": resources["memory_limit"],
                                    },
                                },
                                "security_context": restricted_container_context(),
                                "volume_mounts": [
                                    {"name": "tmp", "mount_path": "/tmp"}  # noqa: S108 (emptyDir)
                                ],
                            }
                        ],
                        "volumes": [{"name": "tmp", "empty_dir": {"size_limit": "64Mi"}}],
                    },
                },
            },
            opts=child,
        )
        self.job_name = job.metadata.name
        self.register_outputs({"job_name": self.job_name})
