"""The reader endpoint leaves a failed replica out: each weighted record is health-checked.

Route 53 cannot probe a private RDS endpoint, so each record's health check follows a
CloudWatch alarm on its own replica's ReplicaLag that also fires when the replica
publishes nothing (down). The rule `route53-weighted-health-check` keeps it so.
"""

from pathlib import Path
from typing import Any

import pytest
from conftest import run_program
from policy_harness import policy_cli_on, policy_resource, resources_of, stack_violations

from components.database import Database, DatabaseArgs
from infra.graph import Graph, RecordedResource

RULE = "route53-weighted-health-check"
RDS = "aws:rds/instance:Instance"
RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ARGS: DatabaseArgs = {
    "vpc_id": "vpc-1",
    "subnet_ids": ["subnet-a", "subnet-b"],
    "availability_zones": ["eu-west-1a", "eu-west-1b"],
    "allowed_security_group_ids": ["sg-app"],
    "engine_version": "17.4",
    "instance_class": "db.r7g.large",
    "replica_count": 2,
}


def linked(graph: Graph, resource: RecordedResource, key: str) -> RecordedResource:
    (urn,) = resource.property_dependencies[key]
    (found,) = [r for r in graph if r.urn == urn]
    return found


def test_each_reader_record_is_health_checked_on_its_own_replica(stack_graph: Graph):
    records = stack_graph.of_type(RECORD)
    replicas = [r for r in stack_graph.of_type(RDS) if "replicateSourceDb" in r.inputs]
    assert len(records) == len(replicas) >= 1
    seen_checks = set()
    for record in records:
        assert record.inputs["weightedRoutingPolicies"] == [{"weight": 1}]
        replica = linked(stack_graph, record, "records")
        check = linked(stack_graph, record, "healthCheckId")
        seen_checks.add(check.urn)
        assert check.type == HEALTH_CHECK
        assert check.inputs["type"] == "CLOUDWATCH_METRIC"
        assert check.inputs["cloudwatchAlarmRegion"] == "eu-west-1"
        assert check.inputs["insufficientDataHealthStatus"] == "LastKnownStatus"
        alarm = linked(stack_graph, check, "cloudwatchAlarmName")
        assert check.inputs["cloudwatchAlarmName"] == alarm.inputs["name"]
        assert linked(stack_graph, alarm, "dimensions").urn == replica.urn
        assert alarm.inputs["dimensions"] == {"DBInstanceIdentifier": replica.inputs["identifier"]}
        assert alarm.inputs["namespace"] == "AWS/RDS"
        assert alarm.inputs["metricName"] == "ReplicaLag"
        assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm.inputs["threshold"] == 600
        assert alarm.inputs["treatMissingData"] == "breaching"
    assert len(seen_checks) == len(records)


def test_the_lag_threshold_is_an_argument_and_refused_when_absurd():
    graph = run_program(lambda: Database("db", {**ARGS, "replica_max_lag_seconds": 60}))
    assert {a.inputs["threshold"] for a in graph.of_type(ALARM)} == {60}
    assert len(graph.of_type(HEALTH_CHECK)) == 2
    with pytest.raises(ValueError, match="replica_max_lag_seconds is 5; allowed is 10 to 86400"):
        run_program(lambda: Database("db", {**ARGS, "replica_max_lag_seconds": 5}))


def test_without_replicas_there_is_no_reader_record_nor_health_check():
    graph = run_program(lambda: Database("db", {**ARGS, "replica_count": 0}))
    assert graph.of_type(RECORD) == []
    assert graph.of_type(HEALTH_CHECK) == []


# --- the rule ---------------------------------------------------------------------------


def reader_set(
    *,
    record: dict[str, Any] | None = None,
    check: dict[str, Any] | None = None,
    alarm: dict[str, Any] | None = None,
    alarm_watches_other: bool = False,
) -> list[Any]:
    urn = "urn:pulumi:test::eduscale::{}::{}"
    replica = policy_resource(RDS, {"identifier": "replica-1"}, urn.format(RDS, "replica-1"))
    other = policy_resource(RDS, {"identifier": "replica-2"}, urn.format(RDS, "replica-2"))
    alarm_resource = policy_resource(
        ALARM,
        {"name": "lag", "dimensions": {"DBInstanceIdentifier": "replica-1"},
         "treatMissingData": "breaching", **(alarm or {})},
        urn.format(ALARM, "lag"),
        [other if alarm_watches_other else replica],
    )  # fmt: skip
    check_resource = policy_resource(
        HEALTH_CHECK,
        {"type": "CLOUDWATCH_METRIC", "cloudwatchAlarmName": "lag", **(check or {})},
        urn.format(HEALTH_CHECK, "hc"),
        [alarm_resource],
    )
    record_resource = policy_resource(
        RECORD,
        {"name": "reader.db.internal", "type": "CNAME", "records": ["replica-1.rds"],
         "setIdentifier": "replica-1", "weightedRoutingPolicies": [{"weight": 1}],
         "healthCheckId": "hc-1", **(record or {})},
        urn.format(RECORD, "reader-1"),
        [replica, check_resource],
    )  # fmt: skip
    return [replica, other, alarm_resource, check_resource, record_resource]


def test_a_health_checked_reader_set_passes():
    assert stack_violations(RULE, reader_set()) == []


def test_a_weighted_record_without_a_health_check_fails():
    resources = reader_set()
    record = resources[-1]
    resources[-1] = policy_resource(
        RECORD, {k: v for k, v in record.props.items() if k != "healthCheckId"}, record.urn
    )
    ((message, urn),) = stack_violations(RULE, resources)
    assert "no health check" in message
    assert urn == record.urn


def test_an_alarm_that_calls_silence_healthy_fails():
    ((message, _),) = stack_violations(RULE, reader_set(alarm={"treatMissingData": "missing"}))
    assert "missing data" in message


def test_an_alarm_on_another_replica_fails():
    ((message, _),) = stack_violations(RULE, reader_set(alarm_watches_other=True))
    assert "another database instance" in message


def test_records_that_do_not_spread_traffic_need_no_health_check():
    simple = policy_resource(
        RECORD, {"name": "db.internal", "type": "CNAME", "records": ["w"]}, "urn:a::b::c"
    )
    assert stack_violations(RULE, [simple]) == []


def test_a_health_check_declared_elsewhere_is_taken_on_trust():
    record = policy_resource(
        RECORD,
        {"name": "r", "weightedRoutingPolicies": [{"weight": 1}], "healthCheckId": "abc-123"},
        "urn:a::b::r",
    )
    assert stack_violations(RULE, [record]) == []


def test_prod_with_a_reader_record_stripped_of_its_health_check_fails(
    prod_graph: Graph, tmp_path: Path
):
    def strip(document: dict[str, Any]) -> None:
        record = resources_of(document, RECORD)[0]
        del record["inputs"]["healthCheckId"]
        del record["property_dependencies"]["healthCheckId"]

    status, broken = policy_cli_on(prod_graph, tmp_path, strip)
    assert status == 1
    assert broken == {RULE}
