"""What every workload on the cluster shares: the pod, its config, identity and fences.

`Microservice` and `Worker` differ in how they are reached and scaled; everything else
is built here once, so the two cannot drift apart on security:

- the restricted Pod Security Standard: non-root, no privilege escalation, all
  capabilities dropped, seccomp `RuntimeDefault`, read-only root filesystem (a size-capped
  `emptyDir` at `/tmp` is the only writable path), no service-account token mounted;
- requests and limits on the container; liveness and readiness probes on the service's
  `/health/live` and `/health/ready`;
- pods spread across zones (hard) and nodes (soft);
- configuration as environment variables from a ConfigMap and a Secret (12-factor). Both
  are auto-named by Pulumi, so a changed value means a new name, and the Deployment rolls
  its pods onto it instead of running with stale config;
- a PodDisruptionBudget, and a NetworkPolicy that admits only the named peers and lets
  the pod reach only DNS and the destinations it declares.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.autoscaling.v2 import MetricSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvFromSourceArgsDict,
    KeyToPathArgsDict,
    PodSecurityContextArgsDict,
    PodTemplateSpecArgsDict,
    ProbeArgsDict,
    SecurityContextArgsDict,
    TopologySpreadConstraintArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
    VolumeProjectionArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
    NetworkPolicySpecArgsDict,
)

from contracts.secret_files import FILE_SUFFIX, SECRETS_DIR, secret_file

__all__ = [
    "SCHEMA_ANNOTATION",
    "EgressRuleArgs",
    "Fences",
    "PeerArgs",
    "ResourcesArgs",
    "SecretKeyArgs",
    "WorkloadArgs",
    "WorkloadParts",
    "check_pinned",
    "cpu_autoscaler",
    "disruption_budget",
    "dns_egress",
    "labels_for",
    "network_policy",
    "pinned",
    "restricted_container_context",
    "restricted_pod_context",
    "spread_over_zones_and_nodes",
    "workload_parts",
]

_DIGEST_PINNED = re.compile(r"^[^@\s]+@sha256:[a-f0-9]{64}$")
RUN_AS = 10001
"""The unprivileged uid and gid our images run as."""
PART_OF = "eduscale"


class ResourcesArgs(TypedDict):
    """Container requests and limits, as Kubernetes quantities."""

    cpu_request: str
    """e.g. `250m`."""
    cpu_limit: str
    """e.g. `1`."""
    memory_request: str
    """e.g. `256Mi`."""
    memory_limit: str
    """e.g. `512Mi`."""


class PeerArgs(TypedDict):
    """Pods in a namespace, selected by labels."""

    namespace: str
    """Namespace of the peer pods."""
    labels: dict[str, str]
    """Labels the peer pods carry."""


class EgressRuleArgs(TypedDict):
    """A destination outside the cluster the workload may reach."""

    cidr: str
    """Address range, e.g. the VPC's for data stores or `0.0.0.0/0` for HTTPS APIs."""
    ports: list[int]
    """TCP ports allowed to that range."""


class SecretKeyArgs(TypedDict):
    """One key of a Kubernetes Secret another component owns (in the workload's namespace)."""

    name: pulumi.Input[str]
    """Name of the Secret."""
    key: str
    """Key within it."""


class WorkloadArgs(TypedDict):
    """What every workload on the cluster is given (`Microservice` and `Worker` add to it)."""

    namespace: pulumi.Input[str]
    """Namespace to run in."""
    image: pulumi.Input[str]
    """Container image pinned by digest (`name[:tag]@sha256:<64 hex>`)."""
    args: NotRequired[list[str]]
    """Arguments to the image's entry point, e.g. `["serve", "auth"]`: one image runs every
    service and worker by name."""
    min_replicas: int
    """Fewest pods."""
    max_replicas: int
    """Most pods."""
    resources: ResourcesArgs
    """Container requests and limits."""
    cpu_target_percent: NotRequired[int]
    """Average CPU utilisation the autoscaler aims for (default 70)."""
    env: NotRequired[dict[str, pulumi.Input[str]]]
    """Plain configuration, as environment variables (via a ConfigMap)."""
    secret_env: NotRequired[dict[str, pulumi.Input[str]]]
    """Secret configuration (via a Secret), mounted as read-only files: the variable
    `<NAME>_FILE` holds the path of the file holding `<NAME>` (`contracts.secret_files`)."""
    secret_refs: NotRequired[dict[str, SecretKeyArgs]]
    """Secrets read from keys of Secrets other components own (e.g. a database's
    credentials), mounted as files like `secret_env`: the value is never copied."""
    egress_to: NotRequired[list[EgressRuleArgs]]
    """Destinations outside the cluster the pods may reach (DNS is always allowed)."""
    egress_peers: NotRequired[list[PeerArgs]]
    """Pods inside the cluster the pods may reach (e.g. Qdrant)."""
    service_account_role_arn: NotRequired[pulumi.Input[str]]
    """IAM role for the pods (IRSA)."""
    schema_migration: NotRequired[pulumi.Input[str]]
    """The schema Job this code needs (its name, e.g. `SchemaMigration.job_name`). Pods
    carry it as an annotation, so the controller is created or updated only after that Job
    has succeeded, and a new schema rolls the pods."""


SCHEMA_ANNOTATION = "eduscale.io/schema-migration"
"""The pod annotation naming the schema Job a workload's pods were rolled out after."""


class WorkloadParts(TypedDict):
    """The objects a workload needs besides its controller and scaler."""

    pod_template: PodTemplateSpecArgsDict
    service_account: k8s.core.v1.ServiceAccount


@dataclass(frozen=True)
class Fences:
    """Who may reach a workload, and what it may reach."""

    ingress_from: Sequence[PeerArgs]
    ingress_port: int | None
    egress_to: Sequence[EgressRuleArgs]
    egress_peers: Sequence[PeerArgs]


def labels_for(name: str, role: str) -> dict[str, str]:
    """The labels that select a workload's pods."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": role,
        "app.kubernetes.io/part-of": PART_OF,
    }


def workload_parts(
    name: str,
    *,
    role: str,
    namespace: pulumi.Input[str],
    image: pulumi.Input[str],
    args: Sequence[str] | None = None,
    health_port: int,
    resources: ResourcesArgs,
    env: Mapping[str, pulumi.Input[str]],
    secret_env: Mapping[str, pulumi.Input[str]],
    secret_refs: Mapping[str, SecretKeyArgs] | None = None,
    fences: Fences,
    service_account_role_arn: pulumi.Input[str] | None,
    termination_grace_seconds: int,
    pre_stop_sleep_seconds: int | None,
    schema_migration: pulumi.Input[str] | None = None,
    parent: pulumi.Resource,
) -> WorkloadParts:
    """Declare the ConfigMap, Secret, ServiceAccount, PDB and NetworkPolicy of a workload.

    Returns the pod template that uses them, for the caller's Deployment.
    """
    image = pinned(image)
    labels = labels_for(name, role)
    child = pulumi.ResourceOptions(parent=parent)
    sources: list[VolumeProjectionArgsDict] = []
    if secret_env:  # a workload without secrets gets no (empty) Secret to guard
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata={"namespace": namespace, "labels": labels},
            type="Opaque",
            string_data={key: pulumi.Output.secret(value) for key, value in secret_env.items()},
            opts=child,
        )
        items: list[KeyToPathArgsDict] = [{"key": k, "path": k} for k in sorted(secret_env)]
        sources.append({"secret": {"name": secret.metadata.name, "items": items}})
    for variable, ref in sorted((secret_refs or {}).items()):
        sources.append(
            {"secret": {"name": ref["name"], "items": [{"key": ref["key"], "path": variable}]}}
        )
    # Secrets reach the process as files, never as environment values (which show in
    # /proc/<pid>/environ and crash dumps): the ConfigMap says where each file is.
    files = {f"{v}{FILE_SUFFIX}": secret_file(v) for v in [*secret_env, *(secret_refs or {})]}
    config = k8s.core.v1.ConfigMap(
        f"{name}-config",
        metadata={"namespace": namespace, "labels": labels},
        data={**env, **files},
        opts=child,
    )
    env_from: list[EnvFromSourceArgsDict] = [{"config_map_ref": {"name": config.metadata.name}}]
    scratch = "/tmp"  # noqa: S108 - an emptyDir of the pod's own
    volume_mounts: list[VolumeMountArgsDict] = [{"name": "tmp", "mount_path": scratch}]
    volumes: list[VolumeArgsDict] = [{"name": "tmp", "empty_dir": {"size_limit": "256Mi"}}]
    if sources:
        volume_mounts.append({"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True})
        # Readable by the pod's group (fsGroup) only, never written.
        volumes.append(
            {"name": "secrets", "projected": {"sources": sources, "default_mode": 0o440}}
        )
    annotations: dict[str, pulumi.Input[str]] = (
        {"eks.amazonaws.com/role-arn": service_account_role_arn}
        if service_account_role_arn is not None
        else {}
    )
    account = k8s.core.v1.ServiceAccount(
        f"{name}-account",
        metadata={
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        automount_service_account_token=False,
        opts=child,
    )
    disruption_budget(name, namespace, labels, parent)
    network_policy(name, namespace, labels, fences, parent)
    container: ContainerArgsDict = {
        "name": name,
        "image": image,
        "image_pull_policy": "IfNotPresent",
        "ports": [{"name": "http", "container_port": health_port, "protocol": "TCP"}],
        "env_from": env_from,
        "resources": {
            "requests": {"cpu": resources["cpu_request"], "memory": resources["memory_request"]},
            "limits": {"cpu": resources["cpu_limit"], "memory": resources["memory_limit"]},
        },
        "liveness_probe": _probe("/health/live", period=10, failures=3),
        "readiness_probe": _probe("/health/ready", period=5, failures=2),
        "security_context": restricted_container_context(),
        "volume_mounts": volume_mounts,
    }
    if args:
        container["args"] = list(args)
    if pre_stop_sleep_seconds is not None:
        # Let endpoints stop routing to a pod before it is told to stop.
        container["lifecycle"] = {"pre_stop": {"sleep": {"seconds": pre_stop_sleep_seconds}}}
    pod_metadata: ObjectMetaArgsDict = {"labels": labels}
    if schema_migration is not None:
        pod_metadata["annotations"] = {SCHEMA_ANNOTATION: schema_migration}
    pod_template: PodTemplateSpecArgsDict = {
        "metadata": pod_metadata,
        "spec": {
            "service_account_name": account.metadata.name,
            "automount_service_account_token": False,
            "termination_grace_period_seconds": termination_grace_seconds,
            "security_context": restricted_pod_context(RUN_AS),
            "containers": [container],
            "volumes": volumes,
            "topology_spread_constraints": spread_over_zones_and_nodes(labels),
        },
    }
    return {"pod_template": pod_template, "service_account": account}


def restricted_container_context() -> SecurityContextArgsDict:
    """The container half of the restricted Pod Security Standard, plus a read-only root."""
    return {
        "allow_privilege_escalation": False,
        "privileged": False,
        "read_only_root_filesystem": True,
        "run_as_non_root": True,
        "capabilities": {"drop": ["ALL"]},
    }


def restricted_pod_context(uid: int, gid: int | None = None) -> PodSecurityContextArgsDict:
    """The pod half of the restricted Pod Security Standard, running as `uid`."""
    return {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": gid if gid is not None else uid,
        "fs_group": gid if gid is not None else uid,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def spread_over_zones_and_nodes(labels: dict[str, str]) -> list[TopologySpreadConstraintArgsDict]:
    """Pods evenly over zones (hard: survive an AZ loss) and nodes (soft)."""
    return [
        _spread("topology.kubernetes.io/zone", labels, "DoNotSchedule"),
        _spread("kubernetes.io/hostname", labels, "ScheduleAnyway"),
    ]


def dns_egress() -> NetworkPolicyEgressRuleArgsDict:
    """The egress rule every pod needs: cluster DNS."""
    return {
        "to": [
            {
                "namespace_selector": {
                    "match_labels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }


def disruption_budget(
    name: str, namespace: pulumi.Input[str], labels: dict[str, str], parent: pulumi.Resource
) -> k8s.policy.v1.PodDisruptionBudget:
    """A budget that lets one pod of the workload go at a time (node drains, upgrades)."""
    return k8s.policy.v1.PodDisruptionBudget(
        f"{name}-pdb",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={"max_unavailable": 1, "selector": {"match_labels": labels}},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def peer_discovery_service(
    name: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    ports: Sequence[k8s.core.v1.ServicePortArgsDict],
    parent: pulumi.Resource,
) -> k8s.core.v1.Service:
    """The headless Service `<name>-headless` that gives each StatefulSet pod a stable DNS name.

    Members of a cluster (Qdrant, ClickHouse, Keeper) must resolve each other while they
    start, before any is ready, so not-ready addresses are published.
    """
    return k8s.core.v1.Service(
        f"{name}-headless",
        metadata={"name": f"{name}-headless", "namespace": namespace, "labels": labels},
        spec={
            "cluster_ip": "None",
            "publish_not_ready_addresses": True,
            "selector": labels,
            "ports": list(ports),
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def cpu_autoscaler(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    deployment: k8s.apps.v1.Deployment,
    replicas: tuple[int, int],
    cpu_target_percent: int,
    extra_metrics: Sequence[MetricSpecArgsDict] = (),
    parent: pulumi.Resource,
) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    """An HPA between `replicas` (min, max) on CPU, plus any `extra_metrics`."""
    cpu: MetricSpecArgsDict = {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "average_utilization": cpu_target_percent},
        },
    }
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{name}-hpa",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={
            "scale_target_ref": {
                "api_version": "apps/v1",
                "kind": "Deployment",
                "name": deployment.metadata.name,
            },
            "min_replicas": replicas[0],
            "max_replicas": replicas[1],
            "metrics": [cpu, *extra_metrics],
            # Scale out at once, scale in slowly: a dip is not the end of a peak.
            "behavior": {"scale_down": {"stabilization_window_seconds": 300}},
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def check_pinned(image: str) -> None:
    """Refuse an image that is not pinned by digest (`name[:tag]@sha256:<64 hex>`).

    A tag (even a version) can be moved to other bytes; a digest cannot, so every node
    runs what was reviewed and a rollback runs what ran before.
    """
    if _DIGEST_PINNED.match(image) is None:
        raise ValueError(
            f"image {image!r} must be pinned by digest (name[:tag]@sha256:<64 hex>): "
            "a tag can be moved to other bytes, a digest cannot"
        )


def pinned(image: pulumi.Input[str]) -> pulumi.Input[str]:
    """`image`, checked by `check_pinned`: now when it is known, else when it resolves."""
    if isinstance(image, str):
        check_pinned(image)  # at once, with the caller's arguments in the traceback
        return image
    resolved: pulumi.Output[str] = pulumi.Output.from_input(image)
    return resolved.apply(_checked_image)


def _checked_image(image: str) -> str:
    check_pinned(image)
    return image


def _probe(path: str, *, period: int, failures: int) -> ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": "http"},
        "period_seconds": period,
        "timeout_seconds": 2,
        "failure_threshold": failures,
    }


def _spread(key: str, labels: dict[str, str], when: str) -> TopologySpreadConstraintArgsDict:
    return {
        "max_skew": 1,
        "topology_key": key,
        "when_unsatisfiable": when,
        "label_selector": {"match_labels": labels},
    }


def _peer(peer: PeerArgs) -> NetworkPolicyPeerArgsDict:
    return {
        "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": peer["namespace"]}},
        "pod_selector": {"match_labels": peer["labels"]},
    }


def network_policy(
    name: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    fences: Fences,
    parent: pulumi.Resource,
) -> None:
    """Admit only `fences.ingress_from` on the port; let the pods reach DNS and the rest."""
    ingress: list[NetworkPolicyIngressRuleArgsDict] = []
    if fences.ingress_from and fences.ingress_port is not None:
        ingress.append(
            {
                "from_": [_peer(p) for p in fences.ingress_from],
                "ports": [{"port": fences.ingress_port, "protocol": "TCP"}],
            }
        )
    egress: list[NetworkPolicyEgressRuleArgsDict] = [dns_egress()]
    egress += [
        {
            "to": [{"ip_block": {"cidr": rule["cidr"]}}],
            "ports": [{"port": port, "protocol": "TCP"} for port in rule["ports"]],
        }
        for rule in fences.egress_to
    ]
    egress += [{"to": [_peer(peer)]} for peer in fences.egress_peers]
    spec: NetworkPolicySpecArgsDict = {
        "pod_selector": {"match_labels": labels},
        "policy_types": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }
    k8s.networking.v1.NetworkPolicy(
        f"{name}-network-policy",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent),
    )
