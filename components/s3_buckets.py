"""The S3 building blocks components share: a private bucket, and an access-log bucket.

Two components keep access logs (the ALB's and the document bucket's); both need the same
private, versioned, expiring bucket, so its rules live once here. Who may write into a
log bucket differs by source, so each component still writes its own bucket policy.
"""

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags

__all__ = ["access_log_bucket", "make_private"]

_NONCURRENT_LOG_DAYS = 7


def make_private(parent: pulumi.Resource, resource_name: str, bucket: aws.s3.Bucket) -> None:
    """No public access of any kind, and no ACLs: only IAM and the bucket policy decide."""
    child = pulumi.ResourceOptions(parent=parent)
    aws.s3.BucketPublicAccessBlock(
        resource_name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        resource_name,
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=child,
    )


def access_log_bucket(parent: pulumi.Resource, name: str, retention_days: int) -> aws.s3.Bucket:
    """`<name>-access-logs`: private, versioned, logs expiring after `retention_days`.

    Encrypted with SSE-S3: neither ALB nor S3 server access log delivery supports KMS keys.
    """
    child = pulumi.ResourceOptions(parent=parent)
    bucket_name = physical_name(name, "access-logs")
    bucket = aws.s3.Bucket(
        f"{name}-access-logs",
        bucket=bucket_name,
        force_destroy=False,
        tags=standard_tags(name, bucket_name),
        opts=child,
    )
    make_private(parent, f"{name}-access-logs", bucket)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-access-logs",
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=child,
    )
    aws.s3.BucketVersioning(
        f"{name}-access-logs",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=child,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-access-logs",
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-access-logs",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "expiration": {"days": retention_days},
                "noncurrent_version_expiration": {"noncurrent_days": _NONCURRENT_LOG_DAYS},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
            }
        ],
        opts=child,
    )
    return bucket
