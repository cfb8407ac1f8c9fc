"""RDS rules: a passing fixture, and failing mutations (absent and false) of each."""

from typing import Any

import pytest
from conftest import PROJECT_DIR
from policy_harness import policy_resource, resource_violations, stack_violations

RDS = "aws:rds/instance:Instance"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/abc"
WRITER: dict[str, Any] = {
    "identifier": "db-writer",
    "storageEncrypted": True,
    "kmsKeyId": KEY,
    "publiclyAccessible": False,
    "multiAz": True,
    "backupRetentionPeriod": 14,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
    "iamDatabaseAuthenticationEnabled": True,
    "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
    "performanceInsightsEnabled": True,
    "performanceInsightsKmsKeyId": KEY,
    "autoMinorVersionUpgrade": True,
    "caCertIdentifier": "rds-ca-rsa2048-g1",
    "parameterGroupName": "pg",
}
REPLICA = {**{k: v for k, v in WRITER.items() if k not in {"multiAz", "backupRetentionPeriod",
           "deletionProtection", "skipFinalSnapshot"}}, "replicateSourceDb": "db-writer"}  # fmt: skip

CASES = [
    ("rds-storage-encrypted-cmk", "storageEncrypted", False, "not encrypted"),
    ("rds-storage-encrypted-cmk", "kmsKeyId", None, "AWS-managed key"),
    ("rds-not-public", "publiclyAccessible", True, "publicly accessible"),
    ("rds-writer-multi-az", "multiAz", False, "no Multi-AZ standby"),
    ("rds-backup-retention", "backupRetentionPeriod", 3, "kept 3 days; at least 7"),
    ("rds-deletion-protection", "deletionProtection", False, "deletion protection is off"),
    ("rds-deletion-protection", "skipFinalSnapshot", True, "no final snapshot"),
    ("rds-iam-auth", "iamDatabaseAuthenticationEnabled", False, "IAM database authentication"),
    ("rds-log-exports", "enabledCloudwatchLogsExports", ["postgresql"], "upgrade"),
    (
        "rds-performance-insights-kms",
        "performanceInsightsEnabled",
        False,
        "Performance Insights is off",
    ),
    ("rds-performance-insights-kms", "performanceInsightsKmsKeyId", None, "customer-managed key"),
    ("rds-maintenance", "autoMinorVersionUpgrade", False, "minor version upgrades are off"),
    ("rds-maintenance", "caCertIdentifier", "rds-ca-2019", "current RDS CA"),
]


AWS_DEFAULT_SAFE = {"publiclyAccessible", "autoMinorVersionUpgrade"}
"""Flags whose AWS default (when absent) is the safe value."""


def without(props: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != key}


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES}))
def test_a_compliant_writer_passes(name: str):
    assert resource_violations(name, RDS, WRITER) == []


@pytest.mark.parametrize(("name", "key", "bad", "message"), CASES)
def test_a_bad_value_fails(name: str, key: str, bad: object, message: str):
    (found,) = resource_violations(name, RDS, {**WRITER, key: bad})
    assert message in found


@pytest.mark.parametrize(
    ("name", "key"), sorted({(c[0], c[1]) for c in CASES if c[1] not in AWS_DEFAULT_SAFE})
)
def test_an_absent_value_fails(name: str, key: str):
    assert resource_violations(name, RDS, without(WRITER, key))


def test_absent_public_flag_is_private():
    assert resource_violations("rds-not-public", RDS, without(WRITER, "publiclyAccessible")) == []


@pytest.mark.parametrize(
    "name", ["rds-writer-multi-az", "rds-backup-retention", "rds-deletion-protection"]
)
def test_replicas_are_exempt_from_writer_only_rules(name: str):
    assert resource_violations(name, RDS, REPLICA) == []


def test_replicas_still_must_be_encrypted_and_private():
    assert resource_violations(
        "rds-storage-encrypted-cmk", RDS, {**REPLICA, "storageEncrypted": False}
    )
    assert resource_violations("rds-not-public", RDS, {**REPLICA, "publiclyAccessible": True})


def test_thresholds_follow_the_environments_config():
    assert (
        resource_violations(
            "rds-backup-retention", RDS, {**WRITER, "backupRetentionPeriod": 1}, {"minimumDays": 1}
        )
        == []
    )
    assert (
        resource_violations(
            "rds-writer-multi-az", RDS, {**WRITER, "multiAz": False}, {"required": False}
        )
        == []
    )


def test_other_resource_types_are_ignored():
    assert (
        resource_violations(
            "rds-not-public", "aws:ec2/instance:Instance", {"publiclyAccessible": True}
        )
        == []
    )


def test_an_unknown_value_during_preview_is_not_a_pass():
    from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError  # noqa: PLC0415

    with pytest.raises(UnknownValueError):
        resource_violations(
            "rds-not-public", RDS, {**WRITER, "publiclyAccessible": UNKNOWN_BOOLEAN_VALUE}
        )


def stack(replicas: list[dict[str, Any]], ssl: str = "1") -> list[Any]:
    group = policy_resource("aws:rds/parameterGroup:ParameterGroup",
                            {"name": "pg", "parameters": [{"name": "rds.force_ssl", "value": ssl}]}, "urn:pg")  # fmt: skip
    writer = policy_resource(RDS, WRITER, "urn:writer")
    return [group, writer] + [
        policy_resource(RDS, r, f"urn:replica-{i}", [writer]) for i, r in enumerate(replicas)
    ]


SPREAD = [
    {**REPLICA, "availabilityZone": "eu-west-1b"},
    {**REPLICA, "availabilityZone": "eu-west-1c"},
]


def test_force_ssl_passes_when_the_parameter_group_sets_it():
    assert stack_violations("rds-force-ssl", stack(SPREAD)) == []


@pytest.mark.parametrize("ssl", ["0", ""])
def test_force_ssl_fails_without_it(ssl: str):
    found = stack_violations("rds-force-ssl", stack(SPREAD, ssl=ssl))
    assert {urn for _, urn in found} == {"urn:writer", "urn:replica-0", "urn:replica-1"}


def test_replicas_spread_over_azs_pass():
    assert stack_violations("rds-read-replicas", stack(SPREAD)) == []


def test_too_few_replicas_fail():
    ((message, urn),) = stack_violations("rds-read-replicas", stack(SPREAD[:1]))
    assert urn == "urn:writer"
    assert "1 read replica(s) of this writer; at least 2 required" in message


def test_replicas_in_one_az_fail():
    same = [{**REPLICA, "availabilityZone": "eu-west-1b"}] * 2
    ((message, _),) = stack_violations("rds-read-replicas", stack(same))
    assert "one availability zone" in message


def test_the_shipped_policy_configs_name_real_rules():
    from infra.policy_check import load_policy_config  # noqa: PLC0415
    from policies.catalogue import ALL_POLICIES  # noqa: PLC0415

    for stack_name in ("dev", "prod"):
        load_policy_config(PROJECT_DIR / "policies" / "config" / f"{stack_name}.json", ALL_POLICIES)
