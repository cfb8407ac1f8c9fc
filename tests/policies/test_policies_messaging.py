"""MSK rules: a passing cluster, failing mutations (absent and wrong) of each, the
configuration and dead-letter stack rules, and the prod graph broken through the CLI."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from policy_harness import (
    mutated_graph_file,
    policy_resource,
    resource_violations,
    resources_of,
    stack_violations,
)
from pulumi_policy import PolicyResource

from infra.cli import main
from infra.graph import Graph
from infra.policy_check import check_graph
from policies import messaging

CLUSTER_TYPE = "aws:msk/cluster:Cluster"
CONFIGURATION_TYPE = "aws:msk/configuration:Configuration"
TOPIC_TYPE = "aws:msk/topic:Topic"
SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]
CLUSTER: dict[str, Any] = {
    "clusterName": "eduscale-test-bus",
    "numberOfBrokerNodes": 6,
    "brokerNodeGroupInfo": {
        "clientSubnets": SUBNETS,
        "connectivityInfo": {"publicAccess": {"type": "DISABLED"}},
    },
    "encryptionInfo": {
        "encryptionInTransit": {"clientBroker": "TLS", "inCluster": True},
        "encryptionAtRestKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/bus",
    },
    "clientAuthentication": {"sasl": {"iam": True}, "unauthenticated": False},
    "loggingInfo": {"brokerLogs": {"cloudwatchLogs": {"enabled": True, "logGroup": "bus"}}},
    "configurationInfo": {
        "arn": "arn:aws:kafka:eu-west-1:123456789012:configuration/eduscale-test-bus/1a2b",
        "revision": 1,
    },
}
TRANSIT = "encryptionInfo.encryptionInTransit"
PUBLIC = "brokerNodeGroupInfo.connectivityInfo.publicAccess.type"
CASES = [
    ("msk-tls-only", f"{TRANSIT}.clientBroker", "TLS_PLAINTEXT", "allows plain text"),
    ("msk-tls-only", f"{TRANSIT}.clientBroker", "PLAINTEXT", "allows plain text"),
    ("msk-tls-only", f"{TRANSIT}.inCluster", False, "between brokers is not encrypted"),
    ("msk-at-rest-cmk", "encryptionInfo.encryptionAtRestKmsKeyArn", "", "AWS-managed key"),
    ("msk-iam-auth", "clientAuthentication.sasl.iam", False, "IAM client authentication"),
    ("msk-iam-auth", "clientAuthentication.unauthenticated", True, "unauthenticated"),
    ("msk-broker-logging", "loggingInfo.brokerLogs.cloudwatchLogs.enabled", False, "broker logs"),
    ("msk-private", PUBLIC, "SERVICE_PROVIDED_EIPS", "reachable from the internet"),
    ("msk-broker-count", "numberOfBrokerNodes", 2, "2 broker(s); at least 3"),
    ("msk-broker-count", "numberOfBrokerNodes", 4, "do not spread evenly over 3"),
]
ABSENT_FAILS = [
    ("msk-at-rest-cmk", "encryptionInfo.encryptionAtRestKmsKeyArn"),
    ("msk-iam-auth", "clientAuthentication.sasl.iam"),
    ("msk-iam-auth", "clientAuthentication"),
    ("msk-broker-logging", "loggingInfo"),
    ("msk-broker-count", "numberOfBrokerNodes"),
]
ABSENT_IS_SAFE = [  # AWS defaults: TLS, in-cluster encryption, no public access
    ("msk-tls-only", f"{TRANSIT}.clientBroker"),
    ("msk-tls-only", f"{TRANSIT}.inCluster"),
    ("msk-tls-only", "encryptionInfo.encryptionInTransit"),
    ("msk-iam-auth", "clientAuthentication.unauthenticated"),
    ("msk-private", "brokerNodeGroupInfo.connectivityInfo"),
]
DEV_CONFIG: dict[str, dict[str, Any]] = {
    "msk-broker-count": {"minimumBrokers": 2},
    "msk-configuration-durability": {"minimumReplicationFactor": 2, "minimumInsyncReplicas": 1},
}
"""The lines dev's policy config needs: two brokers over two AZs, rf 2, min ISR 1."""


def edited(props: dict[str, Any], path: str, value: object = None) -> dict[str, Any]:
    """A copy of `props` with `path` set to `value`, or removed when `value` is None."""
    result = copy.deepcopy(props)
    *parents, last = path.split(".")
    node = result
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return result


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES}))
def test_a_compliant_cluster_passes(name: str):
    assert resource_violations(name, CLUSTER_TYPE, CLUSTER) == []


@pytest.mark.parametrize(("name", "path", "bad", "message"), CASES)
def test_a_bad_value_fails(name: str, path: str, bad: object, message: str):
    (found,) = resource_violations(name, CLUSTER_TYPE, edited(CLUSTER, path, bad))
    assert message in found


@pytest.mark.parametrize(("name", "path"), ABSENT_FAILS)
def test_an_absent_value_fails(name: str, path: str):
    assert resource_violations(name, CLUSTER_TYPE, edited(CLUSTER, path))


@pytest.mark.parametrize(("name", "path"), ABSENT_IS_SAFE)
def test_an_absent_value_with_a_safe_aws_default_passes(name: str, path: str):
    assert resource_violations(name, CLUSTER_TYPE, edited(CLUSTER, path)) == []


def test_any_enabled_log_sink_counts():
    s3_only = {**CLUSTER, "loggingInfo": {"brokerLogs": {"s3": {"enabled": True, "bucket": "b"}}}}
    assert resource_violations("msk-broker-logging", CLUSTER_TYPE, s3_only) == []


def test_the_broker_minimum_follows_the_environments_config():
    dev = edited(edited(CLUSTER, "numberOfBrokerNodes", 2), "brokerNodeGroupInfo.clientSubnets",
                 SUBNETS[:2])  # fmt: skip
    assert resource_violations("msk-broker-count", CLUSTER_TYPE, dev, {"minimumBrokers": 2}) == []
    assert resource_violations("msk-broker-count", CLUSTER_TYPE, dev)


def test_an_unknown_value_during_preview_is_not_a_pass():
    from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError  # noqa: PLC0415

    props = edited(CLUSTER, "clientAuthentication.unauthenticated", UNKNOWN_BOOLEAN_VALUE)
    with pytest.raises(UnknownValueError):
        resource_violations("msk-iam-auth", CLUSTER_TYPE, props)


def test_other_resource_types_are_ignored():
    assert (
        resource_violations("msk-private", "aws:msk/serverlessCluster:ServerlessCluster", {"x": 1})
        == []
    )


PROPERTIES = (
    "# durable writes\nauto.create.topics.enable = false\ndefault.replication.factor=3\n"
    "min.insync.replicas: 2\nunclean.leader.election.enable=false\n"
)


def bus(properties: str = PROPERTIES, *, linked: bool = True) -> list[PolicyResource]:
    configuration = policy_resource(
        CONFIGURATION_TYPE,
        {"name": "eduscale-test-bus", "serverProperties": properties},
        "urn:configuration",
    )
    cluster = policy_resource(CLUSTER_TYPE, CLUSTER, "urn:cluster",
                              [configuration] if linked else [])  # fmt: skip
    return [configuration, cluster]


def test_a_durable_configuration_passes():
    assert stack_violations("msk-configuration-durability", bus()) == []


def test_the_configuration_is_found_by_its_arn_without_a_dependency():
    assert stack_violations("msk-configuration-durability", bus(linked=False)) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("auto.create.topics.enable = false", "auto.create.topics.enable=true", "auto.create"),
        ("auto.create.topics.enable = false", "", "auto.create"),
        ("default.replication.factor=3", "default.replication.factor=2", "factor is 2; at least 3"),
        ("default.replication.factor=3", "", "factor is not set"),
        ("min.insync.replicas: 2", "min.insync.replicas=1", "replicas is 1; at least 2"),
        ("min.insync.replicas: 2", "", "replicas is not set"),
        ("min.insync.replicas: 2", "min.insync.replicas=3", "not below the replication factor"),
    ],
)
def test_a_weak_configuration_fails(old: str, new: str, message: str):
    found = stack_violations("msk-configuration-durability", bus(PROPERTIES.replace(old, new)))
    assert {urn for _, urn in found} == {"urn:cluster"}
    assert any(message in text for text, _ in found)


def test_durability_thresholds_follow_the_environments_config():
    dev = "auto.create.topics.enable=false\ndefault.replication.factor=2\nmin.insync.replicas=1\n"
    config = DEV_CONFIG["msk-configuration-durability"]
    assert stack_violations("msk-configuration-durability", bus(dev), config) == []


def test_a_cluster_on_msk_defaults_fails():
    cluster = policy_resource(CLUSTER_TYPE, edited(CLUSTER, "configurationInfo"), "urn:cluster")
    ((found, _),) = stack_violations("msk-configuration-durability", [cluster])
    assert "no configuration" in found


def test_a_configuration_outside_the_stack_cannot_be_trusted():
    ((found, _),) = stack_violations("msk-configuration-durability", bus(linked=False)[1:])
    assert "not declared in this stack" in found


def topic(name: str, partitions: int, retention: str | None, cluster: str = "a") -> dict[str, Any]:
    configs = {"cleanup.policy": "delete"} | ({"retention.ms": retention} if retention else {})
    return {"name": name, "partitionCount": partitions, "replicationFactor": 3,
            "clusterArn": f"arn:aws:kafka:eu-west-1:123456789012:cluster/{cluster}/1",
            "configs": json.dumps(configs)}  # fmt: skip


WEEK, MONTH = "604800000", "2419200000"


def topics(*props: dict[str, Any]) -> list[PolicyResource]:
    return [policy_resource(TOPIC_TYPE, p, f"urn:topic:{p['name']}") for p in props]


def dlq_violations(*props: dict[str, Any]) -> list[tuple[str, str | None]]:
    return stack_violations("msk-topic-dlq", topics(*props))


def test_work_topics_with_dlq_twins_pass():
    assert dlq_violations(topic("jobs", 12, WEEK), topic("jobs.dlq", 12, MONTH),
                          topic("docs", 3, None), topic("docs.dlq", 6, None)) == []  # fmt: skip


def test_a_work_topic_without_a_dlq_fails():
    ((found, urn),) = dlq_violations(topic("jobs", 12, WEEK), topic("docs.dlq", 12, MONTH))
    assert urn == "urn:topic:jobs"
    assert "no jobs.dlq" in found


def test_a_dlq_on_another_cluster_does_not_count():
    ((found, _),) = dlq_violations(topic("jobs", 12, WEEK), topic("jobs.dlq", 12, MONTH, "b"))
    assert "no jobs.dlq" in found


def test_a_dlq_with_fewer_partitions_fails():
    ((found, urn),) = dlq_violations(topic("jobs", 12, WEEK), topic("jobs.dlq", 6, MONTH))
    assert urn == "urn:topic:jobs.dlq"
    assert "fewer partitions" in found


@pytest.mark.parametrize(
    ("work", "dlq", "ok"),
    [
        (MONTH, WEEK, False),
        (WEEK, None, False),  # the DLQ falls back to the broker default: unknown
        (None, WEEK, False),  # the work topic's broker default could be longer
        ("-1", MONTH, False),  # forever needs forever
        (MONTH, "-1", True),
        ("-1", "-1", True),
        (WEEK, WEEK, True),
    ],
)
def test_a_dlq_keeps_messages_at_least_as_long(work: str | None, dlq: str | None, ok: bool):
    found = dlq_violations(topic("jobs", 12, work), topic("jobs.dlq", 12, dlq))
    assert (found == []) is ok
    assert all("as long as jobs" in message for message, _ in found)


def test_unreadable_topic_configs_fail():
    broken = {**topic("jobs.dlq", 12, MONTH), "configs": "retention.ms=1"}
    ((found, _),) = dlq_violations(topic("jobs", 12, WEEK), broken)
    assert "not JSON" in found


def test_the_dev_config_lines_let_the_dev_graph_pass(dev_graph: Graph):
    found = check_graph(dev_graph, messaging.POLICIES, DEV_CONFIG)
    assert [v for v in found if v.mandatory] == []


def remove_a_dlq(document: dict[str, Any]) -> None:
    document["resources"] = [
        r for r in document["resources"]
        if not (r["type"] == TOPIC_TYPE and r["inputs"]["name"] == "documents.uploaded.dlq")
    ]  # fmt: skip


def open_unauthenticated_access(document: dict[str, Any]) -> None:
    for cluster in resources_of(document, CLUSTER_TYPE):
        cluster["inputs"]["clientAuthentication"]["unauthenticated"] = True


MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("DLQ topic removed", remove_a_dlq, "msk-topic-dlq"),
    ("unauthenticated access on", open_unauthenticated_access, "msk-iam-auth"),
]


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_prod_bus_fails_naming_the_rule(
    prod_graph: Graph,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, Callable[[dict[str, Any]], None], str],
):
    what, mutate, rule = case
    path = mutated_graph_file(prod_graph, tmp_path / "graph.json", mutate)
    report = tmp_path / "violations.json"
    assert main(["policy", "--graph", str(path), "--json", str(report)]) == 1, what
    assert f"[mandatory] {rule}" in capsys.readouterr().out
    assert rule in {v["rule"] for v in json.loads(report.read_text()) if v["mandatory"]}
