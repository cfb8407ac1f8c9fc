"""An ALB trust store: the CA bundle an HTTPS listener verifies client certificates against.

ELB reads the bundle from S3 when the trust store is created or its bundle changes, so the
bundle lives in a bucket of its own, locked down like every bucket of the platform:
private, ACLs disabled, encrypted with a rotating customer key, versioned (old bundles
expire), TLS only, its access logged into the load balancer's log bucket. The trust store
names the object's version, so a new bundle (a rotated CA) updates the trust store on the
next deploy instead of waiting for someone to notice.

A CA certificate is public, but what the bucket holds decides who may reach the origin:
write access to it is the same as the power to let any client in.
"""

import json

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.s3_buckets import make_private

__all__ = ["BUNDLE_KEY", "bucket_name", "client_ca_trust_store"]

BUNDLE_KEY = "client-ca.pem"
"""The object holding the PEM bundle."""
_NONCURRENT_DAYS = 30


def bucket_name(name: str) -> str:
    """The bundle bucket's name: known before it exists, so the log bucket can admit it."""
    return physical_name(name, "trust-store")


def client_ca_trust_store(
    parent: pulumi.Resource,
    name: str,
    *,
    ca_bundle_pem: pulumi.Input[str],
    log_bucket: aws.s3.Bucket,
    log_prefix: str,
    log_delivery: pulumi.Resource,
) -> aws.lb.TrustStore:
    """Store `ca_bundle_pem` and declare the trust store over it.

    Access logs of the bundle's bucket go to `log_bucket` under `log_prefix`, once
    `log_delivery` (the log bucket's policy admitting S3's log delivery) exists.
    """
    child = pulumi.ResourceOptions(parent=parent)
    key = customer_managed_key(name, "trust-store", parent=parent)
    bucket = aws.s3.Bucket(
        f"{name}-trust-store",
        bucket=bucket_name(name),
        force_destroy=False,
        tags=standard_tags(name, bucket_name(name)),
        opts=child,
    )
    make_private(parent, f"{name}-trust-store", bucket)
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-trust-store",
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
    versioning = aws.s3.BucketVersioning(
        f"{name}-trust-store",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=child,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-trust-store",
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-previous-bundles",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "noncurrent_version_expiration": {"noncurrent_days": _NONCURRENT_DAYS},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
            }
        ],
        opts=child,
    )
    aws.s3.BucketPolicy(
        f"{name}-trust-store",
        bucket=bucket.id,
        policy=bucket.arn.apply(_tls_only_policy),
        opts=child,
    )
    aws.s3.BucketLogging(
        f"{name}-trust-store",
        bucket=bucket.id,
        target_bucket=log_bucket.id,
        target_prefix=log_prefix,
        target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[log_delivery]),
    )
    bundle = aws.s3.BucketObjectv2(
        f"{name}-client-ca",
        bucket=bucket.id,
        key=BUNDLE_KEY,
        content=ca_bundle_pem,
        content_type="application/x-pem-file",
        tags=standard_tags(name, BUNDLE_KEY),
        # Written encrypted and versioned from the first upload.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[encryption, versioning]),
    )
    store_name = physical_name(name, "client-ca", max_length=32)
    return aws.lb.TrustStore(
        f"{name}-client-ca",
        name=store_name,
        ca_certificates_bundle_s3_bucket=bucket.bucket,
        ca_certificates_bundle_s3_key=bundle.key,
        ca_certificates_bundle_s3_object_version=bundle.version_id,
        tags=standard_tags(name, store_name),
        opts=child,
    )


def _tls_only_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
