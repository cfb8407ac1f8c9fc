"""The read replicas can have a class of their own, sized for reads, apart from the writer's."""

from conftest import run_program

from components.database import Database, DatabaseArgs
from infra.graph import Graph, RecordedResource

RDS = "aws:rds/instance:Instance"
ARGS: DatabaseArgs = {
    "vpc_id": "vpc-1",
    "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
    "availability_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    "allowed_security_group_ids": ["sg-app"],
    "engine_version": "17.4",
    "instance_class": "db.r7g.4xlarge",
    "replica_count": 2,
}


def writer(graph: Graph) -> RecordedResource:
    (found,) = [r for r in graph.of_type(RDS) if "replicateSourceDb" not in r.inputs]
    return found


def replicas(graph: Graph) -> list[RecordedResource]:
    """The replicas in the order of their names (registration order varies)."""
    found = [r for r in graph.of_type(RDS) if "replicateSourceDb" in r.inputs]
    return sorted(found, key=lambda r: r.name)


def test_replicas_get_their_class_and_the_writer_keeps_its_own():
    graph = run_program(
        lambda: Database("db", {**ARGS, "replica_instance_class": "db.r7g.2xlarge"})
    )
    assert writer(graph).inputs["instanceClass"] == "db.r7g.4xlarge"
    assert len(replicas(graph)) == 2
    assert {r.inputs["instanceClass"] for r in replicas(graph)} == {"db.r7g.2xlarge"}


def test_without_a_replica_class_the_replicas_share_the_writers():
    graph = run_program(lambda: Database("db", ARGS))
    assert writer(graph).inputs["instanceClass"] == "db.r7g.4xlarge"
    assert len(replicas(graph)) == 2
    assert {r.inputs["instanceClass"] for r in replicas(graph)} == {"db.r7g.4xlarge"}


def test_only_the_class_differs_between_a_replica_and_one_of_the_writers_class():
    """The replica class replaces `instance_class` alone: encryption, parameters,
    monitoring and the rest stay what every replica gets."""
    default = replicas(run_program(lambda: Database("db", ARGS)))[0].inputs
    smaller = replicas(
        run_program(lambda: Database("db", {**ARGS, "replica_instance_class": "db.r7g.xlarge"}))
    )[0].inputs
    assert set(default) == set(smaller)
    assert {k for k in default if default[k] != smaller[k]} == {"instanceClass"}
