"""CloudWatch log groups for the platform's own logs: encrypted, and kept a bounded time.

A log group that AWS creates on first write has no KMS key and keeps logs forever; declaring
it ourselves, before the service writes to it, fixes both.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags

__all__ = ["RETENTION_DAYS", "encrypted_log_group", "retention_days"]

RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
     2922, 3288, 3653}
)  # fmt: skip
"""The retention periods CloudWatch Logs accepts (any other value fails at deploy)."""


def retention_days(arg: str, days: float) -> int:
    """`days` as a CloudWatch Logs retention period, or `ValueError` naming `arg`."""
    value = int(days)  # other languages pass numbers as floats
    if value not in RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in sorted(RETENTION_DAYS))
        raise ValueError(f"{arg} is {value}; CloudWatch Logs accepts only {allowed} (days)")
    return value


def encrypted_log_group(
    component: str,
    purpose: str,
    *,
    retention_days: int,
    key: aws.kms.Key,
    parent: pulumi.Resource,
    name: str | None = None,
) -> aws.cloudwatch.LogGroup:
    """Declare a log group for `component`'s `purpose`, encrypted with `key`.

    `name` overrides the physical name where the service dictates it (RDS writes to
    `/aws/rds/instance/<id>/<log>`).
    """
    group_name = name or physical_name(component, purpose)
    return aws.cloudwatch.LogGroup(
        f"{component}-{purpose}",
        name=group_name,
        retention_in_days=retention_days,
        kms_key_id=key.arn,
        tags=standard_tags(component, group_name),
        opts=pulumi.ResourceOptions(parent=parent),
    )
