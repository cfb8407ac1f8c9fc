"""The services' image: an ECR repository, a build on `up` (or a prebuilt image), by digest."""

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
from conftest import PROJECT_DIR, preview_stack, run_program

from components.container_image import CACHE_TAG, ContainerImage, ContainerImageArgs
from infra.graph import Graph
from infra.stack_files import load_stack
from stacks.image_source import build_context_digest, release_tag

DIGEST = "sha256:" + "c" * 64
PREBUILT = f"registry.example/acme/eduscale:1.4.2@{DIGEST}"
POD_KINDS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:batch/v1:Job",
)


def image(**changes: Any) -> Graph:
    args: ContainerImageArgs = {
        "build": {"context": ".", "platforms": ["linux/arm64"], "tag": "v1.0.0-0123456789ab"},
        "keep_releases": 7,
    }
    args.update(changes)  # type: ignore[typeddict-item]

    def body() -> None:
        built = ContainerImage("api-image", args)
        pulumi.export("ref", built.image_ref)
        pulumi.export("url", built.repository_url)

    return run_program(body)


def repositories(graph: Graph) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in graph.of_type("aws:ecr/repository:Repository")}


def test_a_build_pushes_to_an_immutable_scanned_encrypted_repository_by_digest():
    graph = image()
    release = repositories(graph)["foreign-test-api-image"]
    assert release["imageTagMutability"] == "IMMUTABLE"
    assert release["imageScanningConfiguration"] == {"scanOnPush": True}
    (encryption,) = release["encryptionConfigurations"]
    assert encryption["encryptionType"] == "KMS"
    assert encryption["kmsKey"].startswith("arn:aws:kms:")
    build = graph.one("docker-build:index:Image").inputs
    assert build["push"] is True
    assert build["platforms"] == ["linux/arm64"]
    assert build["tags"] == [f"{graph.outputs['url']}:v1.0.0-0123456789ab"]
    assert build["context"] == {"location": "."}
    assert build["buildOnPreview"] is False
    (registry,) = build["registries"]
    assert registry["username"] == "AWS"
    assert registry["password"] == "[secret]"
    # What the workloads run: the pushed tag, pinned to the digest BuildKit reported.
    assert re.fullmatch(re.escape(build["tags"][0]) + r"@sha256:[0-9a-f]{64}", graph.outputs["ref"])


def test_the_build_cache_lives_in_a_mutable_repository_of_its_own():
    graph = image()
    cache = repositories(graph)[f"foreign-test-api-image-{CACHE_TAG}"]
    assert cache["imageTagMutability"] == "MUTABLE"
    build = graph.one("docker-build:index:Image").inputs
    ref = build["cacheTo"][0]["registry"]["ref"]
    assert ref.endswith(f"/foreign-test-api-image-{CACHE_TAG}:{CACHE_TAG}")
    assert build["cacheTo"][0]["registry"] | {"ref": ref} == {
        "ref": ref,
        "mode": "max",
        "imageManifest": True,
        "ociMediaTypes": True,
    }
    assert build["cacheFrom"] == [{"registry": {"ref": ref}}]


def test_lifecycles_keep_the_newest_releases_and_expire_superseded_cache():
    graph = image()
    policies = {
        r.name: json.loads(r.inputs["policy"])
        for r in graph.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    }
    (release_rule,) = policies["api-image-lifecycle"]["rules"]
    assert release_rule["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["*"],
        "countType": "imageCountMoreThan",
        "countNumber": 7,
    }
    (cache_rule,) = policies["api-image-cache-lifecycle"]["rules"]
    assert cache_rule["selection"]["tagStatus"] == "untagged"
    # The release repository never expires untagged manifests: those of a multi-platform
    # release are children of its index.
    assert all(
        r["selection"]["tagStatus"] == "tagged" for r in policies["api-image-lifecycle"]["rules"]
    )


def test_a_prebuilt_image_is_run_as_given_and_nothing_is_built():
    graph = image(build=None, prebuilt_image=PREBUILT)
    assert graph.outputs["ref"] == PREBUILT
    assert not graph.of_type("docker-build:index:Image")
    # The repository stays: the team's CI pushes its releases there.
    assert list(repositories(graph)) == ["foreign-test-api-image"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prebuilt_image": PREBUILT}, "exactly one of build"),
        ({"build": None}, "exactly one of build"),
        ({"build": None, "prebuilt_image": "registry.example/acme/eduscale:1.4.2"}, "must be pinned by digest"),
        ({"build": {"context": ".", "platforms": ["linux/s390x"], "tag": "v1"}}, "build.platforms must be"),
        ({"build": {"context": ".", "platforms": [], "tag": "v1"}}, "build.platforms must be"),
        ({"build": {"context": ".", "platforms": ["linux/arm64"], "tag": "v1:2"}}, "not a valid image tag"),
        ({"keep_releases": 0}, "keep_releases must be between 1 and 1000"),
    ],
)  # fmt: skip
def test_bad_args_are_refused_before_anything_is_declared(changes: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        image(**changes)


# --- the release tag --------------------------------------------------------------------


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (tmp_path / ".dockerignore").write_text("# not sent\ntests\n**/__pycache__\n*.md\n!README.md\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print('v1')\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_main.py").write_text("def test(): ...\n")
    (tmp_path / "README.md").write_text("readme\n")
    (tmp_path / "NOTES.md").write_text("notes\n")
    return tmp_path


def test_the_tag_changes_with_what_docker_is_sent_and_only_with_that(context: Path):
    before = build_context_digest(context)
    # Ignored by .dockerignore: BuildKit never sees them, so the image cannot change.
    (context / "tests" / "test_main.py").write_text("def test(): assert True\n")
    (context / "NOTES.md").write_text("other notes\n")
    (context / "app" / "__pycache__").mkdir()
    (context / "app" / "__pycache__" / "main.pyc").write_bytes(b"\0")
    assert build_context_digest(context) == before
    # Sent: a code change, a re-included file, the Dockerfile, the ignore rules, a new file.
    for path, text in [
        ("app/main.py", "print('v2')\n"),
        ("README.md", "readme 2\n"),
        ("Dockerfile", "FROM scratch\nCOPY app /srv\n"),
        (".dockerignore", "tests\n"),
        ("app/extra.py", "x = 1\n"),
    ]:
        previous = build_context_digest(context)
        (context / path).write_text(text)
        assert build_context_digest(context) != previous, path


def test_the_release_tag_is_the_version_and_the_context_hash():
    tag = release_tag(PROJECT_DIR)
    assert re.fullmatch(r"v0\.1\.0-[0-9a-f]{12}", tag), tag
    assert tag.endswith(build_context_digest(PROJECT_DIR)[:12])


def test_the_repository_context_excludes_what_the_image_does_not_carry(tmp_path: Path):
    copy = tmp_path / "repo"
    shutil.copytree(
        PROJECT_DIR,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".*_cache"),
    )
    before = build_context_digest(copy)
    (copy / "tests" / "infra" / "test_cli.py").write_text("# edited\n")
    assert build_context_digest(copy) == before
    (copy / "contracts" / "routes.py").write_text("# edited\n")
    assert build_context_digest(copy) != before


# --- in the stacks ----------------------------------------------------------------------


def test_every_pod_of_both_stacks_runs_an_image_pinned_by_digest(stack_graph: Graph):
    images = [
        container["image"]
        for kind in POD_KINDS
        for resource in stack_graph.of_type(kind)
        for container in [
            *resource.inputs["spec"]["template"]["spec"].get("initContainers", []),
            *resource.inputs["spec"]["template"]["spec"]["containers"],
        ]
    ]
    assert len(images) >= 10
    bad = [i for i in images if not re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", i)]
    assert not bad


def test_both_stacks_build_the_services_image_into_their_repository(stack_graph: Graph):
    build = stack_graph.one("docker-build:index:Image").inputs
    release = stack_graph.outputs["imageRepositoryUrl"]
    (tag,) = build["tags"]
    assert tag == f"{release}:{release_tag(PROJECT_DIR)}"
    assert stack_graph.outputs["servicesImage"].startswith(f"{tag}@sha256:")
    # Graviton node groups: the image is built for arm64.
    assert build["platforms"] == ["linux/arm64"]
    assert build["dockerfile"] == {"location": "./Dockerfile"}


def test_a_stack_with_a_prebuilt_image_builds_nothing_and_runs_it(tmp_path: Path):
    files = load_stack(PROJECT_DIR, "dev")
    stack_file = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    services = "  eduscale:services:\n"
    assert services in stack_file
    (tmp_path / "Pulumi.dev.yaml").write_text(
        stack_file.replace(services, f"{services}    image: {PREBUILT}\n")
    )
    graph = preview_stack("dev", tmp_path)
    assert files.stack == graph.stack
    assert not graph.of_type("docker-build:index:Image")
    assert graph.outputs["servicesImage"] == PREBUILT
    deployments = graph.of_type("kubernetes:apps/v1:Deployment")
    ours = [d for d in deployments if d.inputs["metadata"]["name"] != "api-gateway"]
    assert ours
    for deployment in ours:
        (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
        assert container["image"] == PREBUILT
    job = graph.one("kubernetes:batch/v1:Job").inputs
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == PREBUILT
