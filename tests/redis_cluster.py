"""A real Redis Cluster for the cluster-mode tests: three primaries on loopback ports.

Started from the machine's `redis-server` and `redis-cli` (Debian's redis-server and
redis-tools packages; .ci/run installs them), each node in a directory of its own, with
a password (`requirepass`, as ElastiCache's AUTH token), and stopped afterwards.
`conftest.py` offers one for the session (`redis_cluster`); a test that kills a node
starts its own with `running_cluster`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from lanes import require_servers
from redis.cluster import RedisCluster
from redis.crc import key_slot

__all__ = ["Cluster", "running_cluster"]

PASSWORD = "cluster-secret"
_START_SECONDS = 20.0


@dataclass
class Cluster:
    """A running cluster: its nodes' ports and processes."""

    ports: list[int]
    processes: dict[int, subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        """REDIS_URL for the cluster: its first node, with the password."""
        return f"redis://:{PASSWORD}@127.0.0.1:{self.ports[0]}"

    def node(self, port: int) -> redis.Redis:
        """A plain client on one node (cluster commands, no redirects followed)."""
        return redis.Redis(host="127.0.0.1", port=port, password=PASSWORD)

    def client(self) -> RedisCluster:
        """redis-py's cluster client, as the app's other Redis calls use."""
        return RedisCluster.from_url(self.url)

    def owner(self, slot: int) -> int:
        """The port of the primary that owns `slot` now."""
        with self.node(self.ports[0]) as node:
            for first, last, primary, *_ in node.execute_command("CLUSTER SLOTS"):
                if first <= slot <= last:
                    return int(primary[1])
        raise AssertionError(f"no node owns slot {slot}")

    def key_on(self, port: int, prefix: str = "key") -> bytes:
        """A key, `prefix` then a number, whose slot `port` owns."""
        for number in range(100_000):
            key = f"{prefix}{number}".encode()
            if self.owner(key_slot(key)) == port:
                return key
        raise AssertionError(f"no key found for {port}")

    def node_id(self, port: int) -> str:
        """The cluster's id of the node on `port`."""
        with self.node(port) as node:
            node_id: bytes = node.execute_command("CLUSTER MYID")
        return node_id.decode()

    def move_slot(self, slot: int, to_port: int, *, finish: bool = True) -> None:
        """Migrate `slot` and its keys to `to_port`, as `redis-cli --cluster reshard` does.

        With `finish=False` the keys move but the slot stays MIGRATING on its owner and
        IMPORTING on `to_port`: the owner answers ASK for them.
        """
        from_port = self.owner(slot)
        source, target = self.node(from_port), self.node(to_port)
        try:
            target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", self.node_id(from_port))
            source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", self.node_id(to_port))
            while keys := source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                source.execute_command(
                    "MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "AUTH", PASSWORD, "KEYS", *keys
                )
            if finish:
                for port in (to_port, from_port, *self.ports):  # the target first
                    with self.node(port) as node:
                        node.execute_command("CLUSTER SETSLOT", slot, "NODE", self.node_id(to_port))
        finally:
            source.close()
            target.close()

    def finish_move(self, slot: int, to_port: int) -> None:
        """Assign a slot left migrating by `move_slot(finish=False)` to `to_port`."""
        for port in (to_port, *self.ports):
            with self.node(port) as node:
                node.execute_command("CLUSTER SETSLOT", slot, "NODE", self.node_id(to_port))

    def flush(self) -> None:
        """Empty every node."""
        for port in self.ports:
            if self.processes[port].poll() is None:
                with self.node(port) as node:
                    node.flushall()


def _free_port() -> int:
    """A loopback port free now, whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (Debian: apt-get install redis-server)")
    return path


def _wait_until_ok(cluster: Cluster, port: int) -> None:
    """Until the node on `port` answers and says cluster_state:ok."""
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        try:
            with cluster.node(port) as node:
                if node.execute_command("CLUSTER INFO").get("cluster_state") == "ok":
                    return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the test cluster's node {port} is not ready (its redis.log says why)")


@contextmanager
def running_cluster(directory: Path, nodes: int = 3) -> Iterator[Cluster]:
    """Start a cluster of `nodes` primaries in `directory`; kill it afterwards."""
    require_servers("a Redis cluster")
    server, cli = _program("redis-server"), _program("redis-cli")
    ports: list[int] = []
    while len(ports) < nodes:
        if (port := _free_port()) not in ports:
            ports.append(port)
    cluster = Cluster(ports, {})
    logs = []
    try:
        for port in ports:
            home = directory / f"node-{port}"
            home.mkdir()
            logs.append(log := (home / "redis.log").open("wb"))
            # fmt: off
            arguments = [
                server,
                "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", str(home / "nodes.conf"),
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(home), "--requirepass", PASSWORD, "--masterauth", PASSWORD,
            ]
            # fmt: on
            cluster.processes[port] = subprocess.Popen(
                arguments,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for port in ports:
            with cluster.node(port) as node:
                _wait_for_ping(node)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=_START_SECONDS,
            env={**os.environ, "REDISCLI_AUTH": PASSWORD},
        )
        for port in ports:
            _wait_until_ok(cluster, port)
        yield cluster
    finally:
        for process in cluster.processes.values():
            process.kill()
        for process in cluster.processes.values():
            process.wait()
        for log in logs:
            log.close()


def _wait_for_ping(node: redis.Redis) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        try:
            node.ping()
        except redis.ConnectionError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError("a node of the test cluster did not start (its redis.log says why)")
