"""CloudWatch log groups for the platform's own logs: encrypted, and kept a bounded time.

A log group that AWS creates on first write has no KMS key and keeps logs forever; declaring
it ourselves, before the service writes to it, fixes both.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags

__all__ = ["encrypted_log_group"]


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
