"""Rules for S3 buckets: private, encrypted with our key, versioned, TLS only, expiring.

Since pulumi-aws 7 a bucket's settings are separate resources that name the bucket
(`BucketPublicAccessBlock`, `BucketServerSideEncryptionConfiguration`, ...), so every rule
here is a stack rule: it finds each bucket's settings through the engine's property
dependencies (the setting's `bucket` input is the bucket's id, an output), or by the
bucket's name where a setting names it as a plain string. The deprecated inline arguments
of the bucket itself (`versioning`, `serverSideEncryptionConfiguration`, `policy`,
`logging`) count too, so an older program is judged by what it declares, not by its style.

Buckets that receive logs from AWS services are held to what those services support: ALB
access logs and S3 server access logs are delivered only to buckets encrypted with
S3-managed keys (SSE-S3), so such a bucket may use SSE-S3 instead of a KMS key, and it
needs no access log of its own (logging the log bucket would log forever).
"""

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from policies.network import LOAD_BALANCERS, linked
from policies.support import get, stack_rule

__all__ = ["BUCKETS", "POLICIES", "log_targets"]

BUCKETS = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PUBLIC_ACCESS_BLOCK = frozenset({"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"})
OWNERSHIP_CONTROLS = frozenset({"aws:s3/bucketOwnershipControls:BucketOwnershipControls"})
ENCRYPTION = frozenset({
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
})  # fmt: skip
VERSIONING = frozenset(
    {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"}
)
LIFECYCLE = frozenset({
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
})  # fmt: skip
BUCKET_POLICY = frozenset({"aws:s3/bucketPolicy:BucketPolicy"})
LOGGING = frozenset(
    {"aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2"}
)
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
AWS_MANAGED_S3_KEY = "alias/aws/s3"
S3_ALL_ACTIONS = frozenset({"s3:*", "*"})

Violations = Iterable[tuple[str, str | None]]


def _linked_or_named(
    setting: PolicyResource, key: str, buckets: Sequence[PolicyResource]
) -> list[PolicyResource]:
    """The buckets `setting`'s input `key` refers to: by dependency, or by the bucket's name."""
    found = linked(setting, key, BUCKETS)
    if found:
        return found
    named = get(setting.props, key)
    if not isinstance(named, str) or not named:
        return []
    return [b for b in buckets if get(b.props, "bucket") == named]


@dataclass(frozen=True)
class _Bucket:
    """A bucket and the setting resources that name it."""

    resource: PolicyResource
    settings: tuple[PolicyResource, ...]

    @property
    def label(self) -> str:
        """The bucket's physical name where it is known, else its logical name."""
        name = get(self.resource.props, "bucket")
        return name if isinstance(name, str) and name else self.resource.name

    def of(self, types: frozenset[str]) -> list[PolicyResource]:
        """Its settings of `types`."""
        return [s for s in self.settings if s.resource_type in types]


def _buckets(resources: Sequence[PolicyResource]) -> list[_Bucket]:
    buckets = [r for r in resources if r.resource_type in BUCKETS]
    settings: dict[str, list[PolicyResource]] = {b.urn: [] for b in buckets}
    for resource in resources:
        if resource.resource_type in BUCKETS or not resource.resource_type.startswith("aws:s3/"):
            continue
        for bucket in _linked_or_named(resource, "bucket", buckets):
            settings[bucket.urn].append(resource)
    return [_Bucket(b, tuple(settings[b.urn])) for b in buckets]


def log_targets(resources: Sequence[PolicyResource]) -> set[str]:
    """URNs of the buckets AWS services deliver logs into (ALB access logs, S3 access logs)."""
    buckets = [r for r in resources if r.resource_type in BUCKETS]
    targets: set[str] = set()
    for resource in resources:
        if resource.resource_type in LOAD_BALANCERS:
            found = linked(resource, "accessLogs", BUCKETS) + linked(
                resource, "connectionLogs", BUCKETS
            )
        elif resource.resource_type in LOGGING:
            found = _linked_or_named(resource, "targetBucket", buckets)
        elif resource.resource_type in BUCKETS and get(resource.props, "logging.targetBucket"):
            found = linked(resource, "logging", BUCKETS)
        else:
            continue
        targets.update(b.urn for b in found)
    return targets


def _each_bucket(
    check: Callable[[_Bucket, set[str]], Violations],
) -> Callable[[StackValidationArgs], Violations]:
    def run(args: StackValidationArgs) -> Violations:
        targets = log_targets(args.resources)
        for bucket in _buckets(args.resources):
            yield from check(bucket, targets)

    return run


# -- public access --------------------------------------------------------------------------


def _public_access_block(bucket: _Bucket, _: set[str]) -> Violations:
    blocks = bucket.of(PUBLIC_ACCESS_BLOCK)
    if not blocks:
        yield (
            (
                f"bucket {bucket.label} has no public access block: a policy or ACL can make it "
                "public"
            ),
            bucket.resource.urn,
        )
        return
    for block in blocks:
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if get(block.props, flag) is not True]
        if off:
            yield (
                f"the public access block of bucket {bucket.label} leaves {', '.join(off)} off",
                block.urn,
            )


def _acls_disabled(bucket: _Bucket, _: set[str]) -> Violations:
    controls = bucket.of(OWNERSHIP_CONTROLS)
    if not any(get(c.props, "rule.objectOwnership") == "BucketOwnerEnforced" for c in controls):
        where = controls[0].urn if controls else bucket.resource.urn
        yield (
            (
                f"bucket {bucket.label} still honours ACLs (object ownership is not "
                "BucketOwnerEnforced): an object ACL can grant access that IAM does not show"
            ),
            where,
        )


# -- encryption -----------------------------------------------------------------------------


def _defaults(bucket: _Bucket) -> list[tuple[Mapping[str, Any], str]]:
    """Each default-encryption rule of the bucket, with the URN that declares it."""
    found = [
        (rule, setting.urn)
        for setting in bucket.of(ENCRYPTION)
        for rule in get(setting.props, "rules") or []
    ]
    inline = get(bucket.resource.props, "serverSideEncryptionConfiguration.rule")
    if isinstance(inline, Mapping):
        found.append((inline, bucket.resource.urn))
    return found


def _encryption(bucket: _Bucket, targets: set[str]) -> Violations:
    rules = _defaults(bucket)
    if not rules:
        yield f"bucket {bucket.label} declares no default encryption", bucket.resource.urn
        return
    log_target = bucket.resource.urn in targets
    for rule, urn in rules:
        algorithm = get(rule, "applyServerSideEncryptionByDefault.sseAlgorithm")
        key = get(rule, "applyServerSideEncryptionByDefault.kmsMasterKeyId")
        if algorithm in KMS_ALGORITHMS:
            if not key or key == AWS_MANAGED_S3_KEY:
                yield (
                    (
                        f"bucket {bucket.label} is encrypted with the AWS-managed key, not a "
                        "customer-managed KMS key (kmsMasterKeyId)"
                    ),
                    urn,
                )
        elif algorithm == "AES256" and log_target:
            continue  # ALB and S3 access log delivery support SSE-S3 only
        elif algorithm == "AES256":
            yield (
                (
                    f"bucket {bucket.label} is encrypted with S3-managed keys (AES256), not a "
                    "customer-managed KMS key"
                ),
                urn,
            )
        else:
            yield f"bucket {bucket.label} has no valid sseAlgorithm ({algorithm!r})", urn


# -- versioning -----------------------------------------------------------------------------


def _versioned(bucket: _Bucket) -> bool:
    if get(bucket.resource.props, "versioning.enabled") is True:
        return True
    return any(
        get(v.props, "versioningConfiguration.status") == "Enabled" for v in bucket.of(VERSIONING)
    )


def _versioning(bucket: _Bucket, _: set[str]) -> Violations:
    if not _versioned(bucket):
        yield (
            (
                f"bucket {bucket.label} is not versioned: an overwrite or delete loses the object "
                "for good"
            ),
            bucket.resource.urn,
        )


# -- TLS only -------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    return list(value)


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in _as_list(principal.get("AWS"))


def _denies_plain_http(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    for operator in ("Bool", "BoolIfExists"):
        values = condition.get(operator)
        if isinstance(values, Mapping):
            for key, value in values.items():
                if key.lower() == "aws:securetransport" and str(value).lower() == "false":
                    return True
    return False


def _covers(resources: list[Any], name: str | None) -> bool:
    """Whether the statement's resources cover the bucket and every object in it."""
    arns = [str(r) for r in resources]
    if "*" in arns:
        return True
    if name is None:
        return any(a.endswith("/*") for a in arns) and any("/" not in a for a in arns)
    return any(a.endswith(f":::{name}") for a in arns) and any(
        a.endswith(f":::{name}/*") for a in arns
    )


def _tls_statement(statement: Any, name: str | None) -> bool:
    if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
        return False
    actions = {str(a) for a in _as_list(statement.get("Action"))}
    return (
        _everyone(statement.get("Principal"))
        and bool(actions & S3_ALL_ACTIONS)
        and _covers(_as_list(statement.get("Resource")), name)
        and _denies_plain_http(statement.get("Condition"))
    )


def _policies(bucket: _Bucket) -> list[tuple[Any, str]]:
    found = [(get(p.props, "policy"), p.urn) for p in bucket.of(BUCKET_POLICY)]
    inline = get(bucket.resource.props, "policy")
    if inline:
        found.append((inline, bucket.resource.urn))
    return found


def _tls_only(bucket: _Bucket, _: set[str]) -> Violations:
    name = get(bucket.resource.props, "bucket")
    name = name if isinstance(name, str) and name else None
    for text, urn in _policies(bucket):
        try:
            document = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError:
            yield f"the policy of bucket {bucket.label} is not valid JSON", urn
            continue
        statements = _as_list(get(document, "Statement")) if isinstance(document, Mapping) else []
        if any(_tls_statement(s, name) for s in statements):
            return
    yield (
        (
            f"bucket {bucket.label} accepts plain HTTP: no bucket policy statement denies s3:* "
            "on the bucket and its objects when aws:SecureTransport is false"
        ),
        bucket.resource.urn,
    )


# -- lifecycle ------------------------------------------------------------------------------


def _enabled_rules(bucket: _Bucket) -> list[Mapping[str, Any]]:
    return [
        rule
        for config in bucket.of(LIFECYCLE)
        for rule in get(config.props, "rules") or []
        if get(rule, "status") == "Enabled"
    ]


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _lifecycle(bucket: _Bucket, _: set[str]) -> Violations:
    rules = _enabled_rules(bucket)
    aborts = "abortIncompleteMultipartUpload.daysAfterInitiation"
    if not any(_positive(get(r, aborts)) for r in rules):
        yield (
            (
                f"bucket {bucket.label} never aborts incomplete multipart uploads: their parts are "
                "stored and billed forever, out of sight"
            ),
            bucket.resource.urn,
        )
    if _versioned(bucket) and not any(
        _positive(get(r, "noncurrentVersionExpiration.noncurrentDays"))
        or _positive(get(r, "noncurrentVersionExpiration.newerNoncurrentVersions"))
        for r in rules
    ):
        yield (
            (
                f"bucket {bucket.label} keeps replaced and deleted versions forever: a deleted "
                "object is never really gone"
            ),
            bucket.resource.urn,
        )


# -- access logging -------------------------------------------------------------------------


def _access_logging(bucket: _Bucket, targets: set[str]) -> Violations:
    if bucket.resource.urn in targets:
        return  # a log bucket: logging it would log its own log deliveries
    if get(bucket.resource.props, "logging.targetBucket"):
        return
    if not any(get(s.props, "targetBucket") for s in bucket.of(LOGGING)):
        yield (
            (
                f"bucket {bucket.label} has no server access log: who read or changed which object "
                "cannot be traced"
            ),
            bucket.resource.urn,
        )


POLICIES = [
    stack_rule(
        "s3-public-access-block",
        "No bucket may be made public by a policy or an ACL, by mistake or otherwise: each "
        "has a public access block with all four settings on.",
        severity=Severity.CRITICAL, mandatory=True, check=_each_bucket(_public_access_block),
        fix="Add an aws.s3.BucketPublicAccessBlock for the bucket with blockPublicAcls, "
        "blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true.",
        scanners=["CKV2_AWS_6", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56",
                  "AWS-0094", "AWS-0086", "AWS-0087", "AWS-0091", "AWS-0093"],
    ),
    stack_rule(
        "s3-acls-disabled",
        "Access to objects is decided by IAM and the bucket policy alone; object ACLs, which "
        "no review sees, are disabled (object ownership BucketOwnerEnforced).",
        severity=Severity.MEDIUM, mandatory=True, check=_each_bucket(_acls_disabled),
        fix="Add an aws.s3.BucketOwnershipControls with rule.objectOwnership = "
        "'BucketOwnerEnforced'.",
        scanners=["CKV2_AWS_65"],
    ),
    stack_rule(
        "s3-encryption-cmk",
        "Objects are encrypted at rest with our own KMS key, so reading them needs a grant "
        "on the key that can be audited and revoked; buckets that receive ALB or S3 access "
        "logs may use SSE-S3, the only encryption log delivery supports.",
        severity=Severity.HIGH, mandatory=True, check=_each_bucket(_encryption),
        fix="Add an aws.s3.BucketServerSideEncryptionConfiguration with sseAlgorithm "
        "'aws:kms', kmsMasterKeyId = a customer-managed key and bucketKeyEnabled = true.",
        scanners=["CKV_AWS_145", "CKV_AWS_19", "AWS-0088", "AWS-0132"],
    ),
    stack_rule(
        "s3-versioning",
        "An overwritten or deleted object must be recoverable: buckets are versioned.",
        severity=Severity.HIGH, mandatory=True, check=_each_bucket(_versioning),
        fix="Add an aws.s3.BucketVersioning with versioningConfiguration.status = 'Enabled'.",
        scanners=["CKV_AWS_21", "AWS-0090"],
    ),
    stack_rule(
        "s3-tls-only",
        "S3 answers plain HTTP unless the bucket policy refuses it; every bucket denies all "
        "requests made without TLS (aws:SecureTransport false).",
        severity=Severity.HIGH, mandatory=True, check=_each_bucket(_tls_only),
        fix="Add a bucket policy statement: Effect Deny, Principal '*', Action 's3:*', "
        "Resource the bucket and bucket/*, Condition Bool aws:SecureTransport 'false'.",
        scanners=["CIS-AWS-2.1.1", "AWSConfig:s3-bucket-ssl-requests-only"],
    ),
    stack_rule(
        "s3-lifecycle",
        "Abandoned multipart uploads are aborted, and the old versions versioning keeps "
        "expire, so storage stays bounded and a deleted object is eventually gone.",
        severity=Severity.MEDIUM, mandatory=True, check=_each_bucket(_lifecycle),
        fix="Add an aws.s3.BucketLifecycleConfiguration with an enabled rule setting "
        "abortIncompleteMultipartUpload.daysAfterInitiation and, on a versioned bucket, "
        "noncurrentVersionExpiration.noncurrentDays.",
        scanners=["CKV2_AWS_61", "CKV_AWS_300"],
    ),
    stack_rule(
        "s3-access-logging",
        "Server access logs record who read or changed which object; buckets that are "
        "themselves log destinations are exempt.",
        severity=Severity.MEDIUM, mandatory=False, check=_each_bucket(_access_logging),
        fix="Add an aws.s3.BucketLogging naming a private log bucket (targetBucket).",
        scanners=["CKV_AWS_18", "AWS-0089"],
    ),
]  # fmt: skip
