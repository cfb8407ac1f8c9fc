"""Qdrant on the cluster, in distributed mode, declared as plain Kubernetes objects.

Declared by us rather than through the Helm chart, so the policy pack and the schema
tests see every field. Pod 0 starts the Raft cluster and every other pod bootstraps from
it through the headless Service. Qdrant does not move shards when nodes are added or
removed, so the replica count is fixed by config and never autoscaled; pods are spread
over zones and never share a node, each keeps its data on its own encrypted gp3 volume,
and a PodDisruptionBudget lets only one node go at a time. Clients authenticate with an
API key from a Pulumi secret; CORS is off and telemetry is disabled. The collection
layout the indexer must create is exported as `collection`.
"""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.type_tokens import VECTOR_STORE
from components.workload import PeerArgs, disruption_budget, peer_discovery_service
from contracts.vector_layout import CollectionLayout

__all__ = ["HTTP_PORT", "VectorStore", "VectorStoreArgs"]

HTTP_PORT = 6333
GRPC_PORT = 6334
P2P_PORT = 6335
_UID, _GID, _FS_GROUP = 1000, 2000, 3000


class VectorStoreArgs(TypedDict):
    """Inputs of `VectorStore`."""

    namespace: pulumi.Input[str]
    """Namespace to run in."""
    image: str
    """Qdrant image pinned to a version (the `-unprivileged` variant runs as non-root)."""
    replicas: int
    """Qdrant nodes (3 or more in production); fixed, never autoscaled."""
    storage_gb: int
    """Volume size per node."""
    cpu: str
    """CPU request and limit per node."""
    memory: str
    """Memory request and limit per node."""
    api_key: pulumi.Input[str]
    """API key clients must present; pass a Pulumi secret."""
    collection: CollectionLayout
    """The collection layout the indexer creates."""
    allowed_clients: list[PeerArgs]
    """The only pods that may call Qdrant."""
    storage_class: NotRequired[str]
    """StorageClass of the data volumes (default `gp3`)."""


class VectorStore(pulumi.ComponentResource):
    """A Qdrant cluster: StatefulSet, headless and client Services, config, PDB, policy."""

    url: pulumi.Output[str]
    """In-cluster HTTP URL of Qdrant."""
    api_key: pulumi.Output[str]
    """The API key (secret)."""
    collection: pulumi.Output[CollectionLayout]
    """The collection layout the indexer creates."""

    def __init__(
        self, name: str, args: VectorStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(VECTOR_STORE.token, name, None, VECTOR_STORE.options(opts))
        replicas = int(args["replicas"])
        layout = args["collection"]
        if layout["replication_factor"] > replicas:
            raise ValueError(
                f"collection replication_factor ({layout['replication_factor']}) cannot "
                f"exceed replicas ({replicas})"
            )
        if ":" not in args["image"] or args["image"].endswith(":latest"):
            raise ValueError(f"image {args['image']!r} must be pinned to a version")
        namespace = args["namespace"]
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "eduscale"}
        child = pulumi.ResourceOptions(parent=self)
        headless = f"{name}-headless"

        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"namespace": namespace, "labels": labels},
            data={"production.yaml": json.dumps(_qdrant_config(layout))},
            opts=child,
        )
        api_key = pulumi.Output.secret(args["api_key"])
        secret = k8s.core.v1.Secret(
            f"{name}-api-key",
            metadata={"namespace": namespace, "labels": labels},
            type="Opaque",
            string_data={"api-key": api_key},
            opts=child,
        )
        ports: list[k8s.core.v1.ServicePortArgsDict] = [
            {"name": "http", "port": HTTP_PORT, "target_port": "http"},
            {"name": "grpc", "port": GRPC_PORT, "target_port": "grpc"},
        ]
        peer_discovery_service(
            name,
            namespace,
            labels,
            [*ports, {"name": "p2p", "port": P2P_PORT, "target_port": "p2p"}],
            self,
        )
        client = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={"type": "ClusterIP", "selector": labels, "ports": ports},
            opts=child,
        )
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={
                "service_name": headless,
                "replicas": replicas,
                # OrderedReady deadlocks a Raft cluster whose first pod waits for peers.
                "pod_management_policy": "Parallel",
                "update_strategy": {"type": "RollingUpdate"},
                "selector": {"match_labels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod_spec(name, args, labels, headless, config, secret),
                },
                "volume_claim_templates": [
                    {
                        "metadata": {"name": "storage", "labels": labels},
                        "spec": {
                            "access_modes": ["ReadWriteOnce"],
                            "storage_class_name": args.get("storage_class", "gp3"),
                            "resources": {"requests": {"storage": f"{args['storage_gb']}Gi"}},
                        },
                    }
                ],
            },
            opts=child,
        )
        disruption_budget(name, namespace, labels, self)
        _network_policy(name, namespace, labels, args["allowed_clients"], parent=self)

        self.url = pulumi.Output.concat(
            "http://", client.metadata.name, ".", client.metadata.namespace,
            f".svc.cluster.local:{HTTP_PORT}",
        )  # fmt: skip
        self.api_key = api_key
        self.collection = pulumi.Output.from_input(layout)
        self.register_outputs(
            {"url": self.url, "api_key": self.api_key, "collection": self.collection}
        )


def _qdrant_config(layout: CollectionLayout) -> dict[str, object]:
    return {
        "cluster": {"enabled": True, "p2p": {"port": P2P_PORT}},
        "service": {"enable_cors": False, "http_port": HTTP_PORT, "grpc_port": GRPC_PORT},
        "storage": {
            "hnsw_index": {"m": layout["hnsw_m"], "ef_construct": layout["hnsw_ef_construct"]},
            "collection": {"replication_factor": layout["replication_factor"]},
        },
        "telemetry_disabled": True,
    }


def _pod_spec(  # noqa: PLR0917 (private; called once, positionally, above)
    name: str,
    args: VectorStoreArgs,
    labels: dict[str, str],
    headless: str,
    config: k8s.core.v1.ConfigMap,
    secret: k8s.core.v1.Secret,
) -> k8s.core.v1.PodSpecArgsDict:
    peer_domain = pulumi.Output.concat(headless, ".", args["namespace"], ".svc.cluster.local")
    # Pod 0 founds the cluster; the others join it. Both advertise their stable DNS name.
    start = pulumi.Output.concat(
        'ORDINAL="${HOSTNAME##*-}"; SELF="http://${HOSTNAME}.', peer_domain, f':{P2P_PORT}"; ',
        'if [ "$ORDINAL" = "0" ]; then exec ./entrypoint.sh --uri "$SELF"; ',
        f'else exec ./entrypoint.sh --bootstrap "http://{name}-0.', peer_domain,
        f':{P2P_PORT}" --uri "$SELF"; fi',
    )  # fmt: skip
    resources = {"cpu": args["cpu"], "memory": args["memory"]}
    return {
        "security_context": {
            "run_as_non_root": True,
            "run_as_user": _UID,
            "run_as_group": _GID,
            "fs_group": _FS_GROUP,
            "fs_group_change_policy": "OnRootMismatch",
            "seccomp_profile": {"type": "RuntimeDefault"},
        },
        "automount_service_account_token": False,
        "termination_grace_period_seconds": 60,
        "affinity": {
            "pod_anti_affinity": {
                "required_during_scheduling_ignored_during_execution": [
                    {
                        "topology_key": "kubernetes.io/hostname",
                        "label_selector": {"match_labels": labels},
                    }
                ]
            }
        },
        "topology_spread_constraints": [
            {
                "max_skew": 1,
                "topology_key": "topology.kubernetes.io/zone",
                "when_unsatisfiable": "DoNotSchedule",
                "label_selector": {"match_labels": labels},
            }
        ],
        "containers": [
            {
                "name": "qdrant",
                "image": args["image"],
                "image_pull_policy": "IfNotPresent",
                "command": ["/bin/bash", "-c", start],
                "env": [
                    {
                        "name": "QDRANT__SERVICE__API_KEY",
                        "value_from": {
                            "secret_key_ref": {"name": secret.metadata.name, "key": "api-key"}
                        },
                    }
                ],
                "ports": [
                    {"name": "http", "container_port": HTTP_PORT, "protocol": "TCP"},
                    {"name": "grpc", "container_port": GRPC_PORT, "protocol": "TCP"},
                    {"name": "p2p", "container_port": P2P_PORT, "protocol": "TCP"},
                ],
                "resources": {"requests": resources, "limits": resources},
                "readiness_probe": {
                    "http_get": {"path": "/readyz", "port": "http"},
                    "period_seconds": 5,
                    "failure_threshold": 6,
                },
                "liveness_probe": {
                    "http_get": {"path": "/livez", "port": "http"},
                    "period_seconds": 10,
                    "failure_threshold": 6,
                    "initial_delay_seconds": 30,
                },
                "security_context": {
                    "allow_privilege_escalation": False,
                    "privileged": False,
                    "read_only_root_filesystem": True,
                    "run_as_non_root": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volume_mounts": [
                    {"name": "storage", "mount_path": "/qdrant/storage"},
                    {"name": "snapshots", "mount_path": "/qdrant/snapshots"},
                    {"name": "init", "mount_path": "/qdrant/init"},
                    {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108 (an emptyDir)
                    {
                        "name": "config",
                        "mount_path": "/qdrant/config/production.yaml",
                        "sub_path": "production.yaml",
                    },
                ],
            }
        ],
        "volumes": [
            {"name": "config", "config_map": {"name": config.metadata.name}},
            {"name": "snapshots", "empty_dir": {"size_limit": f"{args['storage_gb']}Gi"}},
            {"name": "init", "empty_dir": {"size_limit": "1Mi"}},
            {"name": "tmp", "empty_dir": {"size_limit": "1Gi"}},
        ],
    }


def _network_policy(
    name: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    clients: list[PeerArgs],
    *,
    parent: pulumi.Resource,
) -> None:
    peers: k8s.networking.v1.NetworkPolicyPeerArgsDict = {"pod_selector": {"match_labels": labels}}
    spec: k8s.networking.v1.NetworkPolicySpecArgsDict = {
        "pod_selector": {"match_labels": labels},
        "policy_types": ["Ingress", "Egress"],
        "ingress": [
            {
                "from_": [
                    {
                        "namespace_selector": {
                            "match_labels": {"kubernetes.io/metadata.name": client["namespace"]}
                        },
                        "pod_selector": {"match_labels": client["labels"]},
                    }
                    for client in clients
                ],
                "ports": [
                    {"port": HTTP_PORT, "protocol": "TCP"},
                    {"port": GRPC_PORT, "protocol": "TCP"},
                ],
            },
            {
                "from_": [peers],
                "ports": [{"port": p, "protocol": "TCP"} for p in (HTTP_PORT, P2P_PORT)],
            },
        ],
        "egress": [
            {
                "to": [
                    {
                        "namespace_selector": {
                            "match_labels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            },
            {
                "to": [peers],
                "ports": [{"port": p, "protocol": "TCP"} for p in (HTTP_PORT, P2P_PORT)],
            },
        ],
    }
    k8s.networking.v1.NetworkPolicy(
        f"{name}-network-policy",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent),
    )
