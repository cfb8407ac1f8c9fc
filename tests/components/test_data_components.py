"""The data components used directly, as another team would, with bad args refused early."""

from typing import Any

import pulumi
import pytest
from conftest import run_program

from components.cache import Cache
from components.database import Database
from components.event_bus import EventBus, EventBusArgs

NETWORK: dict[str, Any] = {
    "vpc_id": "vpc-1",
    "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
    "allowed_security_group_ids": ["sg-app"],
}
TOPIC = {"name": "jobs", "partitions": 6, "retention_ms": 1000, "dlq_retention_ms": 2000}


def event_bus(**changes: Any) -> EventBus:
    args: EventBusArgs = {
        **NETWORK,  # type: ignore[typeddict-item]
        "kafka_version": "3.9.x",
        "broker_instance_type": "kafka.m7g.large",
        "broker_count": 3,
        "replication_factor": 3,
        "min_insync_replicas": 2,
        "topics": [TOPIC],
    }
    args.update(changes)  # type: ignore[typeddict-item]
    return EventBus("bus", args)


def test_a_foreign_stack_gets_the_dlq_twin_of_its_own_topic():
    graph = run_program(event_bus)
    names = {t.inputs["name"]: t.inputs for t in graph.of_type("aws:msk/topic:Topic")}
    assert set(names) == {"jobs", "jobs.dlq"}
    assert names["jobs.dlq"]["partitionCount"] == 6


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replication_factor": 4}, r"replication_factor \(4\) cannot exceed broker_count \(3\)"),
        ({"min_insync_replicas": 3}, r"min_insync_replicas \(3\) must be below"),
        ({"topics": [{**TOPIC, "name": "jobs.dlq"}]}, "dead-letter topics are created automatically"),
        ({"topics": [TOPIC, TOPIC]}, "topic names must be unique"),
        ({"topics": [{**TOPIC, "dlq_retention_ms": 10}]}, "dlq_retention_ms must be at least"),
        ({"broker_count": 4, "replication_factor": 3}, r"broker_count \(4\) must be a multiple of the number of subnets \(3\)"),
    ],
)  # fmt: skip
def test_event_bus_refuses_args_that_lose_data_or_that_msk_rejects(
    changes: dict[str, Any], message: str
):
    with pytest.raises(ValueError, match=message):
        run_program(lambda: event_bus(**changes))


def test_database_refuses_too_many_replicas():
    with pytest.raises(ValueError, match="replica_count is 16; allowed is 0 to 15"):
        run_program(
            lambda: Database(
                "db",
                {
                    **NETWORK,  # type: ignore[typeddict-item]
                    "availability_zones": ["a", "b", "c"],
                    "engine_version": "17.4",
                    "instance_class": "db.r7g.large",
                    "replica_count": 16,
                },
            )
        )


@pytest.mark.parametrize(
    ("shards", "replicas", "message"),
    [(0, 1, "num_shards is 0"), (1, 6, "replicas_per_shard is 6")],
)
def test_cache_refuses_impossible_shapes(shards: int, replicas: int, message: str):
    with pytest.raises(ValueError, match=message):
        run_program(
            lambda: Cache(
                "cache",
                {
                    **NETWORK,  # type: ignore[typeddict-item]
                    "auth_token": pulumi.Output.secret("x" * 32),
                    "node_type": "cache.t4g.small",
                    "num_shards": shards,
                    "replicas_per_shard": replicas,
                },
            )
        )


def test_a_cache_without_replicas_is_not_multi_az():
    graph = run_program(
        lambda: Cache(
            "cache",
            {
                **NETWORK,  # type: ignore[typeddict-item]
                "auth_token": "x" * 32,
                "node_type": "cache.t4g.small",
                "num_shards": 1,
                "replicas_per_shard": 0,
            },
        )
    )
    group = graph.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert group.inputs["multiAzEnabled"] is False
    # A plain-text token given by a caller is still handled as a secret.
    assert group.inputs["authToken"] == "[secret]"
