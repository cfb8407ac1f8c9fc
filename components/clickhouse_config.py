"""The configuration files of ClickHouse and ClickHouse Keeper, rendered as XML.

Pure functions of the topology (host names, cluster name, database), so they can be read
and tested without a cluster. No credential is ever written here: every secret value is a
`from_env` reference that ClickHouse resolves at start from the pod's environment, which
the pod fills from a Kubernetes Secret. The files therefore live in a ConfigMap safely.
"""

from collections.abc import Sequence
from xml.etree import ElementTree as ET

__all__ = [
    "CLUSTER_SECRET_ENV",
    "HTTP_PORT",
    "INTERSERVER_HOST_ENV",
    "INTERSERVER_PASSWORD_ENV",
    "INTERSERVER_PORT",
    "KEEPER_CONTROL_PORT",
    "KEEPER_PORT",
    "KEEPER_RAFT_PORT",
    "KEEPER_SERVER_ID_ENV",
    "METRICS_PORT",
    "NATIVE_PORT",
    "PASSWORD_SHA256_ENV",
    "REPLICA_ENV",
    "SHARD_ENV",
    "keeper_config",
    "server_config",
    "users_config",
]

HTTP_PORT = 8123
"""Clients (the sink and the reports) speak HTTP."""
NATIVE_PORT = 9000
"""Distributed queries between shards."""
INTERSERVER_PORT = 9009
"""Replicas fetch parts from each other."""
KEEPER_PORT = 9181
"""ClickHouse servers talk to Keeper (the ZooKeeper protocol)."""
KEEPER_RAFT_PORT = 9234
"""Keeper nodes replicate their log (Raft)."""
KEEPER_CONTROL_PORT = 9182
"""Keeper's HTTP control endpoint (`/ready`)."""
METRICS_PORT = 9363
"""Prometheus metrics (`/metrics`), of servers and Keeper nodes alike."""

# Names of environment variables (filled from the Secret), not secrets themselves.
PASSWORD_SHA256_ENV = "CLICKHOUSE_PASSWORD_SHA256"  # noqa: S105
CLUSTER_SECRET_ENV = "CLICKHOUSE_CLUSTER_SECRET"  # noqa: S105
INTERSERVER_PASSWORD_ENV = "CLICKHOUSE_INTERSERVER_PASSWORD"  # noqa: S105
INTERSERVER_HOST_ENV = "CLICKHOUSE_INTERSERVER_HOST"
SHARD_ENV = "CLICKHOUSE_SHARD"
REPLICA_ENV = "CLICKHOUSE_REPLICA"
KEEPER_SERVER_ID_ENV = "KEEPER_SERVER_ID"

_INTERSERVER_USER = "interserver"
_PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.1", "::1")
"""Where the application user may log in from: pod and loopback addresses only."""


def _child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _render(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _console_logger(root: ET.Element) -> None:
    # Logs go to stdout only: the root filesystem is read-only and the node ships stdout.
    logger = _child(root, "logger")
    _child(logger, "level", "information")
    _child(logger, "console", "1")
    _child(logger, "log", remove="1")
    _child(logger, "errorlog", remove="1")


def _prometheus(root: ET.Element) -> None:
    """Serve metrics, events and asynchronous metrics at `/metrics` on `METRICS_PORT`."""
    prometheus = _child(root, "prometheus")
    _child(prometheus, "endpoint", "/metrics")
    _child(prometheus, "port", str(METRICS_PORT))
    for kind in ("metrics", "events", "asynchronous_metrics"):
        _child(prometheus, kind, "true")


def server_config(
    *, cluster: str, shards: Sequence[Sequence[str]], keeper_hosts: Sequence[str]
) -> str:
    """`config.d` of every server: ports, the cluster, Keeper and the per-pod macros.

    `shards` lists, per shard, the DNS names of its replicas. The shard and replica macros
    and the address replicas fetch from are read from the pod's environment, so one file
    serves every pod.
    """
    if not shards or any(not replicas for replicas in shards):
        raise ValueError("a cluster needs at least one shard, each with at least one replica")
    if not keeper_hosts:
        raise ValueError("replicated tables need Keeper: keeper_hosts is empty")
    root = ET.Element("clickhouse")
    _console_logger(root)
    _child(root, "listen_host", "0.0.0.0")  # noqa: S104 (fenced by the NetworkPolicy)
    _child(root, "http_port", str(HTTP_PORT))
    _child(root, "tcp_port", str(NATIVE_PORT))
    _child(root, "interserver_http_port", str(INTERSERVER_PORT))
    _prometheus(root)
    _child(root, "interserver_http_host", from_env=INTERSERVER_HOST_ENV)
    credentials = _child(root, "interserver_http_credentials")
    _child(credentials, "user", _INTERSERVER_USER)
    _child(credentials, "password", from_env=INTERSERVER_PASSWORD_ENV)
    for unused in ("mysql_port", "postgresql_port", "grpc_port"):
        _child(root, unused, remove="1")
    servers = _child(_child(root, "remote_servers", replace="1"), cluster)
    # Shards authenticate each other's queries with a shared secret, as the initial user.
    _child(servers, "secret", from_env=CLUSTER_SECRET_ENV)
    for replicas in shards:
        shard = _child(servers, "shard")
        _child(shard, "internal_replication", "true")
        for host in replicas:
            replica = _child(shard, "replica")
            _child(replica, "host", host)
            _child(replica, "port", str(NATIVE_PORT))
    keeper = _child(root, "zookeeper")
    for host in keeper_hosts:
        node = _child(keeper, "node")
        _child(node, "host", host)
        _child(node, "port", str(KEEPER_PORT))
    macros = _child(root, "macros")
    _child(macros, "cluster", cluster)
    _child(macros, "shard", from_env=SHARD_ENV)
    _child(macros, "replica", from_env=REPLICA_ENV)
    _child(root, "default_replica_path", "/clickhouse/tables/{shard}/{database}/{table}")
    _child(root, "default_replica_name", "{replica}")
    _child(_child(root, "distributed_ddl"), "path", "/clickhouse/task_queue/ddl")
    return _render(root)


def users_config(*, username: str, database: str) -> str:
    """`users.d`: the application user (password by SHA-256 from the environment), no default.

    The passwordless `default` user of the image is removed. The application user may do
    anything within `database` (the sink creates its schema at start) and run `ON CLUSTER`
    DDL, and nothing else.
    """
    root = ET.Element("clickhouse")
    users = _child(root, "users")
    _child(users, "default", remove="remove")
    user = _child(users, username)
    _child(user, "password_sha256_hex", from_env=PASSWORD_SHA256_ENV)
    networks = _child(user, "networks")
    for network in _PRIVATE_NETWORKS:
        _child(networks, "ip", network)
    _child(user, "profile", "default")
    _child(user, "quota", "default")
    grants = _child(user, "grants")
    _child(grants, "query", f"GRANT ALL ON {database}.*")
    _child(grants, "query", "GRANT CLUSTER ON *.*")
    return _render(root)


def keeper_config(*, peers: Sequence[str], data_path: str) -> str:
    """`keeper_config.xml` of every Keeper node: the Raft members by DNS name.

    Member `i` (1-based) is `peers[i - 1]`; each pod learns its own id from the
    environment, so one file serves all of them.
    """
    if len(peers) % 2 == 0:
        raise ValueError(f"Keeper needs an odd number of members for a majority, got {len(peers)}")
    root = ET.Element("clickhouse")
    _console_logger(root)
    _child(root, "listen_host", "0.0.0.0")  # noqa: S104 (fenced by the NetworkPolicy)
    _child(root, "path", data_path)
    _prometheus(root)
    server = _child(root, "keeper_server")
    _child(server, "tcp_port", str(KEEPER_PORT))
    _child(server, "server_id", from_env=KEEPER_SERVER_ID_ENV)
    _child(server, "log_storage_path", f"{data_path}/coordination/log")
    _child(server, "snapshot_storage_path", f"{data_path}/coordination/snapshots")
    settings = _child(server, "coordination_settings")
    _child(settings, "operation_timeout_ms", "10000")
    _child(settings, "session_timeout_ms", "30000")
    _child(settings, "raft_logs_level", "warning")
    control = _child(server, "http_control")
    _child(control, "port", str(KEEPER_CONTROL_PORT))
    _child(_child(control, "readiness"), "endpoint", "/ready")
    raft = _child(server, "raft_configuration")
    for member, host in enumerate(peers, start=1):
        entry = _child(raft, "server")
        _child(entry, "id", str(member))
        _child(entry, "hostname", host)
        _child(entry, "port", str(KEEPER_RAFT_PORT))
    return _render(root)
