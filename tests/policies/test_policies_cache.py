"""Redis rules: a passing fixture, failing mutations (absent and wrong) of each, and the
prod graph broken through `eduscale policy`."""

import json
from pathlib import Path
from typing import Any

import pytest
from policy_harness import mutated_graph_file, resource_violations, resources_of

from infra.cli import main
from infra.graph import Graph
from infra.policy_check import check_graph
from policies import cache

GROUP_TYPE = "aws:elasticache/replicationGroup:ReplicationGroup"
TOKEN = "do-not-print-this-token-0123456789"
GROUP: dict[str, Any] = {
    "replicationGroupId": "eduscale-test-cache",
    "engine": "redis",
    "numNodeGroups": 3,
    "replicasPerNodeGroup": 2,
    "atRestEncryptionEnabled": True,
    "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/cache",
    "transitEncryptionEnabled": True,
    "transitEncryptionMode": "required",
    "authToken": TOKEN,
    "automaticFailoverEnabled": True,
    "multiAzEnabled": True,
    "snapshotRetentionLimit": 7,
    "logDeliveryConfigurations": [
        {
            "logType": "slow-log",
            "destination": "eduscale-test-cache-slow-log",
            "destinationType": "cloudwatch-logs",
            "logFormat": "json",
        }
    ],
}
ENGINE_LOG_ONLY = [{**GROUP["logDeliveryConfigurations"][0], "logType": "engine-log"}]

CASES = [
    ("redis-at-rest-encryption", "atRestEncryptionEnabled", False, "not encrypted"),
    ("redis-at-rest-encryption", "kmsKeyId", "", "AWS-managed key"),
    ("redis-transit-encryption", "transitEncryptionEnabled", False, "in-transit encryption is off"),
    ("redis-transit-encryption", "transitEncryptionMode", "preferred", "not 'required'"),
    ("redis-auth", "userGroupIds", [], "no AUTH"),
    ("redis-failover-multi-az", "replicasPerNodeGroup", 0, "no replicas"),
    ("redis-failover-multi-az", "automaticFailoverEnabled", False, "automatic failover is off"),
    ("redis-failover-multi-az", "multiAzEnabled", False, "Multi-AZ is off"),
    ("redis-snapshot-retention", "snapshotRetentionLimit", 0, "kept 0 days; at least 1"),
    ("redis-slow-log-delivery", "logDeliveryConfigurations", ENGINE_LOG_ONLY, "slow log"),
]
RULES = sorted({c[0] for c in CASES})
ABSENT = [
    ("redis-at-rest-encryption", "atRestEncryptionEnabled"),
    ("redis-at-rest-encryption", "kmsKeyId"),
    ("redis-transit-encryption", "transitEncryptionEnabled"),
    ("redis-transit-encryption", "transitEncryptionMode"),
    ("redis-auth", "authToken"),
    ("redis-failover-multi-az", "replicasPerNodeGroup"),
    ("redis-failover-multi-az", "automaticFailoverEnabled"),
    ("redis-failover-multi-az", "multiAzEnabled"),
    ("redis-snapshot-retention", "snapshotRetentionLimit"),
    ("redis-slow-log-delivery", "logDeliveryConfigurations"),
]
DEV_CONFIG: dict[str, dict[str, Any]] = {
    "redis-failover-multi-az": {"requireMultiAz": False},
    "redis-snapshot-retention": {"minimumDays": 0},
}
"""The lines dev's policy config needs: one node, no snapshots."""


def without(props: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k not in keys}


@pytest.mark.parametrize("name", RULES)
def test_a_compliant_group_passes(name: str):
    assert resource_violations(name, GROUP_TYPE, GROUP) == []


@pytest.mark.parametrize(("name", "key", "bad", "message"), CASES)
def test_a_bad_value_fails(name: str, key: str, bad: object, message: str):
    props = {**GROUP, key: bad}
    if name == "redis-auth":  # RBAC only counts when there is no token
        props = without(props, "authToken")
    (found,) = resource_violations(name, GROUP_TYPE, props)
    assert message in found


@pytest.mark.parametrize(("name", "key"), ABSENT)
def test_an_absent_value_fails(name: str, key: str):
    assert resource_violations(name, GROUP_TYPE, without(GROUP, key))


def test_rbac_user_groups_are_auth_too():
    props = {**without(GROUP, "authToken"), "userGroupIds": ["eduscale-users"]}
    assert resource_violations("redis-auth", GROUP_TYPE, props) == []


def test_no_message_ever_contains_the_token():
    broken = {
        **GROUP,
        "atRestEncryptionEnabled": False,
        "transitEncryptionEnabled": False,
        "replicasPerNodeGroup": 0,
        "snapshotRetentionLimit": 0,
        "logDeliveryConfigurations": [],
    }
    messages = [m for name in RULES for m in resource_violations(name, GROUP_TYPE, broken)]
    assert len(messages) >= 4
    assert all(TOKEN not in m for m in messages)


def test_a_token_unknown_during_preview_is_still_a_token():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE  # noqa: PLC0415

    props = {**GROUP, "authToken": UNKNOWN_STRING_VALUE}
    assert resource_violations("redis-auth", GROUP_TYPE, props) == []


def test_an_unknown_value_during_preview_is_not_a_pass():
    from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError  # noqa: PLC0415

    with pytest.raises(UnknownValueError):
        resource_violations(
            "redis-transit-encryption",
            GROUP_TYPE,
            {**GROUP, "transitEncryptionEnabled": UNKNOWN_BOOLEAN_VALUE},
        )


def test_a_non_cluster_group_counts_replicas_from_its_nodes():
    base = without(GROUP, "numNodeGroups", "replicasPerNodeGroup")
    assert (
        resource_violations("redis-failover-multi-az", GROUP_TYPE, {**base, "numCacheClusters": 2})
        == []
    )
    (found,) = resource_violations(
        "redis-failover-multi-az", GROUP_TYPE, {**base, "numCacheClusters": 1}
    )
    assert "no replicas" in found


def test_dev_may_run_one_node_without_multi_az():
    single = {**GROUP, "replicasPerNodeGroup": 0, "multiAzEnabled": False}
    assert (
        resource_violations(
            "redis-failover-multi-az", GROUP_TYPE, single, {"requireMultiAz": False}
        )
        == []
    )


def test_replicas_without_multi_az_fail_even_where_it_is_not_required():
    (found,) = resource_violations(
        "redis-failover-multi-az",
        GROUP_TYPE,
        {**GROUP, "multiAzEnabled": False},
        {"requireMultiAz": False},
    )
    assert "Multi-AZ is off" in found


def test_the_snapshot_minimum_follows_the_environments_config():
    no_snapshots = {**GROUP, "snapshotRetentionLimit": 0}
    assert (
        resource_violations(
            "redis-snapshot-retention", GROUP_TYPE, no_snapshots, {"minimumDays": 0}
        )
        == []
    )
    (found,) = resource_violations(
        "redis-snapshot-retention", GROUP_TYPE, GROUP, {"minimumDays": 14}
    )
    assert "kept 7 days; at least 14" in found


def test_other_resource_types_are_ignored():
    assert (
        resource_violations(
            "redis-transit-encryption",
            "aws:elasticache/cluster:Cluster",
            {"transitEncryptionEnabled": False},
        )
        == []
    )


def test_the_dev_config_lines_let_the_dev_graph_pass(dev_graph: Graph):
    found = check_graph(dev_graph, cache.POLICIES, DEV_CONFIG)
    assert [v for v in found if v.mandatory] == []


def test_redis_transit_encryption_off_fails_the_prod_graph(
    prod_graph: Graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    def plain_text(document: dict[str, Any]) -> None:
        for group in resources_of(document, GROUP_TYPE):
            group["inputs"]["transitEncryptionEnabled"] = False

    path = mutated_graph_file(prod_graph, tmp_path / "graph.json", plain_text)
    report = tmp_path / "violations.json"
    assert main(["policy", "--graph", str(path), "--json", str(report)]) == 1
    assert "[mandatory] redis-transit-encryption" in capsys.readouterr().out
    violations = json.loads(report.read_text())
    assert "redis-transit-encryption" in {v["rule"] for v in violations if v["mandatory"]}
