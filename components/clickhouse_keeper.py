"""ClickHouse Keeper on the cluster: the Raft ensemble that replicated tables coordinate on.

A fixed, odd number of members (3 by default), one per node and spread over zones, each
with its log and snapshots on its own encrypted gp3 volume. Members are named in the
config by their stable DNS names under a headless Service that publishes not-ready pods
(members must find each other before any of them is ready), and start in parallel (an
ordered start would wait forever for a quorum). The PodDisruptionBudget lets one member
go at a time, so a drain never breaks the majority. Only the ClickHouse servers may reach
the client port, and only members reach each other's Raft port.

Also home to the pod settings both Keeper and the servers share.
"""

from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    AffinityArgsDict,
    PersistentVolumeClaimArgsDict,
    PodSecurityContextArgsDict,
)
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyPeerArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)

from components.clickhouse_config import (
    KEEPER_CONTROL_PORT,
    KEEPER_PORT,
    KEEPER_RAFT_PORT,
    KEEPER_SERVER_ID_ENV,
    METRICS_PORT,
    keeper_config,
)
from components.workload import (
    disruption_budget,
    dns_egress,
    peer_discovery_service,
    restricted_container_context,
    restricted_pod_context,
    spread_over_zones_and_nodes,
)

__all__ = [
    "CLICKHOUSE_UID",
    "KeeperSpec",
    "declare_keeper",
    "one_per_node",
    "pod_security",
    "volume_claim",
]

CLICKHOUSE_UID = 101
"""The `clickhouse` user of the official images."""
_DATA = "/var/lib/clickhouse-keeper"
_CONFIG_DIR = "/etc/clickhouse-keeper"


class KeeperSpec(TypedDict):
    """What the Keeper ensemble is built from."""

    image: str
    nodes: int
    storage_gb: int
    storage_class: str
    cpu: str
    memory: str


def pod_security() -> PodSecurityContextArgsDict:
    """The restricted pod context as the images' `clickhouse` user; volumes owned by it."""
    return {
        **restricted_pod_context(CLICKHOUSE_UID),
        "fs_group_change_policy": "OnRootMismatch",
    }


def one_per_node(labels: dict[str, str]) -> AffinityArgsDict:
    """Never two of these pods on one node: a node loss takes at most one copy."""
    return {
        "pod_anti_affinity": {
            "required_during_scheduling_ignored_during_execution": [
                {
                    "topology_key": "kubernetes.io/hostname",
                    "label_selector": {"match_labels": labels},
                }
            ]
        }
    }


def volume_claim(
    labels: dict[str, str], storage_class: str, size_gb: int
) -> PersistentVolumeClaimArgsDict:
    """A per-pod data volume of `size_gb` in `storage_class` (the cluster's encrypted gp3)."""
    return {
        "metadata": {"name": "data", "labels": labels},
        "spec": {
            "access_modes": ["ReadWriteOnce"],
            "storage_class_name": storage_class,
            "resources": {"requests": {"storage": f"{size_gb}Gi"}},
        },
    }


def declare_keeper(
    name: str,
    spec: KeeperSpec,
    *,
    namespace: pulumi.Input[str],
    server_labels: dict[str, str],
    parent: pulumi.Resource,
) -> pulumi.Output[list[str]]:
    """Declare the Keeper ensemble `name`; returns its members' DNS names, in id order."""
    nodes = int(spec["nodes"])
    if nodes < 3 or nodes % 2 == 0:  # noqa: PLR2004
        raise ValueError(f"keeper nodes must be odd and at least 3 for a quorum, got {nodes}")
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "keeper",
        "app.kubernetes.io/part-of": "eduscale",
    }
    child = pulumi.ResourceOptions(parent=parent)
    headless = f"{name}-headless"
    hosts = pulumi.Output.from_input(namespace).apply(
        lambda ns: [f"{name}-{i}.{headless}.{ns}.svc.cluster.local" for i in range(nodes)]
    )
    config = k8s.core.v1.ConfigMap(
        f"{name}-config",
        metadata={"namespace": namespace, "labels": labels},
        data={"keeper_config.xml": hosts.apply(lambda h: keeper_config(peers=h, data_path=_DATA))},
        opts=child,
    )
    peer_discovery_service(
        name,
        namespace,
        labels,
        [
            {"name": "client", "port": KEEPER_PORT, "target_port": "client"},
            {"name": "raft", "port": KEEPER_RAFT_PORT, "target_port": "raft"},
        ],
        parent,
    )
    resources = {"cpu": spec["cpu"], "memory": spec["memory"]}
    # Raft ids are 1-based; the pod's ordinal is the suffix of its name.
    start = (
        f"export {KEEPER_SERVER_ID_ENV}=$(( ${{HOSTNAME##*-}} + 1 )); "
        f"exec /usr/bin/clickhouse-keeper --config-file={_CONFIG_DIR}/keeper_config.xml"
    )
    k8s.apps.v1.StatefulSet(
        f"{name}-statefulset",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={
            "service_name": headless,
            "replicas": nodes,
            "pod_management_policy": "Parallel",
            "update_strategy": {"type": "RollingUpdate"},
            "selector": {"match_labels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "security_context": pod_security(),
                    "automount_service_account_token": False,
                    "termination_grace_period_seconds": 30,
                    "affinity": one_per_node(labels),
                    "topology_spread_constraints": spread_over_zones_and_nodes(labels),
                    "containers": [
                        {
                            "name": "keeper",
                            "image": spec["image"],
                            "image_pull_policy": "IfNotPresent",
                            "command": ["/bin/sh", "-c", start],
                            "ports": [
                                {"name": "client", "container_port": KEEPER_PORT},
                                {"name": "raft", "container_port": KEEPER_RAFT_PORT},
                                {"name": "control", "container_port": KEEPER_CONTROL_PORT},
                                {"name": "metrics", "container_port": METRICS_PORT},
                            ],
                            "resources": {"requests": resources, "limits": resources},
                            # Ready once the member sees a leader; alive while it listens.
                            "readiness_probe": {
                                "http_get": {"path": "/ready", "port": "control"},
                                "period_seconds": 5,
                                "failure_threshold": 3,
                            },
                            "liveness_probe": {
                                "tcp_socket": {"port": "client"},
                                "initial_delay_seconds": 30,
                                "period_seconds": 10,
                                "failure_threshold": 6,
                            },
                            "security_context": restricted_container_context(),
                            "volume_mounts": [
                                {"name": "data", "mount_path": _DATA},
                                {"name": "config", "mount_path": _CONFIG_DIR, "read_only": True},
                                {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108 (an emptyDir)
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "config_map": {"name": config.metadata.name}},
                        {"name": "tmp", "empty_dir": {"size_limit": "256Mi"}},
                    ],
                },
            },
            "volume_claim_templates": [
                volume_claim(labels, spec["storage_class"], int(spec["storage_gb"]))
            ],
        },
        opts=child,
    )
    disruption_budget(name, namespace, labels, parent)
    _network_policy(name, namespace, labels, server_labels, parent=parent)
    return hosts


def _network_policy(
    name: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    server_labels: dict[str, str],
    *,
    parent: pulumi.Resource,
) -> None:
    members: NetworkPolicyPeerArgsDict = {"pod_selector": {"match_labels": labels}}
    servers: NetworkPolicyPeerArgsDict = {"pod_selector": {"match_labels": server_labels}}
    raft: list[NetworkPolicyPortArgsDict] = [{"port": KEEPER_RAFT_PORT, "protocol": "TCP"}]
    spec: NetworkPolicySpecArgsDict = {
        "pod_selector": {"match_labels": labels},
        "policy_types": ["Ingress", "Egress"],
        "ingress": [
            {"from_": [servers], "ports": [{"port": KEEPER_PORT, "protocol": "TCP"}]},
            {"from_": [members], "ports": raft},
        ],
        "egress": [dns_egress(), {"to": [members], "ports": raft}],
    }
    k8s.networking.v1.NetworkPolicy(
        f"{name}-network-policy",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent),
    )
