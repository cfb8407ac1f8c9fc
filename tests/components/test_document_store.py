"""The documents bucket: the component on its own (as another team would use it), and as
both stacks declare it, with exactly the access the AI orchestrator and the indexer need."""

import json
from typing import Any

import pulumi
import pytest
from conftest import PROJECT_DIR, STANDARD_TAG_KEYS, aws_resources, is_taggable, run_program

from components.document_store import DOCUMENTS_PREFIX, DocumentStore, DocumentStoreArgs
from infra.diagram import architecture_edges
from infra.graph import Graph, RecordedResource
from infra.policy_check import check_graph
from infra.stack_files import load_stack
from policies import storage
from stacks.config import ConfigError, StackConfig, parse_stack_config

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
KEY = "aws:kms/key:Key"
COMPONENT = "eduscale:index:DocumentStore"
DOCUMENT_USERS = {"ai-orchestrator", "indexer-worker"}
OTHERS = {"auth", "course", "generation-worker"}


def store(**args: Any) -> DocumentStore:
    """The component in a foreign project, exporting its outputs."""
    typed: DocumentStoreArgs = args  # type: ignore[assignment]
    component = DocumentStore("docs", typed)
    pulumi.export("bucketName", component.bucket_name)
    pulumi.export("bucketArn", component.bucket_arn)
    pulumi.export("kmsKeyArn", component.kms_key_arn)
    return component


@pytest.fixture(scope="module")
def graph() -> Graph:
    return run_program(lambda: store(noncurrent_version_days=45, access_log_retention_days=60))


def of_bucket(graph: Graph, type_token: str, bucket: str) -> dict[str, Any]:
    """The inputs of `bucket`'s (logical name) one setting of `type_token`."""
    (found,) = [r for r in graph.of_type(type_token) if r.name == bucket]
    return found.inputs


def bucket_named(graph: Graph, logical: str) -> RecordedResource:
    (found,) = [b for b in graph.of_type(BUCKET) if b.name == logical]
    return found


# The component on its own -------------------------------------------------------------------


def test_the_bucket_and_its_log_bucket_are_named_by_the_conventions(graph: Graph):
    names = {b.name: b.inputs["bucket"] for b in graph.of_type(BUCKET)}
    assert names == {
        "docs-bucket": "foreign-test-docs",
        "docs-access-logs": "foreign-test-docs-access-logs",
    }
    assert all(b.inputs["forceDestroy"] is False for b in graph.of_type(BUCKET))


def test_outputs_name_the_bucket_its_arn_and_its_key(graph: Graph):
    assert graph.outputs["bucketName"] == "foreign-test-docs"
    assert graph.outputs["bucketArn"] == "arn:aws:s3:::foreign-test-docs"
    assert graph.outputs["kmsKeyArn"].startswith("arn:aws:kms:eu-west-1:")


@pytest.mark.parametrize("bucket", ["docs-bucket", "docs-access-logs"])
def test_both_buckets_are_private_and_ignore_acls(graph: Graph, bucket: str):
    block = of_bucket(graph, BLOCK, bucket)
    assert all(block[flag] is True for flag in storage.PUBLIC_ACCESS_FLAGS)
    assert of_bucket(graph, OWNERSHIP, bucket)["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_documents_are_encrypted_with_the_components_rotating_key_and_bucket_keys(graph: Graph):
    (key,) = graph.of_type(KEY)
    assert key.inputs["enableKeyRotation"] is True
    (setting,) = [r for r in graph.of_type(ENCRYPTION) if r.name == "docs-bucket"]
    (rule,) = setting.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert (
        rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == graph.outputs["kmsKeyArn"]
    )
    assert rule["bucketKeyEnabled"] is True
    assert setting.property_dependencies["rules"] == [key.urn]


def test_access_logs_use_sse_s3_the_only_encryption_log_delivery_supports(graph: Graph):
    (rule,) = of_bucket(graph, ENCRYPTION, "docs-access-logs")["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


@pytest.mark.parametrize("bucket", ["docs-bucket", "docs-access-logs"])
def test_both_buckets_are_versioned(graph: Graph, bucket: str):
    assert of_bucket(graph, VERSIONING, bucket)["versioningConfiguration"] == {"status": "Enabled"}


def test_the_lifecycle_aborts_stale_uploads_and_expires_old_versions(graph: Graph):
    rules = {r["id"]: r for r in of_bucket(graph, LIFECYCLE, "docs-bucket")["rules"]}
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 1
    }
    old = rules["expire-previous-versions"]
    assert old["noncurrentVersionExpiration"] == {"noncurrentDays": 45}
    assert old["expiration"] == {"expiredObjectDeleteMarker": True}
    assert all(r["status"] == "Enabled" and r["filter"] == {"prefix": ""} for r in rules.values())
    assert "days" not in old["expiration"]  # current documents never expire


def test_access_logs_expire_after_their_retention(graph: Graph):
    (rule,) = of_bucket(graph, LIFECYCLE, "docs-access-logs")["rules"]
    assert rule["expiration"] == {"days": 60}


def statements(graph: Graph, bucket: str) -> list[dict[str, Any]]:
    document = json.loads(of_bucket(graph, POLICY, bucket)["policy"])
    found: list[dict[str, Any]] = document["Statement"]
    return found


@pytest.mark.parametrize(
    ("bucket", "name"),
    [("docs-bucket", "foreign-test-docs"), ("docs-access-logs", "foreign-test-docs-access-logs")],
)
def test_both_buckets_refuse_plain_http(graph: Graph, bucket: str, name: str):
    (deny,) = [s for s in statements(graph, bucket) if s["Effect"] == "Deny"]
    assert deny == {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def test_the_documents_bucket_policy_grants_nothing(graph: Graph):
    assert [s["Effect"] for s in statements(graph, "docs-bucket")] == ["Deny"]


def test_only_s3_log_delivery_for_this_bucket_may_write_the_log_bucket(graph: Graph):
    (allow,) = [s for s in statements(graph, "docs-access-logs") if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == "arn:aws:s3:::foreign-test-docs-access-logs/s3/*"
    assert allow["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:s3:::foreign-test-docs"}
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"].isdigit()


def test_server_access_logs_of_the_documents_go_to_the_log_bucket(graph: Graph):
    (logging,) = graph.of_type(LOGGING)
    assert logging.name == "docs-bucket"
    assert logging.property_dependencies["targetBucket"] == [
        bucket_named(graph, "docs-access-logs").urn
    ]
    assert logging.property_dependencies["bucket"] == [bucket_named(graph, "docs-bucket").urn]
    assert logging.inputs["targetPrefix"] == "s3/"
    (log_policy,) = [p for p in graph.of_type(POLICY) if p.name == "docs-access-logs"]
    assert log_policy.urn in logging.dependencies  # delivery is allowed before it starts


def test_every_setting_names_its_bucket_by_dependency(graph: Graph):
    buckets = {b.urn: b.name for b in graph.of_type(BUCKET)}
    settings = [
        r for r in aws_resources(graph) if r.type.startswith("aws:s3/") and r.type != BUCKET
    ]
    assert len(settings) == 13
    for setting in settings:
        (bucket,) = setting.property_dependencies["bucket"]
        assert buckets[bucket] == setting.name


def test_every_resource_is_a_child_of_the_component_and_tagged(graph: Graph):
    (component,) = graph.of_type(COMPONENT)
    for resource in aws_resources(graph):
        assert graph.component_of(resource) == component, resource.name
        if is_taggable(resource.type):
            tags = resource.inputs["tags"]
            assert set(tags) >= STANDARD_TAG_KEYS, resource.name
            assert tags["component"] == "docs"
            assert tags["Name"].startswith("foreign-test-docs")


def test_the_component_passes_the_storage_rules_on_its_own(graph: Graph):
    assert check_graph(graph, storage.POLICIES) == []


def test_defaults_keep_old_versions_30_days_and_logs_90():
    graph = run_program(store)
    (old,) = [r for r in of_bucket(graph, LIFECYCLE, "docs-bucket")["rules"] if "noncurrentVersionExpiration" in r]  # fmt: skip
    assert old["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    (logs,) = of_bucket(graph, LIFECYCLE, "docs-access-logs")["rules"]
    assert logs["expiration"] == {"days": 90}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"noncurrent_version_days": 0}, "noncurrent_version_days is 0; allowed is 1 to 3650"),
        ({"access_log_retention_days": 4000}, "access_log_retention_days is 4000; allowed is 1"),
    ],
)
def test_impossible_retention_is_refused_before_anything_is_declared(
    args: dict[str, int], message: str
):
    with pytest.raises(ValueError, match=message):
        run_program(lambda: store(**args))


# As both stacks declare it ------------------------------------------------------------------


def config_of(stack: str) -> StackConfig:
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config)


def documents_bucket(graph: Graph) -> str:
    name: str = bucket_named(graph, "documents-bucket").inputs["bucket"]
    return name


def documents_key_arn(graph: Graph) -> str:
    (rule,) = of_bucket(graph, ENCRYPTION, "documents-bucket")["rules"]
    arn: str = rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    return arn


def test_both_stacks_declare_one_document_store_from_their_config(stack_graph: Graph):
    (component,) = stack_graph.of_type(COMPONENT)
    assert component.name == "documents"
    assert documents_bucket(stack_graph) == f"eduscale-{stack_graph.stack}-documents"
    assert stack_graph.outputs["documentsBucket"] == documents_bucket(stack_graph)
    settings = config_of(stack_graph.stack).documents
    (old,) = [r for r in of_bucket(stack_graph, LIFECYCLE, "documents-bucket")["rules"] if "noncurrentVersionExpiration" in r]  # fmt: skip
    assert old["noncurrentVersionExpiration"]["noncurrentDays"] == settings.noncurrent_version_days
    (logs,) = of_bucket(stack_graph, LIFECYCLE, "documents-access-logs")["rules"]
    assert logs["expiration"]["days"] == settings.access_log_retention_days


def test_prod_keeps_old_versions_and_logs_longer_than_dev():
    dev, prod = config_of("dev").documents, config_of("prod").documents
    assert prod.noncurrent_version_days > dev.noncurrent_version_days
    assert prod.access_log_retention_days >= 365


def role_statements(graph: Graph, workload: str) -> list[dict[str, Any]]:
    (policy,) = [
        json.loads(p.inputs["policy"])
        for p in graph.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name == f"{workload}-pods"
    ]
    found: list[dict[str, Any]] = policy["Statement"]
    return found


def document_statements(graph: Graph, workload: str) -> dict[str, dict[str, Any]]:
    return {
        s["Sid"]: s
        for s in role_statements(graph, workload)
        if s.get("Sid", "").startswith("Document")
    }


@pytest.mark.parametrize(
    ("workload", "objects", "key"),
    [
        ("ai-orchestrator", ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"], ["kms:GenerateDataKey", "kms:Decrypt"]),
        ("indexer-worker", ["s3:GetObject"], ["kms:Decrypt"]),  # it never deletes
    ],
)  # fmt: skip
def test_document_users_may_touch_only_objects_under_the_prefix_and_use_only_its_key(
    stack_graph: Graph, workload: str, objects: list[str], key: list[str]
):
    found = document_statements(stack_graph, workload)
    assert set(found) == {"DocumentObjects", "DocumentListing", "DocumentKey"}
    bucket_arn = f"arn:aws:s3:::{documents_bucket(stack_graph)}"
    assert found["DocumentObjects"] == {
        "Sid": "DocumentObjects",
        "Effect": "Allow",
        "Action": objects,
        "Resource": f"{bucket_arn}/documents/*",
    }
    assert found["DocumentKey"] == {
        "Sid": "DocumentKey",
        "Effect": "Allow",
        "Action": key,
        "Resource": documents_key_arn(stack_graph),
        "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}},
    }


@pytest.mark.parametrize("workload", sorted(DOCUMENT_USERS))
def test_document_readers_may_list_the_prefix_so_a_missing_file_is_a_404(
    stack_graph: Graph, workload: str
):
    # Without s3:ListBucket S3 answers a missing key with 403 AccessDenied, and the
    # indexer would retry a deleted file as if it were a permission problem.
    listing = document_statements(stack_graph, workload)["DocumentListing"]
    assert listing == {
        "Sid": "DocumentListing",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{documents_bucket(stack_graph)}",
        "Condition": {"StringLike": {"s3:prefix": f"{DOCUMENTS_PREFIX}*"}},
    }


@pytest.mark.parametrize("workload", sorted(DOCUMENT_USERS | OTHERS))
def test_no_role_reaches_s3_or_kms_beyond_that(stack_graph: Graph, workload: str):
    grants = [
        s
        for s in role_statements(stack_graph, workload)
        if any(str(a).startswith(("s3:", "kms:")) or a == "*" for a in _list(s["Action"]))
    ]
    expected = 3 if workload in DOCUMENT_USERS else 0
    assert len(grants) == expected
    assert all(s["Effect"] == "Allow" and "*" not in json.dumps(s["Action"]) for s in grants)
    bucket = documents_bucket(stack_graph)
    for statement in role_statements(stack_graph, workload):
        for resource in _list(statement["Resource"]):
            assert resource != "*"
            if resource == f"arn:aws:s3:::{bucket}":  # the bucket itself: listing the prefix
                assert statement["Action"] == "s3:ListBucket"
                assert statement["Condition"]["StringLike"]["s3:prefix"] == f"{DOCUMENTS_PREFIX}*"
            elif bucket in resource:
                assert resource == f"arn:aws:s3:::{bucket}/{DOCUMENTS_PREFIX}*"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def config_maps(graph: Graph) -> dict[str, dict[str, str]]:
    return {
        r.inputs["metadata"]["labels"]["app.kubernetes.io/name"]: r.inputs["data"]
        for r in graph.of_type("kubernetes:core/v1:ConfigMap")
        if "labels" in r.inputs.get("metadata", {})
    }


def secret_keys(graph: Graph) -> dict[str, set[str]]:
    return {
        r.inputs["metadata"]["labels"]["app.kubernetes.io/name"]: set(r.inputs["stringData"])
        for r in graph.of_type("kubernetes:core/v1:Secret")
        if "labels" in r.inputs.get("metadata", {})
    }


@pytest.mark.parametrize("workload", sorted(DOCUMENT_USERS))
def test_document_users_are_told_the_bucket_and_the_upload_limit(stack_graph: Graph, workload: str):
    env = config_maps(stack_graph)[workload]
    assert env["DOCUMENTS_BUCKET"] == documents_bucket(stack_graph)
    limit = config_of(stack_graph.stack).documents.max_upload_mb
    assert env["DOCUMENT_MAX_BYTES"] == str(limit * 1024 * 1024) == "20971520"
    assert not {"DOCUMENTS_BUCKET", "DOCUMENT_MAX_BYTES"} & secret_keys(stack_graph)[workload]


@pytest.mark.parametrize("workload", sorted(OTHERS))
def test_other_workloads_are_not_told_the_bucket(stack_graph: Graph, workload: str):
    env = config_maps(stack_graph)[workload]
    assert not {"DOCUMENTS_BUCKET", "DOCUMENT_MAX_BYTES"} & set(env)


def test_the_diagram_shows_who_reaches_the_documents(stack_graph: Graph):
    labels, edges = architecture_edges(stack_graph)
    assert labels["documents"] == "S3 documents"
    assert {(s, t) for s, t in edges if "documents" in (s, t)} == {
        ("ai_orchestrator", "documents"),
        ("indexer_worker", "documents"),
    }


def test_an_upload_limit_kong_would_refuse_is_a_config_error():
    config = dict(load_stack(PROJECT_DIR, "prod").config)
    config["eduscale:documents"] = json.dumps({"maxUploadMb": 50})
    with pytest.raises(ConfigError) as error:
        parse_stack_config(config)
    (issue,) = error.value.issues
    assert issue.key == "eduscale:documents.maxUploadMb"
    assert "must be below gateway.maxBodyMb (50)" in issue.message


@pytest.mark.parametrize(
    ("field", "value"),
    [("noncurrentVersionDays", 0), ("accessLogRetentionDays", 3651), ("maxUploadMb", 0)],
)
def test_out_of_range_document_settings_are_config_errors(field: str, value: int):
    config = dict(load_stack(PROJECT_DIR, "dev").config)
    config["eduscale:documents"] = json.dumps({field: value})
    with pytest.raises(ConfigError) as error:
        parse_stack_config(config)
    assert [i.key for i in error.value.issues] == [f"eduscale:documents.{field}"]
