"""ClickHouse on the cluster, for learning analytics: shards x replicas, and Keeper.

Time-series reports over the event stream would contend with transactions on the
PostgreSQL writer, so they live here. Declared as plain Kubernetes objects (no operator,
no chart) so the policy pack and the schema tests see every field.

One StatefulSet per shard, each running that shard's replicas. The shard of a pod is a
property of its StatefulSet, never computed from an ordinal: with a single StatefulSet of
shards x replicas pods, changing the replica count would reassign pods (and the data on
their volumes) to other shards. Adding a shard adds a StatefulSet and leaves the others
untouched; adding replicas grows each StatefulSet, and ReplicatedMergeTree fills the new
pods from their shard's peers through Keeper.

Every server reads one config (the cluster with every replica by its stable DNS name,
Keeper, and the macros `{shard}` / `{replica}` from the pod's environment), so
`ON CLUSTER` DDL and `Replicated*MergeTree` tables work without per-pod files. The
passwordless default user is removed; the application user's password is generated
(a Pulumi secret), kept in a Kubernetes Secret, and given to the servers only as its
SHA-256. Shards authenticate each other with a cluster secret, replicas their fetches with
an interserver password; both are generated too and never leave the Secret.

Pods run as the images' non-root user on a read-only root filesystem, with requests equal
to limits, replicas of a shard never share a node and spread over zones, each keeps its
data on its own encrypted gp3 volume, and a PodDisruptionBudget per shard lets one replica
of each go at a time. Only the named clients reach the HTTP port; the native,
interserver and Keeper ports are open only among the ClickHouse and Keeper pods.
"""

import hashlib
import re
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.core.v1 import ContainerArgsDict, EnvVarArgsDict
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)

from components.clickhouse_config import (
    CLUSTER_SECRET_ENV,
    HTTP_PORT,
    INTERSERVER_HOST_ENV,
    INTERSERVER_PASSWORD_ENV,
    INTERSERVER_PORT,
    KEEPER_PORT,
    METRICS_PORT,
    NATIVE_PORT,
    PASSWORD_SHA256_ENV,
    REPLICA_ENV,
    SHARD_ENV,
    server_config,
    users_config,
)
from components.clickhouse_keeper import (
    declare_keeper,
    one_per_node,
    pod_security,
    volume_claim,
)
from components.type_tokens import ANALYTICS
from components.workload import (
    PeerArgs,
    check_pinned,
    disruption_budget,
    dns_egress,
    peer_discovery_service,
    restricted_container_context,
    spread_over_zones_and_nodes,
)

__all__ = [
    "HTTP_PORT",
    "PASSWORD_KEY",
    "USERNAME_KEY",
    "Analytics",
    "AnalyticsArgs",
    "server_labels",
]

PASSWORD_KEY = "password"  # noqa: S105 (a key name)
"""Key of the application user's password in the credentials Secret."""
USERNAME_KEY = "username"
"""Key of the application user's name in the credentials Secret."""
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DATA = "/var/lib/clickhouse"
_CONFIG = "/etc/clickhouse-server"


class AnalyticsArgs(TypedDict):
    """Inputs of `Analytics`."""

    namespace: pulumi.Input[str]
    """Namespace to run in (the clients' namespace: they read the credentials Secret)."""
    image: str
    """ClickHouse server image pinned to a version, e.g. `clickhouse/clickhouse-server:25.8`."""
    keeper_image: str
    """ClickHouse Keeper image of the same release."""
    shards: int
    """Shards (each holds a share of the rows)."""
    replicas_per_shard: int
    """Replicas of each shard (2 or more survive a node or zone loss)."""
    storage_gb: int
    """Data volume per replica."""
    cpu: str
    """CPU request and limit per replica."""
    memory: str
    """Memory request and limit per replica."""
    database: str
    """The database the application uses."""
    username: str
    """The application user."""
    password: pulumi.Input[str]
    """The application user's password; pass a Pulumi secret."""
    allowed_clients: list[PeerArgs]
    """The only pods that may query ClickHouse (HTTP)."""
    keeper_nodes: NotRequired[int]
    """Keeper members, odd and at least 3 (default 3)."""
    keeper_storage_gb: NotRequired[int]
    """Raft log and snapshot volume per Keeper member (default 20)."""
    keeper_cpu: NotRequired[str]
    """CPU request and limit per Keeper member (default `500m`)."""
    keeper_memory: NotRequired[str]
    """Memory request and limit per Keeper member (default `1Gi`)."""
    cluster_name: NotRequired[str]
    """Name of the ClickHouse cluster, for `ON CLUSTER` DDL (default `analytics`)."""
    storage_class: NotRequired[str]
    """StorageClass of the volumes (default `gp3`, the cluster's encrypted one)."""


def server_labels(name: str) -> dict[str, str]:
    """The labels every ClickHouse server pod of the component `name` carries."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/part-of": "eduscale",
    }


def _validate(args: AnalyticsArgs) -> None:
    if int(args["shards"]) < 1 or int(args["replicas_per_shard"]) < 1:
        raise ValueError(
            f"shards and replicas_per_shard must be at least 1, got {args['shards']} and "
            f"{args['replicas_per_shard']}"
        )
    for field in ("database", "username", "cluster_name"):
        value = str(args.get(field, "analytics"))
        if not _IDENTIFIER.match(value):
            raise ValueError(
                f"{field} {value!r} must be a lower-case identifier (letters, digits, _)"
            )
    check_pinned(args["image"])
    check_pinned(args["keeper_image"])


class Analytics(pulumi.ComponentResource):
    """A ClickHouse cluster (shards x replicas) with ClickHouse Keeper, on Kubernetes."""

    endpoint: pulumi.Output[str]
    """In-cluster HTTP endpoint, e.g. `http://clickhouse.eduscale.svc.cluster.local:8123`."""
    url: pulumi.Output[str]
    """`endpoint` followed by `/<database>`: what clients are given."""
    cluster_name: pulumi.Output[str]
    """The cluster's name, for `ON CLUSTER` DDL and Distributed tables."""
    database: pulumi.Output[str]
    """The application's database."""
    username: pulumi.Output[str]
    """The application user."""
    credentials_secret_name: pulumi.Output[str]
    """The Secret holding `username` and `password` (read it with `secretKeyRef`)."""
    namespace: pulumi.Output[str]
    """The namespace it runs in."""

    def __init__(
        self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(ANALYTICS.token, name, None, ANALYTICS.options(opts))
        _validate(args)
        shards, replicas = int(args["shards"]), int(args["replicas_per_shard"])
        cluster = args.get("cluster_name", "analytics")
        storage_class = args.get("storage_class", "gp3")
        namespace = args["namespace"]
        labels = server_labels(name)
        child = pulumi.ResourceOptions(parent=self)
        headless = f"{name}-headless"

        keeper_hosts = declare_keeper(
            f"{name}-keeper",
            {
                "image": args["keeper_image"],
                "nodes": int(args.get("keeper_nodes", 3)),
                "storage_gb": int(args.get("keeper_storage_gb", 20)),
                "storage_class": storage_class,
                "cpu": args.get("keeper_cpu", "500m"),
                "memory": args.get("keeper_memory", "1Gi"),
            },
            namespace=namespace,
            server_labels=labels,
            parent=self,
        )
        secret = self._credentials(name, args, labels)
        server_hosts = pulumi.Output.from_input(namespace).apply(
            lambda ns: [
                [f"{name}-shard{s}-{r}.{headless}.{ns}.svc.cluster.local" for r in range(replicas)]
                for s in range(shards)
            ]
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"namespace": namespace, "labels": labels},
            data={
                "server.xml": pulumi.Output.all(server_hosts, keeper_hosts).apply(
                    lambda hosts: server_config(
                        cluster=cluster, shards=hosts[0], keeper_hosts=hosts[1]
                    )
                ),
                "users.xml": users_config(username=args["username"], database=args["database"]),
            },
            opts=child,
        )
        ports: list[k8s.core.v1.ServicePortArgsDict] = [
            {"name": "http", "port": HTTP_PORT, "target_port": "http"}
        ]
        peer_discovery_service(
            name,
            namespace,
            labels,
            [
                *ports,
                {"name": "native", "port": NATIVE_PORT, "target_port": "native"},
                {"name": "interserver", "port": INTERSERVER_PORT, "target_port": "interserver"},
            ],
            self,
        )
        client = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={"type": "ClusterIP", "selector": labels, "ports": ports},
            opts=child,
        )
        for shard in range(shards):
            shard_name = f"{name}-shard{shard}"
            shard_labels = {**labels, "eduscale.io/clickhouse-shard": str(shard)}
            container = _server_container(args, shard, secret, headless)
            k8s.apps.v1.StatefulSet(
                f"{shard_name}-statefulset",
                metadata={"name": shard_name, "namespace": namespace, "labels": shard_labels},
                spec={
                    "service_name": headless,
                    "replicas": replicas,
                    "pod_management_policy": "Parallel",
                    "update_strategy": {"type": "RollingUpdate"},
                    "selector": {"match_labels": shard_labels},
                    "template": {
                        "metadata": {"labels": shard_labels},
                        "spec": {
                            "security_context": pod_security(),
                            "automount_service_account_token": False,
                            "termination_grace_period_seconds": 120,
                            "affinity": one_per_node(shard_labels),
                            "topology_spread_constraints": spread_over_zones_and_nodes(
                                shard_labels
                            ),
                            "containers": [container],
                            "volumes": [
                                {
                                    "name": "server-config",
                                    "config_map": {
                                        "name": config.metadata.name,
                                        "items": [{"key": "server.xml", "path": "eduscale.xml"}],
                                    },
                                },
                                {
                                    "name": "users-config",
                                    "config_map": {
                                        "name": config.metadata.name,
                                        "items": [{"key": "users.xml", "path": "eduscale.xml"}],
                                    },
                                },
                                {"name": "tmp", "empty_dir": {"size_limit": "1Gi"}},
                            ],
                        },
                    },
                    "volume_claim_templates": [
                        volume_claim(shard_labels, storage_class, int(args["storage_gb"]))
                    ],
                },
                opts=child,
            )
            # Per shard: every shard keeps all but one of its replicas through a drain.
            disruption_budget(shard_name, namespace, shard_labels, self)
        _network_policy(name, namespace, labels, args["allowed_clients"], parent=self)

        self.endpoint = pulumi.Output.concat(
            "http://", client.metadata.name, ".", client.metadata.namespace,
            f".svc.cluster.local:{HTTP_PORT}",
        )  # fmt: skip
        self.url = pulumi.Output.concat(self.endpoint, "/", args["database"])
        self.cluster_name = pulumi.Output.from_input(cluster)
        self.database = pulumi.Output.from_input(args["database"])
        self.username = pulumi.Output.from_input(args["username"])
        self.credentials_secret_name = secret.metadata.name
        self.namespace = pulumi.Output.from_input(namespace)
        self.register_outputs({
            "endpoint": self.endpoint, "url": self.url, "cluster_name": self.cluster_name,
            "database": self.database, "username": self.username,
            "credentials_secret_name": self.credentials_secret_name,
            "namespace": self.namespace,
        })  # fmt: skip

    def _credentials(
        self, name: str, args: AnalyticsArgs, labels: dict[str, str]
    ) -> k8s.core.v1.Secret:
        """The Secret with the user's credentials and the cluster's internal secrets."""
        child = pulumi.ResourceOptions(parent=self)
        password = pulumi.Output.secret(args["password"])
        cluster_secret = random.RandomPassword(
            f"{name}-cluster-secret", length=48, special=False, opts=child
        )
        interserver = random.RandomPassword(
            f"{name}-interserver-password", length=48, special=False, opts=child
        )
        return k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={
                "name": f"{name}-credentials",
                "namespace": args["namespace"],
                "labels": labels,
            },
            type="Opaque",
            string_data={
                USERNAME_KEY: args["username"],
                PASSWORD_KEY: password,
                "password-sha256": password.apply(
                    lambda value: hashlib.sha256(value.encode()).hexdigest()
                ),
                "cluster-secret": cluster_secret.result,
                "interserver-password": interserver.result,
            },
            opts=child,
        )


def _from_secret(variable: str, secret: k8s.core.v1.Secret, key: str) -> EnvVarArgsDict:
    return {
        "name": variable,
        "value_from": {"secret_key_ref": {"name": secret.metadata.name, "key": key}},
    }


def _server_container(
    args: AnalyticsArgs, shard: int, secret: k8s.core.v1.Secret, headless: str
) -> ContainerArgsDict:
    resources = {"cpu": args["cpu"], "memory": args["memory"]}
    own_host = pulumi.Output.concat(
        "$(POD_NAME).", headless, ".", args["namespace"], ".svc.cluster.local"
    )
    return {
        "name": "clickhouse",
        "image": args["image"],
        "image_pull_policy": "IfNotPresent",
        # The server itself, not the image's entry point: that one writes users files at
        # start, which a read-only root filesystem (rightly) refuses.
        "command": ["/usr/bin/clickhouse-server", f"--config-file={_CONFIG}/config.xml"],
        "env": [
            {"name": "POD_NAME", "value_from": {"field_ref": {"field_path": "metadata.name"}}},
            {"name": SHARD_ENV, "value": str(shard)},
            {"name": REPLICA_ENV, "value": "$(POD_NAME)"},
            {"name": INTERSERVER_HOST_ENV, "value": own_host},
            _from_secret(PASSWORD_SHA256_ENV, secret, "password-sha256"),
            _from_secret(CLUSTER_SECRET_ENV, secret, "cluster-secret"),
            _from_secret(INTERSERVER_PASSWORD_ENV, secret, "interserver-password"),
        ],
        "ports": [
            {"name": "http", "container_port": HTTP_PORT, "protocol": "TCP"},
            {"name": "native", "container_port": NATIVE_PORT, "protocol": "TCP"},
            {"name": "interserver", "container_port": INTERSERVER_PORT, "protocol": "TCP"},
            {"name": "metrics", "container_port": METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": {"requests": resources, "limits": resources},
        # Loading parts after a restart can take minutes; liveness waits for the start.
        "startup_probe": {
            "tcp_socket": {"port": "native"},
            "period_seconds": 10,
            "failure_threshold": 60,
        },
        "readiness_probe": {
            "http_get": {"path": "/ping", "port": "http"},
            "period_seconds": 5,
            "failure_threshold": 3,
        },
        "liveness_probe": {
            "tcp_socket": {"port": "native"},
            "period_seconds": 10,
            "failure_threshold": 6,
        },
        "security_context": restricted_container_context(),
        "volume_mounts": [
            {"name": "data", "mount_path": _DATA},
            {"name": "server-config", "mount_path": f"{_CONFIG}/config.d", "read_only": True},
            {"name": "users-config", "mount_path": f"{_CONFIG}/users.d", "read_only": True},
            {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108 (an emptyDir)
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
    servers: NetworkPolicyPeerArgsDict = {"pod_selector": {"match_labels": labels}}
    keeper: NetworkPolicyPeerArgsDict = {
        "pod_selector": {"match_labels": {"app.kubernetes.io/name": f"{name}-keeper"}}
    }
    internal: list[NetworkPolicyPortArgsDict] = [
        {"port": p, "protocol": "TCP"} for p in (NATIVE_PORT, INTERSERVER_PORT)
    ]
    ingress: list[NetworkPolicyIngressRuleArgsDict] = []
    # An empty `from` would admit every pod: with no clients, there is no client rule.
    if clients:
        ingress.append(
            {
                "from_": [
                    {
                        "namespace_selector": {
                            "match_labels": {"kubernetes.io/metadata.name": c["namespace"]}
                        },
                        "pod_selector": {"match_labels": c["labels"]},
                    }
                    for c in clients
                ],
                "ports": [{"port": HTTP_PORT, "protocol": "TCP"}],
            }
        )
    ingress.append({"from_": [servers], "ports": internal})
    spec: NetworkPolicySpecArgsDict = {
        "pod_selector": {"match_labels": labels},
        "policy_types": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": [
            dns_egress(),
            {"to": [servers], "ports": internal},
            {"to": [keeper], "ports": [{"port": KEEPER_PORT, "protocol": "TCP"}]},
        ],
    }
    k8s.networking.v1.NetworkPolicy(
        f"{name}-network-policy",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent),
    )
