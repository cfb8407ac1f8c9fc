"""ECR rules: a release repository, its build-cache repository, the build that writes both and
the pods that run the release pass; each setting wrong or absent fails on the resource to fix;
the cache's exemptions hold only while the graph shows it is nothing but a cache; and the prod
graph, broken through `eduscale policy`, fails naming the rule."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from policy_harness import (
    Mutation,
    MutationCheck,
    policy_cli_on,
    policy_resource,
    resource_violations,
    resources_of,
    stack_violations,
)
from pulumi_policy import EnforcementLevel, PolicyResource, Severity
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError

from infra.graph import Graph
from infra.policy_check import check_graph
from policies import images

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
BUILD = "docker-build:index:Image"
DOCKER_IMAGE = "docker:index/image:Image"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/images"
DIGEST = "sha256:" + "b" * 64
RELEASE_NAME, CACHE_NAME = "eduscale-test-app", "eduscale-test-app-buildcache"
RELEASE_REF = f"{REGISTRY}/{RELEASE_NAME}:v1.0.0-abc"
CACHE_REF = f"{REGISTRY}/{CACHE_NAME}:buildcache"
RULES = [p.name for p in images.POLICIES]


def repository(name: str, *, mutable: bool = False, scan: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "imageTagMutability": "MUTABLE" if mutable else "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": scan},
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}],
        "forceDelete": False,
    }


def lifecycle_text(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


KEEP_20 = {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["*"],
           "countType": "imageCountMoreThan", "countNumber": 20}, "action": {"type": "expire"}}  # fmt: skip
RELEASE = repository(RELEASE_NAME)
CACHE = repository(CACHE_NAME, mutable=True, scan=False)
BUILD_PROPS: dict[str, Any] = {
    "push": True,
    "tags": [RELEASE_REF],
    "cacheFrom": [{"registry": {"ref": CACHE_REF}}],
    "cacheTo": [{"registry": {"ref": CACHE_REF, "mode": "max", "imageManifest": True}}],
}


def pod_running(image: str, *, init: bool = False) -> dict[str, Any]:
    field = "initContainers" if init else "containers"
    spec = {field: [{"name": "migrate" if init else "app", "image": image}]}
    if init:
        spec["containers"] = [{"name": "app", "image": f"{RELEASE_REF}@{DIGEST}"}]
    return {"metadata": {"name": "app", "namespace": "eduscale"}, "spec": {"template": {"spec": spec}}}  # fmt: skip


def stack(
    *,
    release: dict[str, Any] | None = RELEASE,
    cache: dict[str, Any] | None = CACHE,
    build: dict[str, Any] | None = BUILD_PROPS,
    lifecycles: bool = True,
    lifecycle_policy: str = lifecycle_text(KEEP_20),
    extra: Sequence[tuple[str, dict[str, Any]]] = (),
) -> list[PolicyResource]:
    """The release and cache repositories, their lifecycle policies, the build that writes
    both, and a Deployment and a Job that run the release by digest.

    `None` leaves a part out; `extra` adds (type, props) resources (they depend on the build).
    """
    resources: list[PolicyResource] = []
    repos: dict[str, PolicyResource] = {}
    names: dict[str, str] = {}
    for urn, props in (("urn:release", release), ("urn:cache", cache)):
        if props is not None:
            repos[urn] = policy_resource(REPOSITORY, props, urn)
            names[urn] = props.get("name", "")  # auto-named: the output is not an input
            resources.append(repos[urn])
    if lifecycles:
        for urn, repo in repos.items():
            policy = policy_resource(
                LIFECYCLE,
                {"repository": names[urn], "policy": lifecycle_policy},
                f"{urn}-lifecycle",
                [repo],
            )
            policy.property_dependencies = {"repository": [repo]}
            resources.append(policy)
    built: list[PolicyResource] = []
    if build is not None:
        image = policy_resource(BUILD, build, "urn:build", list(repos.values()))
        image.name = "build"  # its logical name, as the graph gives it
        image.property_dependencies = {
            "tags": [r for u, r in repos.items() if u == "urn:release"],
            "cacheTo": [r for u, r in repos.items() if u == "urn:cache"],
            "cacheFrom": [r for u, r in repos.items() if u == "urn:cache"],
        }
        resources.append(image)
        built = [image]
    running = [(DEPLOYMENT, pod_running(f"{RELEASE_REF}@{DIGEST}")),
               (JOB, pod_running(f"{RELEASE_REF}@{DIGEST}")), *extra]  # fmt: skip
    for index, (kind, props) in enumerate(running):
        resources.append(policy_resource(kind, props, f"urn:{kind.rsplit(':', 1)[-1]}-{index}", built))  # fmt: skip
    return resources


def by_urn(resources: list[PolicyResource], urn: str) -> PolicyResource:
    return next(r for r in resources if r.urn == urn)


STACK_RULES = [r for r in RULES if r != "ecr-kms-encryption"]


@pytest.mark.parametrize("rule", STACK_RULES)
def test_a_release_repository_its_build_cache_and_their_users_pass(rule: str):
    assert stack_violations(rule, stack()) == []


@pytest.mark.parametrize("props", [RELEASE, CACHE], ids=["release", "cache"])
def test_both_repositories_are_encrypted_with_our_key(props: dict[str, Any]):
    assert resource_violations("ecr-kms-encryption", REPOSITORY, props) == []


@pytest.mark.parametrize("rule", STACK_RULES)
def test_a_stack_without_repositories_has_nothing_to_check(rule: str):
    assert stack_violations(rule, stack(release=None, cache=None, build=None)) == []


def test_levels_and_severities():
    levels = {p.name: (p.enforcement_level, p.severity) for p in images.POLICIES}
    assert levels == {
        "ecr-immutable-tags": (EnforcementLevel.MANDATORY, Severity.HIGH),
        "ecr-scan-on-push": (EnforcementLevel.MANDATORY, Severity.MEDIUM),
        "ecr-kms-encryption": (EnforcementLevel.MANDATORY, Severity.MEDIUM),
        "ecr-lifecycle-policy": (EnforcementLevel.ADVISORY, Severity.LOW),
    }


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        (RELEASE_REF, RELEASE_NAME),
        (f"{RELEASE_REF}@{DIGEST}", RELEASE_NAME),
        (f"{REGISTRY}/{RELEASE_NAME}@{DIGEST}", RELEASE_NAME),
        (f"{REGISTRY}/{RELEASE_NAME}", RELEASE_NAME),
        (f"{REGISTRY}/team/app:1", "team/app"),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/app:1", "app"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app:1", "app"),
        (f"ghcr.io/eduscale/{RELEASE_NAME}:v1", None),
        (f"{RELEASE_NAME}:v1", None),
        ("kong:3.9.1", None),
        (f"{REGISTRY}/", None),
        (None, None),
    ],
)
def test_references_point_into_an_ecr_repository_by_host_and_path(ref: Any, repository: str | None):  # fmt: skip
    assert images.repository_of(ref) == repository


# Immutable tags -------------------------------------------------------------------------------


def immutable(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    return stack_violations("ecr-immutable-tags", resources)


@pytest.mark.parametrize(
    ("mutability", "shown"),
    [("MUTABLE", "(MUTABLE)"), (None, "(MUTABLE, the default)"),
     ("MUTABLE_WITH_EXCLUSION", "(MUTABLE_WITH_EXCLUSION)")],
)  # fmt: skip
def test_a_mutable_release_repository_fails(mutability: str | None, shown: str):
    release = {k: v for k, v in RELEASE.items() if k != "imageTagMutability"}
    if mutability:
        release["imageTagMutability"] = mutability
    ((message, urn),) = immutable(stack(release=release))
    assert urn == "urn:release"
    assert message.startswith(f"repository {RELEASE_NAME} has mutable tags {shown}: a release tag")


def test_immutable_with_exclusions_that_spare_release_tags_passes():
    filters = [{"filter": "dev-*", "filterType": "WILDCARD"}, {"filter": "latest", "filterType": "WILDCARD"}]  # fmt: skip
    release = {**RELEASE, "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
               "imageTagMutabilityExclusionFilters": filters}  # fmt: skip
    assert immutable(stack(release=release)) == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("*", "with the exclusion filter *: every tag stays mutable"),
        ("**", "with the exclusion filter *: every tag stays mutable"),
        ("v1.*", "leaves release tag v1.0.0-abc mutable (exclusion filter v1.*), and docker-build image build pushes to it (tags)"),
    ],
)  # fmt: skip
def test_an_exclusion_that_covers_a_release_tag_fails(pattern: str, message: str):
    release = {**RELEASE, "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
               "imageTagMutabilityExclusionFilters": [{"filter": pattern, "filterType": "WILDCARD"}]}  # fmt: skip
    ((found, urn),) = immutable(stack(release=release))
    assert urn == "urn:release"
    assert message in found


def test_a_mutable_repository_nothing_caches_into_fails_whatever_its_name():
    ((message, urn),) = immutable(stack(build={**BUILD_PROPS, "cacheTo": []}))
    assert urn == "urn:cache"
    assert f"repository {CACHE_NAME} has mutable tags (MUTABLE): a release tag" in message


def test_a_disabled_cache_export_is_no_cache():
    cache_to = [{"registry": {"ref": CACHE_REF}, "disabled": True}]
    assert [u for _, u in immutable(stack(build={**BUILD_PROPS, "cacheTo": cache_to}))] == ["urn:cache"]  # fmt: skip


def test_a_cache_export_to_another_registry_is_no_cache_here():
    cache_to = [{"registry": {"ref": f"ghcr.io/{CACHE_NAME}:buildcache"}}]
    assert [u for _, u in immutable(stack(build={**BUILD_PROPS, "cacheTo": cache_to}))] == ["urn:cache"]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "extra", "message"),
    [
        ({**BUILD_PROPS, "tags": [RELEASE_REF, f"{REGISTRY}/{CACHE_NAME}:v1"]}, [], "docker-build image build pushes to it (tags)"),
        ({**BUILD_PROPS, "exports": [{"registry": {"names": [f"{REGISTRY}/{CACHE_NAME}:v1"]}}]}, [], "docker-build image build pushes to it (exports)"),
        (BUILD_PROPS, [(DOCKER_IMAGE, {"imageName": f"{REGISTRY}/{CACHE_NAME}:tool"})], "docker image DockerImage pushes to it (imageName)"),
        (BUILD_PROPS, [(JOB, pod_running(f"{CACHE_REF}@{DIGEST}"))], 'container "app" of Job app runs an image from it'),
        (BUILD_PROPS, [(DEPLOYMENT, pod_running(f"{REGISTRY}/{CACHE_NAME}@{DIGEST}", init=True))], 'init container "migrate" of Deployment app runs an image from it'),
        (BUILD_PROPS, [(CRON_JOB, {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "nightly", "image": CACHE_REF}]}}}}}})], 'container "nightly" of CronJob '),
        (BUILD_PROPS, [(POD, {"metadata": {"name": "debug"}, "spec": {"containers": [{"name": "app", "image": CACHE_REF}]}})], 'container "app" of Pod debug runs an image from it'),
    ],
    ids=["tagged by the build", "exported by the build", "pushed by a docker image", "run by a Job",
         "run by an init container", "run by a CronJob", "run by a Pod"],
)  # fmt: skip
def test_a_mutable_cache_that_is_also_pushed_to_or_run_from_fails(
    build: dict[str, Any], extra: list[tuple[str, dict[str, Any]]], message: str
):
    resources = stack(build=build, extra=extra)
    for resource in resources:  # the docker image's logical name, as the graph would give it
        if resource.resource_type == DOCKER_IMAGE:
            resource.name = "DockerImage"
    ((found, urn),) = immutable(resources)
    assert urn == "urn:cache"
    assert found.startswith(
        f"repository {CACHE_NAME} has mutable tags (MUTABLE) as the build cache of build, but it "
        "is not only a cache: "
    )
    assert message in found


def test_an_auto_named_cache_is_recognised_through_the_graph():
    unnamed = {k: v for k, v in CACHE.items() if k != "name"}
    resources = stack(cache=unnamed)
    assert immutable(resources) == []
    image = by_urn(resources, "urn:build")
    image.property_dependencies = {**image.property_dependencies, "tags": [by_urn(resources, "urn:cache")]}  # fmt: skip
    assert [u for _, u in immutable(resources)] == ["urn:cache"]


def test_an_unknown_mutability_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        immutable(stack(release={**RELEASE, "imageTagMutability": UNKNOWN_STRING_VALUE}))


def test_an_unknown_reference_is_not_a_pass_where_the_cache_exception_needs_it():
    cache_to = [{"registry": {"ref": UNKNOWN_STRING_VALUE}}]
    with pytest.raises(UnknownValueError):
        immutable(stack(build={**BUILD_PROPS, "cacheTo": cache_to}))
    pods = [(JOB, pod_running(UNKNOWN_STRING_VALUE))]
    with pytest.raises(UnknownValueError):
        immutable(stack(extra=pods))


def test_references_are_not_read_when_every_repository_is_immutable():
    unknown = {**BUILD_PROPS, "tags": [UNKNOWN_STRING_VALUE], "cacheTo": [{"registry": {"ref": UNKNOWN_STRING_VALUE}}]}  # fmt: skip
    assert immutable(stack(cache=None, build=unknown)) == []


# Scan on push ---------------------------------------------------------------------------------


def scans(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    return stack_violations("ecr-scan-on-push", resources)


@pytest.mark.parametrize(
    "release",
    [{**RELEASE, "imageScanningConfiguration": {"scanOnPush": False}},
     {k: v for k, v in RELEASE.items() if k != "imageScanningConfiguration"}],
    ids=["off", "absent"],
)  # fmt: skip
def test_a_release_repository_that_does_not_scan_on_push_fails(release: dict[str, Any]):
    ((message, urn),) = scans(stack(release=release))
    assert urn == "urn:release"
    assert f"repository {RELEASE_NAME} does not scan images on push" in message


def test_a_pure_build_cache_need_not_scan_but_a_cache_that_is_pushed_to_must():
    assert scans(stack()) == []
    pushed = {**BUILD_PROPS, "tags": [RELEASE_REF, f"{REGISTRY}/{CACHE_NAME}:v1"]}
    assert [u for _, u in scans(stack(build=pushed))] == ["urn:cache"]
    assert [u for _, u in scans(stack(build=None))] == ["urn:cache"]


@pytest.mark.parametrize(
    ("frequency", "pattern", "covered"),
    [("SCAN_ON_PUSH", "eduscale-*", True), ("CONTINUOUS_SCAN", RELEASE_NAME, True),
     ("MANUAL", "*", False), ("SCAN_ON_PUSH", "other-*", False)],
)  # fmt: skip
def test_a_registry_scanning_rule_can_cover_a_repository(frequency: str, pattern: str, covered: bool):  # fmt: skip
    release = {**RELEASE, "imageScanningConfiguration": {"scanOnPush": False}}
    rules = [{"scanFrequency": frequency, "repositoryFilters": [{"filter": pattern, "filterType": "WILDCARD"}]}]  # fmt: skip
    config = ("urn:scanning", {"scanType": "ENHANCED", "rules": rules})
    resources = [*stack(release=release), policy_resource(SCANNING, config[1], config[0])]
    assert (scans(resources) == []) is covered


def test_an_unknown_scan_setting_is_not_a_pass():
    release = {**RELEASE, "imageScanningConfiguration": {"scanOnPush": UNKNOWN_BOOLEAN_VALUE}}
    with pytest.raises(UnknownValueError):
        scans(stack(release=release))


# KMS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encryption", "message"),
    [
        (None, "is encrypted with AES256 under keys AWS manages"),
        ([], "is encrypted with AES256 under keys AWS manages"),
        ([{"encryptionType": "AES256"}], "is encrypted with AES256 under keys AWS manages"),
        ([{"encryptionType": "KMS"}], "AWS-managed key aws/ecr, not a customer-managed KMS key"),
        ([{"encryptionType": "KMS", "kmsKey": "alias/aws/ecr"}], "AWS-managed key aws/ecr"),
        ([{"encryptionType": "KMS", "kmsKey": "arn:aws:kms:eu-west-1:123456789012:alias/aws/ecr"}], "AWS-managed key aws/ecr"),
        ([{"encryptionType": "ROT13"}], "has no valid encryptionType ('ROT13')"),
    ],
)  # fmt: skip
def test_a_repository_not_encrypted_with_our_key_fails(encryption: Any, message: str):
    for base, name in ((RELEASE, RELEASE_NAME), (CACHE, CACHE_NAME)):  # no cache exemption
        props = {k: v for k, v in base.items() if k != "encryptionConfigurations"}
        if encryption is not None:
            props["encryptionConfigurations"] = encryption
        (found,) = resource_violations("ecr-kms-encryption", REPOSITORY, props)
        assert found.startswith(f"repository {name} ")
        assert message in found


def test_dual_layer_kms_with_our_key_passes():
    props = {**RELEASE, "encryptionConfigurations": [{"encryptionType": "KMS_DSSE", "kmsKey": KEY_ARN}]}  # fmt: skip
    assert resource_violations("ecr-kms-encryption", REPOSITORY, props) == []


def test_an_unknown_key_is_not_a_pass():
    props = {**RELEASE, "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": UNKNOWN_STRING_VALUE}]}  # fmt: skip
    with pytest.raises(UnknownValueError):
        resource_violations("ecr-kms-encryption", REPOSITORY, props)


# Lifecycle ------------------------------------------------------------------------------------


def lifecycle(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    return stack_violations("ecr-lifecycle-policy", resources)


def test_a_repository_without_lifecycle_policy_fails():
    found = lifecycle(stack(lifecycles=False))
    assert [u for _, u in found] == ["urn:release", "urn:cache"]
    assert found[0][0].startswith(f"repository {RELEASE_NAME} has no lifecycle policy")


def test_a_lifecycle_policy_that_names_the_repository_as_a_string_counts():
    resources = stack(lifecycles=False, cache=None)
    named = policy_resource(LIFECYCLE, {"repository": RELEASE_NAME, "policy": lifecycle_text(KEEP_20)}, "urn:lc")  # fmt: skip
    assert lifecycle([*resources, named]) == []
    other = policy_resource(LIFECYCLE, {"repository": "other", "policy": lifecycle_text(KEEP_20)}, "urn:lc")  # fmt: skip
    assert [u for _, u in lifecycle([*resources, other])] == ["urn:release"]


def test_a_lifecycle_policy_linked_to_another_repository_does_not_count():
    resources = stack()
    release_policy = by_urn(resources, "urn:release-lifecycle")
    release_policy.property_dependencies = {"repository": [by_urn(resources, "urn:cache")]}
    assert [u for _, u in lifecycle(resources)] == ["urn:release"]


NOTHING_EXPIRES = "expires nothing (no rule's action is expire)"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (lifecycle_text(), NOTHING_EXPIRES),
        (lifecycle_text({**KEEP_20, "action": {"type": "keep"}}), NOTHING_EXPIRES),
        (json.dumps({"Rules": [KEEP_20]}), NOTHING_EXPIRES),
        ("{not json", "is not valid JSON"),
    ],
    ids=["no rules", "no expire action", "misspelt rules", "not JSON"],
)
def test_a_lifecycle_policy_that_expires_nothing_fails_on_the_policy(policy: str, message: str):
    found = lifecycle(stack(cache=None, lifecycle_policy=policy))
    assert found == [
        (f"the lifecycle policy of repository {RELEASE_NAME} {message}", "urn:release-lifecycle")
    ]


def test_an_unknown_lifecycle_document_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        lifecycle(stack(cache=None, lifecycle_policy=UNKNOWN_STRING_VALUE))


# The recorded stacks, through the CLI --------------------------------------------------------


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_the_shipped_stacks_pass_every_image_rule(stack_name: str, request: pytest.FixtureRequest):
    graph: Graph = request.getfixturevalue(f"{stack_name}_graph")
    assert check_graph(graph, images.POLICIES) == []
    repositories = graph.of_type(REPOSITORY)
    assert sorted(r.inputs["imageTagMutability"] for r in repositories) == ["IMMUTABLE", "MUTABLE"]


def named(document: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    found = next(r for r in resources_of(document, kind) if r["name"] == name)
    inputs: dict[str, Any] = found["inputs"]
    return inputs


def release_mutable(document: dict[str, Any]) -> None:
    named(document, REPOSITORY, "services-image")["imageTagMutability"] = "MUTABLE"


def cache_also_tagged(document: dict[str, Any]) -> None:
    build = named(document, BUILD, "services-image-build")
    cache_ref = build["cacheTo"][0]["registry"]["ref"]
    build["tags"].append(cache_ref.rsplit(":", 1)[0] + ":v1")


def job_runs_from_the_cache(document: dict[str, Any]) -> None:
    job = named(document, JOB, "schema-migration-job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["image"] = container["image"].replace("services-image:", "services-image-buildcache:")


def release_scan_off(document: dict[str, Any]) -> None:
    named(document, REPOSITORY, "services-image")["imageScanningConfiguration"]["scanOnPush"] = (
        False
    )


def release_aes256(document: dict[str, Any]) -> None:
    named(document, REPOSITORY, "services-image")["encryptionConfigurations"] = [{"encryptionType": "AES256"}]  # fmt: skip


MUTATIONS: list[Mutation] = [
    ("release repository MUTABLE", release_mutable, "ecr-immutable-tags"),
    ("cache repository also tagged", cache_also_tagged, "ecr-immutable-tags"),
    ("schema Job runs from the cache", job_runs_from_the_cache, "ecr-immutable-tags"),
    ("release scan on push off", release_scan_off, "ecr-scan-on-push"),
    ("release encrypted with AES256", release_aes256, "ecr-kms-encryption"),
]


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_prod_graph_fails_naming_the_rule(
    case: Mutation, prod_graph_broken_by: MutationCheck
) -> None:
    prod_graph_broken_by(case)


def test_a_repository_without_lifecycle_policy_is_reported_but_does_not_block(
    prod_graph: Graph, tmp_path: Path
):
    def drop(document: dict[str, Any]) -> None:
        document["resources"] = [
            r for r in document["resources"] if r["name"] != "services-image-lifecycle"
        ]

    status, broken = policy_cli_on(prod_graph, tmp_path, drop)
    assert (status, broken) == (0, set())
    report = json.loads((tmp_path / "violations.json").read_text())
    assert [(v["rule"], v["mandatory"]) for v in report] == [("ecr-lifecycle-policy", False)]
