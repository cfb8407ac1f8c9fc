"""Rules for the Redis cache: encryption, AUTH, failover, snapshots, slow-log delivery.

The cache holds sessions, profiles and rate-limit counters: readable data worth stealing
and state whose loss is felt, so encryption, AUTH and failover are mandatory. Dev runs a
single node with no snapshots; it relaxes the failover and snapshot rules through their
config (`requireMultiAz`, `minimumDays`) rather than by weakening the rules for prod.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies.support import config_value, get, is_true, resource_rule

__all__ = ["POLICIES"]

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
LOG_DESTINATIONS = frozenset({"cloudwatch-logs", "kinesis-firehose"})


def _has_key(props: Mapping[str, Any], key: str) -> bool:
    """Whether `key` is declared, without reading its value.

    Iterating the SDK's proxy yields keys without checking them, so a secret is never read
    (it cannot leak into a message) and a token generated in the same preview, still
    unknown, counts as present: its value is not what the rule asks about.
    """
    return any(name == key for name in props)


def _replicas(props: Mapping[str, Any]) -> int:
    """Replicas per shard: `replicasPerNodeGroup` (cluster mode) or `numCacheClusters` - 1."""
    per_group = get(props, "replicasPerNodeGroup")
    if isinstance(per_group, int):
        return per_group
    clusters = get(props, "numCacheClusters")
    return clusters - 1 if isinstance(clusters, int) and clusters > 0 else 0


def _at_rest(args: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(args.props, "atRestEncryptionEnabled"):
        yield "data at rest is not encrypted (atRestEncryptionEnabled is not true)"
    elif not get(args.props, "kmsKeyId"):
        yield "data at rest is encrypted with the AWS-managed key, not a customer-managed KMS key"


def _in_transit(args: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(args.props, "transitEncryptionEnabled"):
        yield "in-transit encryption is off (transitEncryptionEnabled is not true)"
    elif get(args.props, "transitEncryptionMode") != "required":
        # Absent is not safe: the mode is computed, so a group once set to "preferred"
        # keeps accepting plain text after the property is dropped.
        yield "transitEncryptionMode is not 'required': clients may still connect in plain text"


def _auth(args: ResourceValidationArgs) -> Iterable[str]:
    if _has_key(args.props, "authToken"):
        return
    if not get(args.props, "userGroupIds"):
        yield "no AUTH: neither authToken nor userGroupIds is set, so any client in reach connects"


def _failover(args: ResourceValidationArgs) -> Iterable[str]:
    if _replicas(args.props) < 1:
        if config_value(args, "requireMultiAz", default=True):
            yield "no replicas: a node or AZ failure loses its shard until it is rebuilt"
        return
    if not is_true(args.props, "automaticFailoverEnabled"):
        yield "automatic failover is off: a failed primary is not replaced by its replica"
    if not is_true(args.props, "multiAzEnabled"):
        yield "Multi-AZ is off: replicas may share the primary's AZ and fail with it"


def _snapshots(args: ResourceValidationArgs) -> Iterable[str]:
    minimum = int(config_value(args, "minimumDays", default=1))
    days = get(args.props, "snapshotRetentionLimit")
    kept = days if isinstance(days, int) else 0
    if kept < minimum:
        yield f"snapshots are kept {kept} days; at least {minimum} required"


def _slow_log(args: ResourceValidationArgs) -> Iterable[str]:
    delivered = any(
        get(c, "logType") == "slow-log"
        and get(c, "destinationType") in LOG_DESTINATIONS
        and get(c, "destination")
        for c in get(args.props, "logDeliveryConfigurations") or []
    )
    if not delivered:
        yield "the slow log is not delivered to CloudWatch Logs or Firehose"


POLICIES = [
    resource_rule(
        "redis-at-rest-encryption",
        "Cached data (sessions, profiles) and its snapshots must be encrypted at rest with our "
        "own KMS key, so access can be audited and revoked.",
        types=[REPLICATION_GROUP], severity=Severity.HIGH, mandatory=True, check=_at_rest,
        fix="Set atRestEncryptionEnabled = true and kmsKeyId to the Cache component's key.",
        scanners=["CKV_AWS_29", "CKV_AWS_191", "AWS-0045"],
    ),
    resource_rule(
        "redis-transit-encryption",
        "Redis traffic carries session data and the AUTH token; it must be TLS-only, not "
        "'preferred' (which still accepts plain text).",
        types=[REPLICATION_GROUP], severity=Severity.HIGH, mandatory=True, check=_in_transit,
        fix="Set transitEncryptionEnabled = true and transitEncryptionMode = 'required'.",
        scanners=["CKV_AWS_30", "AWS-0051"],
    ),
    resource_rule(
        "redis-auth",
        "Network reach alone must not grant access to the cache: clients present an AUTH "
        "token or an RBAC user.",
        types=[REPLICATION_GROUP], severity=Severity.HIGH, mandatory=True, check=_auth,
        fix="Pass the Cache component an auth_token (set as authToken), or attach userGroupIds.",
        scanners=["CKV_AWS_31"],
    ),
    resource_rule(
        "redis-failover-multi-az",
        "A cache node or AZ outage must fail over to a replica in another AZ instead of "
        "dropping a shard; replicas without failover and Multi-AZ give no such protection.",
        types=[REPLICATION_GROUP], severity=Severity.HIGH, mandatory=True, check=_failover,
        fix="Raise eduscale:cache.replicasPerShard to at least 1 (the component then turns "
        "on automaticFailoverEnabled and multiAzEnabled).",
        scanners=["CKV2_AWS_50"],
        config={"requireMultiAz": {"type": "boolean", "default": True}},
    ),
    resource_rule(
        "redis-snapshot-retention",
        "Daily snapshots let the cache be restored warm after a bad flush or a lost shard, "
        "instead of stampeding the database.",
        types=[REPLICATION_GROUP], severity=Severity.MEDIUM, mandatory=True, check=_snapshots,
        fix="Raise snapshotRetentionLimit (eduscale:cache.snapshotRetentionDays).",
        scanners=["CKV_AWS_134", "AWS-0050"],
        config={"minimumDays": {"type": "integer", "default": 1, "minimum": 0, "maximum": 35}},
    ),
    resource_rule(
        "redis-slow-log-delivery",
        "Slow commands (KEYS, big values) stall every client of a shard; the slow log, "
        "delivered off the node, is how they are found.",
        types=[REPLICATION_GROUP], severity=Severity.LOW, mandatory=False, check=_slow_log,
        fix="Add a logDeliveryConfigurations entry with logType 'slow-log' to a log group.",
        scanners=["derived"],
    ),
]  # fmt: skip
