"""Rules for RDS PostgreSQL: encryption, exposure, durability, and the read-replica topology.

A replica (an instance with `replicateSourceDb`) inherits encryption and backups from its
writer and cannot be Multi-AZ or keep backups of its own, so the writer-only rules skip it;
the encryption and exposure rules apply to both.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policies.support import config_value, get, is_true, resource_rule, stack_rule

__all__ = ["POLICIES"]

RDS = "aws:rds/instance:Instance"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RDS_LOG_PREFIXES = ("/aws/rds/instance/", "/aws/rds/cluster/")
"""Where RDS exports a database's logs (`/aws/rds/instance/<id>/postgresql`)."""
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
MODERN_CAS = frozenset({"rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"})


def _is_replica(props: Mapping[str, Any]) -> bool:
    return get(props, "replicateSourceDb") is not None


def _encrypted(args: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(args.props, "storageEncrypted"):
        yield "storage is not encrypted (storageEncrypted is not true)"
    elif not get(args.props, "kmsKeyId"):
        yield "storage is encrypted with the AWS-managed key, not a customer-managed KMS key"


def _not_public(args: ResourceValidationArgs) -> Iterable[str]:
    if get(args.props, "publiclyAccessible") is True:
        yield "the instance is publicly accessible"


def _multi_az(args: ResourceValidationArgs) -> Iterable[str]:
    if _is_replica(args.props) or not config_value(args, "required", default=True):
        return
    if not is_true(args.props, "multiAz"):
        yield "the writer has no Multi-AZ standby: an AZ outage stops every write"


def _backups(args: ResourceValidationArgs) -> Iterable[str]:
    if _is_replica(args.props):
        return
    minimum = int(config_value(args, "minimumDays", default=7))
    days = get(args.props, "backupRetentionPeriod")
    if not isinstance(days, int) or days < minimum:
        yield f"backups are kept {days or 0} days; at least {minimum} are required"


def _deletion_protection(args: ResourceValidationArgs) -> Iterable[str]:
    if _is_replica(args.props) or not config_value(args, "required", default=True):
        return
    if not is_true(args.props, "deletionProtection"):
        yield "deletion protection is off"
    if get(args.props, "skipFinalSnapshot") is not False:
        yield "no final snapshot is taken on deletion (skipFinalSnapshot is not false)"


def _iam_auth(args: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(args.props, "iamDatabaseAuthenticationEnabled"):
        yield "IAM database authentication is off"


def _log_exports(args: ResourceValidationArgs) -> Iterable[str]:
    exported = set(get(args.props, "enabledCloudwatchLogsExports") or [])
    missing = {"postgresql", "upgrade"} - exported
    if missing:
        yield f"logs not exported to CloudWatch: {', '.join(sorted(missing))}"


def _log_retention(args: ResourceValidationArgs) -> Iterable[str]:
    name = str(get(args.props, "name") or "")
    if not name.startswith(RDS_LOG_PREFIXES):
        return
    minimum = int(config_value(args, "minimumDays", default=365))
    days = get(args.props, "retentionInDays")
    if days in {None, 0}:
        return  # never expires
    if not isinstance(days, int) or days < minimum:
        yield (
            f"{name} keeps the database's logs {days} days; the connection log is the only "
            f"access trail, and at least {minimum} days are required"
        )


def _performance_insights(args: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(args.props, "performanceInsightsEnabled"):
        yield "Performance Insights is off"
    elif not get(args.props, "performanceInsightsKmsKeyId"):
        yield "Performance Insights data is not encrypted with a customer-managed key"


def _maintenance(args: ResourceValidationArgs) -> Iterable[str]:
    if get(args.props, "autoMinorVersionUpgrade") is False:
        yield "automatic minor version upgrades are off"
    if get(args.props, "caCertIdentifier") not in MODERN_CAS:
        yield "no current RDS CA is pinned (caCertIdentifier); clients may trust an expiring CA"


def _force_ssl(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    groups = {get(r.props, "name"): r for r in args.resources if r.resource_type == PARAMETER_GROUP}
    for resource in args.resources:
        if resource.resource_type != RDS:
            continue
        group = groups.get(get(resource.props, "parameterGroupName"))
        parameters = (
            {get(p, "name"): get(p, "value") for p in get(group.props, "parameters") or []}
            if group
            else {}
        )
        if parameters.get("rds.force_ssl") != "1":
            message = "its parameter group does not set rds.force_ssl = 1: plain text is allowed"
            yield message, resource.urn


def _replicas(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    minimum = int(config_value(args, "minimumReplicas", default=2))
    instances = [r for r in args.resources if r.resource_type == RDS]
    writers = [r for r in instances if not _is_replica(r.props)]
    for writer in writers:
        identifier = get(writer.props, "identifier")
        replicas = [
            r for r in instances
            if _is_replica(r.props)
            and (get(r.props, "replicateSourceDb") == identifier or writer in r.dependencies)
        ]  # fmt: skip
        if len(replicas) < minimum:
            yield (
                f"{len(replicas)} read replica(s) of this writer; at least {minimum} required",
                writer.urn,
            )
            continue
        zones = {get(r.props, "availabilityZone") for r in replicas}
        if minimum > 1 and len(zones) < 2:  # noqa: PLR2004
            yield "all read replicas are in one availability zone", writer.urn
        for replica in replicas:
            if not is_true(replica.props, "storageEncrypted"):
                yield "a read replica is not encrypted", replica.urn


POLICIES = [
    resource_rule(
        "rds-storage-encrypted-cmk",
        "Database storage must be encrypted with a customer-managed KMS key, so access to the "
        "data can be audited and revoked per store.",
        types=[RDS], severity=Severity.HIGH, mandatory=True, check=_encrypted,
        fix="Set storageEncrypted = true and kmsKeyId to the Database component's key.",
        scanners=["CKV_AWS_16", "AWS-0080", "AWS-0079"],
    ),
    resource_rule(
        "rds-not-public",
        "A database must never be reachable from the internet.",
        types=[RDS], severity=Severity.CRITICAL, mandatory=True, check=_not_public,
        fix="Set publiclyAccessible = false and keep the instance in private subnets.",
        scanners=["CKV_AWS_17", "AWS-0180"],
    ),
    resource_rule(
        "rds-writer-multi-az",
        "The writer needs a synchronous standby in another AZ, or an AZ outage stops every write.",
        types=[RDS], severity=Severity.HIGH, mandatory=True, check=_multi_az,
        fix="Set multiAz = true on the writer (eduscale:database.multiAz).",
        scanners=["CKV_AWS_157"],
        config={"required": {"type": "boolean", "default": True}},
    ),
    resource_rule(
        "rds-backup-retention",
        "Automated backups must cover enough days to recover from a mistake noticed late.",
        types=[RDS], severity=Severity.HIGH, mandatory=True, check=_backups,
        fix="Raise backupRetentionPeriod (eduscale:database.backupRetentionDays).",
        scanners=["CKV_AWS_133", "AWS-0077"],
        config={"minimumDays": {"type": "integer", "default": 7, "minimum": 1, "maximum": 35}},
    ),
    resource_rule(
        "rds-deletion-protection",
        "A production database must refuse deletion and leave a final snapshot if deleted.",
        types=[RDS], severity=Severity.HIGH, mandatory=True, check=_deletion_protection,
        fix="Set deletionProtection = true and skipFinalSnapshot = false "
        "(eduscale:database.deletionProtection).",
        scanners=["CKV_AWS_293", "AWS-0177"],
        config={"required": {"type": "boolean", "default": True}},
    ),
    resource_rule(
        "rds-iam-auth",
        "IAM database authentication lets services connect with short-lived tokens instead "
        "of long-lived passwords.",
        types=[RDS], severity=Severity.MEDIUM, mandatory=True, check=_iam_auth,
        fix="Set iamDatabaseAuthenticationEnabled = true.",
        scanners=["CKV_AWS_161", "AWS-0176"],
    ),
    resource_rule(
        "rds-log-exports",
        "PostgreSQL and upgrade logs must reach CloudWatch for incident analysis.",
        types=[RDS], severity=Severity.MEDIUM, mandatory=False, check=_log_exports,
        fix="Set enabledCloudwatchLogsExports = [postgresql, upgrade].",
        scanners=["CKV_AWS_129"],
    ),
    resource_rule(
        "rds-log-retention",
        "The PostgreSQL log records every connection and disconnection: the database's only "
        "access trail. It is kept as long as the other audit logs (VPC flow logs, the EKS "
        "audit log), a year in production.",
        types=[LOG_GROUP], severity=Severity.MEDIUM, mandatory=True, check=_log_retention,
        fix="Raise retentionInDays of the /aws/rds/... log groups "
        "(eduscale:database.logRetentionDays).",
        scanners=["CKV_AWS_338"],
        config={"minimumDays": {"type": "integer", "default": 365, "minimum": 1}},
    ),
    resource_rule(
        "rds-performance-insights-kms",
        "Performance Insights finds slow queries; its data holds query text, so it is "
        "encrypted with our key.",
        types=[RDS], severity=Severity.LOW, mandatory=False, check=_performance_insights,
        fix="Set performanceInsightsEnabled = true and performanceInsightsKmsKeyId.",
        scanners=["CKV_AWS_353", "AWS-0133", "AWS-0078"],
    ),
    resource_rule(
        "rds-maintenance",
        "Minor versions carry security fixes, and clients must validate against a current CA.",
        types=[RDS], severity=Severity.LOW, mandatory=False, check=_maintenance,
        fix="Keep autoMinorVersionUpgrade on and pin caCertIdentifier to rds-ca-rsa2048-g1.",
        scanners=["CKV_AWS_226", "CKV_AWS_211"],
    ),
    stack_rule(
        "rds-force-ssl",
        "Every database connection must be encrypted; the parameter group enforces it "
        "server-side, whatever the client asks for.",
        severity=Severity.HIGH, mandatory=True, check=_force_ssl,
        fix="Set rds.force_ssl = 1 in the instance's parameter group.",
        scanners=["CKV2_AWS_69"],
    ),
    stack_rule(
        "rds-read-replicas",
        "Reporting and analytics read only from replicas; the writer needs enough of them, "
        "spread over AZs, and encrypted.",
        severity=Severity.HIGH, mandatory=True, check=_replicas,
        fix="Raise eduscale:database.replicaCount; replicas are spread over the AZs.",
        scanners=["derived"],
        config={"minimumReplicas": {"type": "integer", "default": 2, "minimum": 0}},
    ),
]  # fmt: skip
