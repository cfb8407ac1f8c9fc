"""S3 rules: a compliant bucket (and its log bucket) passes; each setting absent or wrong
fails on the resource to fix; log buckets get exactly their exemptions; and the prod graph,
broken through `eduscale policy`, fails naming the rule."""

import json
from pathlib import Path
from typing import Any

import pytest
from policy_harness import (
    Mutation,
    MutationCheck,
    mutated_graph_file,
    policy_resource,
    resources_of,
    stack_violations,
)
from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from infra.graph import Graph
from infra.policy_check import check_graph
from policies import storage

BUCKET = "aws:s3/bucket:Bucket"
BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
ALB = "aws:lb/loadBalancer:LoadBalancer"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/documents"
RULES = [p.name for p in storage.POLICIES]
MANDATORY = [p.name for p in storage.POLICIES if p.enforcement_level.value == "mandatory"]  # type: ignore[union-attr]


def tls_only(name: str) -> dict[str, Any]:
    arn = f"arn:aws:s3:::{name}"
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def policy_text(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def kms(key: str | None = KEY_ARN, algorithm: str = "aws:kms") -> dict[str, Any]:
    default = {"sseAlgorithm": algorithm, **({"kmsMasterKeyId": key} if key else {})}
    return {"rules": [{"applyServerSideEncryptionByDefault": default, "bucketKeyEnabled": True}]}


LIFECYCLE_RULES = [
    {"id": "abort", "status": "Enabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}},
    {"id": "old", "status": "Enabled", "noncurrentVersionExpiration": {"noncurrentDays": 30}},
]  # fmt: skip


def settings(
    name: str, urn: str, bucket: PolicyResource, *, encryption: dict[str, Any]
) -> dict[str, PolicyResource]:
    """A complete set of settings for `bucket`, keyed by type."""
    on = {"bucket": f"{urn}-id"}

    def setting(kind: str, props: dict[str, Any]) -> PolicyResource:
        return policy_resource(kind, {**on, **props}, f"{urn}-{kind.rsplit(':', 1)[-1]}", [bucket])

    return {
        BLOCK: setting(BLOCK, dict.fromkeys(storage.PUBLIC_ACCESS_FLAGS, True)),
        OWNERSHIP: setting(OWNERSHIP, {"rule": {"objectOwnership": "BucketOwnerEnforced"}}),
        ENCRYPTION: setting(ENCRYPTION, encryption),
        VERSIONING: setting(VERSIONING, {"versioningConfiguration": {"status": "Enabled"}}),
        LIFECYCLE: setting(LIFECYCLE, {"rules": LIFECYCLE_RULES}),
        POLICY: setting(POLICY, {"policy": policy_text(tls_only(name))}),
    }


def stack(
    *,
    documents: dict[str, dict[str, Any] | None] | None = None,
    logging: bool = True,
    bucket_props: dict[str, Any] | None = None,
) -> list[PolicyResource]:
    """The documents bucket, its settings, and a log bucket it logs into.

    `documents` replaces (props) or removes (None) settings of the documents bucket.
    """
    docs = policy_resource(BUCKET, {"bucket": "docs", **(bucket_props or {})}, "urn:docs")
    logs = policy_resource(BUCKET, {"bucket": "logs"}, "urn:logs")
    doc_settings = settings("docs", "urn:docs", docs, encryption=kms())
    for kind, props in (documents or {}).items():
        if props is None:
            del doc_settings[kind]
        else:
            doc_settings[kind] = policy_resource(
                kind, {"bucket": "urn:docs-id", **props}, f"urn:docs-{kind}", [docs]
            )
    log_settings = settings("logs", "urn:logs", logs, encryption=kms(None, "AES256"))
    delivery = [
        policy_resource(
            LOGGING,
            {"bucket": "docs-id", "targetBucket": "logs-id", "targetPrefix": "s3/"},
            "urn:docs-logging",
            [docs, logs],
        )
    ]
    delivery[0].property_dependencies = {"bucket": [docs], "targetBucket": [logs]}
    return [
        docs,
        logs,
        *doc_settings.values(),
        *log_settings.values(),
        *(delivery if logging else []),
    ]


def violations(rule: str, resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    return stack_violations(rule, resources)


@pytest.mark.parametrize("rule", RULES)
def test_a_compliant_bucket_and_its_log_bucket_pass(rule: str):
    assert violations(rule, stack()) == []


def test_a_stack_without_buckets_has_nothing_to_check():
    assert all(violations(rule, []) == [] for rule in RULES)


# Absent settings ------------------------------------------------------------------------------

ABSENT = [
    ("s3-public-access-block", BLOCK, "has no public access block"),
    ("s3-acls-disabled", OWNERSHIP, "still honours ACLs"),
    ("s3-encryption-cmk", ENCRYPTION, "declares no default encryption"),
    ("s3-versioning", VERSIONING, "is not versioned"),
    ("s3-tls-only", POLICY, "accepts plain HTTP"),
    ("s3-lifecycle", LIFECYCLE, "never aborts incomplete multipart uploads"),
]


@pytest.mark.parametrize(("rule", "kind", "message"), ABSENT)
def test_a_missing_setting_fails_on_the_bucket(rule: str, kind: str, message: str):
    found = violations(rule, stack(documents={kind: None}))
    assert found
    assert all(urn == "urn:docs" for _, urn in found)
    assert message in found[0][0]
    assert "bucket docs " in found[0][0]


def test_a_bucket_without_an_access_log_fails_the_advisory_rule():
    found = violations("s3-access-logging", stack(logging=False))
    # Nothing logs into the log bucket any more either, so it is an ordinary bucket now.
    assert [urn for _, urn in found] == ["urn:docs", "urn:logs"]
    assert "bucket docs has no server access log" in found[0][0]


# Wrong values ---------------------------------------------------------------------------------

WRONG = [
    ("s3-public-access-block", BLOCK, {**dict.fromkeys(storage.PUBLIC_ACCESS_FLAGS, True), "restrictPublicBuckets": False}, "leaves restrictPublicBuckets off"),
    ("s3-public-access-block", BLOCK, {"blockPublicAcls": True}, "blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets off"),
    ("s3-acls-disabled", OWNERSHIP, {"rule": {"objectOwnership": "ObjectWriter"}}, "not BucketOwnerEnforced"),
    ("s3-acls-disabled", OWNERSHIP, {"rule": {"objectOwnership": "BucketOwnerPreferred"}}, "not BucketOwnerEnforced"),
    ("s3-encryption-cmk", ENCRYPTION, kms(None), "AWS-managed key"),
    ("s3-encryption-cmk", ENCRYPTION, kms("alias/aws/s3"), "AWS-managed key"),
    ("s3-encryption-cmk", ENCRYPTION, kms(None, "AES256"), "S3-managed keys (AES256)"),
    ("s3-encryption-cmk", ENCRYPTION, kms(None, "rot13"), "no valid sseAlgorithm"),
    ("s3-versioning", VERSIONING, {"versioningConfiguration": {"status": "Suspended"}}, "is not versioned"),
    ("s3-lifecycle", LIFECYCLE, {"rules": [{**r, "status": "Disabled"} for r in LIFECYCLE_RULES]}, "never aborts"),
    ("s3-lifecycle", LIFECYCLE, {"rules": LIFECYCLE_RULES[:1]}, "keeps replaced and deleted versions forever"),
    ("s3-lifecycle", LIFECYCLE, {"rules": [{"status": "Enabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 0}}, LIFECYCLE_RULES[1]]}, "never aborts"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "kind", "props", "message"), WRONG)
def test_a_wrong_setting_fails(rule: str, kind: str, props: dict[str, Any], message: str):
    found = violations(rule, stack(documents={kind: props}))
    assert any(message in text for text, _ in found), found
    assert {urn for _, urn in found} <= {"urn:docs", f"urn:docs-{kind}"}


def test_an_unversioned_bucket_needs_no_noncurrent_expiry():
    resources = stack(documents={VERSIONING: None, LIFECYCLE: {"rules": LIFECYCLE_RULES[:1]}})
    assert violations("s3-lifecycle", resources) == []


def test_keeping_a_number_of_old_versions_bounds_them_too():
    newest = {"status": "Enabled", "noncurrentVersionExpiration": {"newerNoncurrentVersions": 3}}
    resources = stack(documents={LIFECYCLE: {"rules": [LIFECYCLE_RULES[0], newest]}})
    assert violations("s3-lifecycle", resources) == []


# TLS only -------------------------------------------------------------------------------------


def with_statement(statement: dict[str, Any]) -> list[PolicyResource]:
    return stack(documents={POLICY: {"policy": policy_text(statement)}})


@pytest.mark.parametrize(
    "statement",
    [
        {**tls_only("docs"), "Principal": {"AWS": "*"}},
        {**tls_only("docs"), "Principal": {"AWS": ["*"]}},
        {**tls_only("docs"), "Action": ["s3:GetObject", "s3:*"]},
        {**tls_only("docs"), "Action": "*", "Resource": "*"},
        {**tls_only("docs"), "Condition": {"Bool": {"aws:SecureTransport": False}}},
        {**tls_only("docs"), "Condition": {"BoolIfExists": {"aws:securetransport": "false"}}},
        {**tls_only("docs"), "Resource": ["arn:aws-cn:s3:::docs", "arn:aws-cn:s3:::docs/*"]},
    ],
    ids=["aws-star", "aws-star-list", "action-list", "everything", "json-false", "if-exists", "partition"],
)  # fmt: skip
def test_equivalent_tls_statements_pass(statement: dict[str, Any]):
    assert violations("s3-tls-only", with_statement(statement)) == []


@pytest.mark.parametrize(
    "statement",
    [
        {**tls_only("docs"), "Effect": "Allow"},
        {**tls_only("docs"), "Principal": {"AWS": "arn:aws:iam::1:root"}},
        {**tls_only("docs"), "Action": "s3:GetObject"},
        {**tls_only("docs"), "Resource": "arn:aws:s3:::docs"},
        {**tls_only("docs"), "Resource": ["arn:aws:s3:::other", "arn:aws:s3:::other/*"]},
        {**tls_only("docs"), "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {**tls_only("docs"), "Condition": {"StringEquals": {"aws:SecureTransport": "false"}}},
        {k: v for k, v in tls_only("docs").items() if k != "Condition"},
    ],
    ids=["allow", "one-principal", "one-action", "bucket-only", "other-bucket", "true", "string-operator", "no-condition"],
)  # fmt: skip
def test_statements_that_do_not_refuse_plain_http_fail(statement: dict[str, Any]):
    ((message, urn),) = violations("s3-tls-only", with_statement(statement))
    assert urn == "urn:docs"
    assert "accepts plain HTTP" in message


def test_a_policy_that_is_not_json_fails_on_the_policy():
    found = violations("s3-tls-only", stack(documents={POLICY: {"policy": "{not json"}}))
    assert ("the policy of bucket docs is not valid JSON", f"urn:docs-{POLICY}") in found


def test_an_unnamed_bucket_needs_a_bucket_and_an_object_resource():
    resources = stack(bucket_props={"bucket": None})
    # The policy still names "docs"; without the bucket's name any ARN pair counts.
    assert violations("s3-tls-only", resources) == []


def test_a_policy_unknown_during_preview_is_not_a_pass():
    resources = stack(documents={POLICY: {"policy": UNKNOWN_STRING_VALUE}})
    with pytest.raises(UnknownValueError):
        violations("s3-tls-only", resources)


# Log buckets ----------------------------------------------------------------------------------


def test_a_log_bucket_may_use_sse_s3_and_needs_no_log_of_its_own():
    resources = stack()
    assert violations("s3-encryption-cmk", resources) == []
    assert violations("s3-access-logging", resources) == []


def test_sse_s3_on_a_bucket_nothing_logs_into_fails():
    resources = stack(logging=False)
    found = violations("s3-encryption-cmk", resources)
    assert found == [
        (
            "bucket logs is encrypted with S3-managed keys (AES256), not a customer-managed KMS key",
            f"urn:logs-{ENCRYPTION.rsplit(':', 1)[-1]}",
        )
    ]


def test_an_alb_access_log_bucket_is_a_log_bucket():
    resources = stack(logging=False)
    logs = next(r for r in resources if r.urn == "urn:logs")
    alb = policy_resource(
        ALB, {"accessLogs": {"enabled": True, "bucket": "logs"}}, "urn:alb", [logs]
    )
    alb.property_dependencies = {"accessLogs": [logs]}
    assert storage.log_targets([*resources, alb]) == {"urn:logs"}
    assert violations("s3-encryption-cmk", [*resources, alb]) == []


def test_a_log_bucket_named_as_a_plain_string_is_found():
    resources = [r for r in stack() if r.resource_type != LOGGING]
    docs = next(r for r in resources if r.urn == "urn:docs")
    delivery = policy_resource(
        LOGGING, {"bucket": "docs", "targetBucket": "logs", "targetPrefix": "s3/"}, "urn:l", [docs]
    )
    delivery.property_dependencies = {"bucket": [docs]}
    assert storage.log_targets([*resources, delivery]) == {"urn:logs"}
    assert violations("s3-access-logging", [*resources, delivery]) == []


# Settings linked by name, and the deprecated inline arguments --------------------------------


def test_settings_that_name_the_bucket_as_a_string_count():
    docs = policy_resource(BUCKET, {"bucket": "docs"}, "urn:docs")
    block = policy_resource(BLOCK, {"bucket": "docs", **dict.fromkeys(storage.PUBLIC_ACCESS_FLAGS, True)}, "urn:block")  # fmt: skip
    assert violations("s3-public-access-block", [docs, block]) == []
    other = policy_resource(BLOCK, {"bucket": "other", **dict.fromkeys(storage.PUBLIC_ACCESS_FLAGS, True)}, "urn:block")  # fmt: skip
    assert violations("s3-public-access-block", [docs, other])


def test_a_setting_linked_to_another_bucket_does_not_count():
    resources = stack()
    logs = next(r for r in resources if r.urn == "urn:logs")
    for resource in resources:
        if resource.urn == f"urn:docs-{VERSIONING.rsplit(':', 1)[-1]}":
            resource.dependencies = [logs]
    assert [urn for _, urn in violations("s3-versioning", resources)] == ["urn:docs"]


def test_inline_bucket_arguments_count():
    inline = {
        "versioning": {"enabled": True},
        "serverSideEncryptionConfiguration": {
            "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}}
        },
        "policy": policy_text(tls_only("docs")),
    }  # fmt: skip
    resources = stack(
        bucket_props=inline, documents={VERSIONING: None, ENCRYPTION: None, POLICY: None}
    )
    for rule in ("s3-versioning", "s3-encryption-cmk", "s3-tls-only"):
        assert violations(rule, resources) == [], rule


def test_the_rules_are_mandatory_but_access_logging():
    assert set(RULES) - set(MANDATORY) == {"s3-access-logging"}


# The recorded stacks, through the CLI --------------------------------------------------------


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_the_shipped_stacks_pass_every_storage_rule(
    stack_name: str, request: pytest.FixtureRequest
):
    graph: Graph = request.getfixturevalue(f"{stack_name}_graph")
    assert check_graph(graph, storage.POLICIES) == []
    # documents, its access logs, the ALB's logs, the ALB's client-CA bundle
    assert len(graph.of_type(BUCKET)) == 4


def documents(document: dict[str, Any], kind: str) -> dict[str, Any]:
    """The inputs of the documents bucket's setting of `kind` in a graph document."""
    found = next(r for r in resources_of(document, kind) if r["name"] == "documents-bucket")
    inputs: dict[str, Any] = found["inputs"]
    return inputs


def open_to_public_policies(document: dict[str, Any]) -> None:
    documents(document, BLOCK)["blockPublicPolicy"] = False


def enable_acls(document: dict[str, Any]) -> None:
    documents(document, OWNERSHIP)["rule"]["objectOwnership"] = "ObjectWriter"


def encrypt_with_s3_keys(document: dict[str, Any]) -> None:
    documents(document, ENCRYPTION)["rules"] = [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]


def suspend_versioning(document: dict[str, Any]) -> None:
    documents(document, VERSIONING)["versioningConfiguration"]["status"] = "Suspended"


def allow_plain_http(document: dict[str, Any]) -> None:
    documents(document, POLICY)["policy"] = policy_text()


def keep_versions_forever(document: dict[str, Any]) -> None:
    rules = documents(document, LIFECYCLE)["rules"]
    documents(document, LIFECYCLE)["rules"] = [r for r in rules if "noncurrentVersionExpiration" not in r]  # fmt: skip


def drop_the_log_buckets_policy(document: dict[str, Any]) -> None:
    document["resources"] = [
        r for r in document["resources"]
        if not (r["type"] == POLICY and r["name"] == "documents-access-logs")
    ]  # fmt: skip


MUTATIONS: list[Mutation] = [
    ("public policies allowed", open_to_public_policies, "s3-public-access-block"),
    ("ACLs enabled", enable_acls, "s3-acls-disabled"),
    ("SSE-S3 on the documents", encrypt_with_s3_keys, "s3-encryption-cmk"),
    ("versioning suspended", suspend_versioning, "s3-versioning"),
    ("plain HTTP allowed", allow_plain_http, "s3-tls-only"),
    ("old versions kept forever", keep_versions_forever, "s3-lifecycle"),
    ("log bucket without policy", drop_the_log_buckets_policy, "s3-tls-only"),
]


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_prod_bucket_fails_naming_the_rule(
    case: Mutation, prod_graph_broken_by: MutationCheck
) -> None:
    prod_graph_broken_by(case, alone=True)


def test_a_prod_bucket_without_access_logs_is_an_advisory_violation(
    prod_graph: Graph, tmp_path: Path
):
    def drop_logging(document: dict[str, Any]) -> None:
        document["resources"] = [r for r in document["resources"] if r["type"] != LOGGING]

    path = mutated_graph_file(prod_graph, tmp_path / "graph.json", drop_logging)
    found = {(v.rule, v.mandatory, v.urn.rsplit("::", 1)[-1]) for v in check_graph(Graph.read_json(path), storage.POLICIES) if v.urn}  # fmt: skip
    assert found == {
        ("s3-access-logging", False, "documents-bucket"),
        ("s3-access-logging", False, "alb-trust-store"),
        # Nothing logs into the access-log bucket any more: it is held to the normal rules.
        ("s3-access-logging", False, "documents-access-logs"),
        ("s3-encryption-cmk", True, "documents-access-logs"),
    }
