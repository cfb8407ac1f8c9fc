"""Customer-managed KMS keys, one per component and purpose.

A key of our own (rather than the AWS-managed default) lets an operator audit, rotate and
revoke access per data store; rotation is always on. Services that call KMS through a
grant on the caller's behalf (RDS, MSK, EKS, ElastiCache) work with the account-root
statement alone. CloudWatch Logs does not: a key that encrypts log groups must allow the
regional logs service itself, scoped by encryption context to this account's log groups.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags

__all__ = ["customer_managed_key"]


def customer_managed_key(
    component: str,
    purpose: str,
    *,
    parent: pulumi.Resource,
    for_log_groups: bool = False,
) -> aws.kms.Key:
    """Declare a rotating symmetric KMS key (and its alias) for `component`'s `purpose`."""
    invoke_opts = pulumi.InvokeOutputOptions(parent=parent)
    identity = aws.get_caller_identity_output(opts=invoke_opts)
    partition = aws.get_partition_output(opts=invoke_opts)
    region = aws.get_region_output(opts=invoke_opts)
    name = physical_name(component, purpose)
    policy = pulumi.Output.all(partition.partition, identity.account_id, region.region).apply(
        lambda values: _key_policy(values[0], values[1], values[2], for_log_groups=for_log_groups)
    )
    key = aws.kms.Key(
        f"{component}-{purpose}-key",
        description=f"{name}: encrypts {purpose}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        tags=standard_tags(component, name),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.kms.Alias(
        f"{component}-{purpose}-key-alias",
        name=f"alias/{name}",
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return key


def _key_policy(partition: str, account_id: str, region: str, *, for_log_groups: bool) -> str:
    statements: list[dict[str, object]] = [
        {
            "Sid": "AccountAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if for_log_groups:
        statements.append(
            {
                "Sid": "CloudWatchLogsUse",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                        )
                    }
                },
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})
