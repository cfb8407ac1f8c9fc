"""S3 for the course PDFs instructors upload: private, encrypted with our key, versioned.

The AI orchestrator writes each upload under `documents/<course>/<document>.pdf` and the
indexer worker reads it back; nothing else may touch the bucket, and nobody reaches it
from the internet. Secure defaults, after terraform-aws-modules/s3-bucket: all four
public-access blocks on, ACLs disabled (`BucketOwnerEnforced`), default encryption with a
rotating customer-managed KMS key and S3 Bucket Keys (one KMS call per bucket key, not
per object), versioning (an overwritten or deleted PDF can be restored for
`noncurrent_version_days`), a bucket policy that refuses every request not made over
TLS, and a lifecycle that aborts abandoned multipart uploads and expires old versions.

Server access logs (who read or wrote which object, from where) go to a second bucket of
the component. S3 delivers them only to a bucket encrypted with S3-managed keys (SSE-S3),
so that bucket uses SSE-S3; it is otherwise as locked down, accepts writes from S3's log
delivery for this bucket only, and expires its logs.
"""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.s3_buckets import access_log_bucket, make_private
from components.type_tokens import DOCUMENT_STORE

__all__ = ["DOCUMENTS_PREFIX", "DocumentStore", "DocumentStoreArgs"]

DOCUMENTS_PREFIX = "documents/"
"""Where the services keep uploaded files; the workloads' IAM policies grant only this."""
ACCESS_LOG_PREFIX = "s3/"
"""Where server access logs of the documents bucket land in the log bucket."""
_MAX_DAYS = 3650


class DocumentStoreArgs(TypedDict):
    """Inputs of `DocumentStore`."""

    noncurrent_version_days: NotRequired[int]
    """Days a replaced or deleted document's previous version is kept (default 30)."""
    access_log_retention_days: NotRequired[int]
    """Days server access logs are kept (default 90)."""


class DocumentStore(pulumi.ComponentResource):
    """A private, KMS-encrypted, versioned S3 bucket for uploaded documents, TLS only."""

    bucket_name: pulumi.Output[str]
    """The bucket's name (the services' `DOCUMENTS_BUCKET`)."""
    bucket_arn: pulumi.Output[str]
    """The bucket's ARN (IAM policies grant `<arn>/documents/*`)."""
    kms_key_arn: pulumi.Output[str]
    """The customer-managed key that encrypts every object (writers need GenerateDataKey,
    readers Decrypt)."""

    def __init__(
        self, name: str, args: DocumentStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(DOCUMENT_STORE.token, name, None, DOCUMENT_STORE.options(opts))
        noncurrent_days = _days("noncurrent_version_days", args.get("noncurrent_version_days", 30))
        log_days = _days("access_log_retention_days", args.get("access_log_retention_days", 90))
        child = pulumi.ResourceOptions(parent=self)

        key = customer_managed_key(name, "objects", parent=self)
        bucket_name = physical_name(name)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=bucket_name,
            force_destroy=False,
            tags=standard_tags(name, bucket_name),
            opts=child,
        )
        make_private(self, f"{name}-bucket", bucket)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-bucket",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-bucket",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket",
            bucket=bucket.id,
            rules=[
                {
                    "id": "abort-incomplete-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                },
                {
                    "id": "expire-previous-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
                    # A deleted document leaves a delete marker; once its old versions have
                    # expired the marker is removed too.
                    "expiration": {"expired_object_delete_marker": True},
                },
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-bucket",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(_policy([_tls_only(arn)]))),
            opts=child,
        )
        logs, delivery = self._access_log_bucket(name, log_days, source=bucket)
        aws.s3.BucketLogging(
            f"{name}-bucket",
            bucket=bucket.id,
            target_bucket=logs.id,
            target_prefix=ACCESS_LOG_PREFIX,
            target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
            # S3 delivers only once the log bucket's policy lets it (ACLs are disabled).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery]),
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = key.arn
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
            }
        )

    def _access_log_bucket(
        self, name: str, retention_days: int, *, source: aws.s3.Bucket
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        """The log bucket, and the policy that lets S3 deliver `source`'s logs into it."""
        child = pulumi.ResourceOptions(parent=self)
        logs = access_log_bucket(self, name, retention_days)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        policy = aws.s3.BucketPolicy(
            f"{name}-access-logs",
            bucket=logs.id,
            policy=pulumi.Output.all(logs.arn, source.arn, identity.account_id).apply(
                lambda v: json.dumps(_policy([_log_delivery(v[0], v[1], v[2]), _tls_only(v[0])]))
            ),
            opts=child,
        )
        return logs, policy


def _days(key: str, value: float) -> int:
    days = int(value)  # other languages pass numbers as floats
    if not 1 <= days <= _MAX_DAYS:
        raise ValueError(f"{key} is {days}; allowed is 1 to {_MAX_DAYS}")
    return days


def _policy(statements: list[dict[str, object]]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": statements}


def _tls_only(bucket_arn: str) -> dict[str, object]:
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _log_delivery(log_bucket_arn: str, source_arn: str, account_id: str) -> dict[str, object]:
    return {
        "Sid": "S3ServerAccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{log_bucket_arn}/{ACCESS_LOG_PREFIX}*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": source_arn},
            "StringEquals": {"aws:SourceAccount": account_id},
        },
    }
