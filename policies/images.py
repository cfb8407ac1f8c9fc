"""Rules for the container registry: ECR repositories, and what is built into and run from them.

A release repository holds the images pods run: its tags are immutable (a release tag names
one build forever), images are scanned on push, layers are encrypted with our KMS key, and a
lifecycle policy expires old images. BuildKit's registry cache is the one exception to
immutability: every build overwrites its cache tag. So a repository may keep mutable tags
when the graph shows it is only a cache: some `docker-build` image exports its cache there
(`cacheTo[].registry.ref`), and nothing else points into it (no image is pushed there
under a tag, no container of any pod-bearing object runs an image from it). Such a
repository need not scan on push either: it holds cache manifests, which nothing runs.

Where a reference points is read from its text, as the wire inputs have it:
`<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag][@sha256:...]`, compared with the
repository's `name` input (its physical name). A repository declared without `name` is
auto-named; then the inputs that depend on it in the graph (property dependencies) count as
pointing into it. A reference unknown during preview (the URL of a repository not created
yet) makes the rule a "cannot check during preview" note, like every rule's unknowns, and is
read only where the answer depends on it.
"""

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies.kubernetes_pods import POD_KINDS, containers, kind_of
from policies.network import linked
from policies.support import get, resource_rule, stack_rule

__all__ = ["POLICIES", "REPOSITORY", "repository_of"]

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REGISTRY_SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
BUILDKIT_IMAGE = "docker-build:index:Image"
DOCKER_IMAGE = "docker:index/image:Image"
IMMUTABLE = "IMMUTABLE"
IMMUTABLE_WITH_EXCLUSION = "IMMUTABLE_WITH_EXCLUSION"
KMS_TYPES = frozenset({"KMS", "KMS_DSSE"})
AWS_MANAGED_ECR_KEY = "alias/aws/ecr"
SCANNING_FREQUENCIES = frozenset({"SCAN_ON_PUSH", "CONTINUOUS_SCAN"})
ECR_HOST = re.compile(r"\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")

Violations = Iterable[tuple[str, str | None]]


def repository_of(ref: Any) -> str | None:
    """The ECR repository an image reference points into, or None if it is not in ECR."""
    if not isinstance(ref, str):
        return None
    host, slash, path = ref.partition("@")[0].partition("/")
    if not slash or not ECR_HOST.fullmatch(host):
        return None
    head, _, last = path.rpartition("/")
    name = last.split(":", 1)[0]
    if not name:
        return None
    return f"{head}/{name}" if head else name


def _tag_of(ref: str) -> str:
    last = ref.partition("@")[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _wildcard(pattern: Any, value: str) -> bool:
    """Whether an ECR filter (`*` is the only wildcard) matches `value`."""
    if not isinstance(pattern, str) or not pattern:
        return False
    expression = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(expression, value) is not None


def _name(repository: PolicyResource) -> str | None:
    name = get(repository.props, "name")
    return name if isinstance(name, str) and name else None


def _label(repository: PolicyResource) -> str:
    """The repository's physical name where it is known, else its logical name."""
    return _name(repository) or repository.name


def _object(resource: PolicyResource) -> str:
    """`Deployment course`: a pod-bearing object as a message names it."""
    name = get(resource.props, "metadata.name") or resource.name
    return f"{kind_of(resource.resource_type)} {name}"


# -- what points into a repository ------------------------------------------------------------

Refs = Callable[[], Iterable[Any]]


def _cache_refs(image: PolicyResource) -> Refs:
    return lambda: [
        get(cache, "registry.ref")
        for cache in get(image.props, "cacheTo") or []
        if get(cache, "disabled") is not True
    ]


def _pushed_refs(image: PolicyResource, key: str) -> Refs:
    """The references an image input pushes to (its tags, its registry exports)."""

    def refs() -> list[Any]:
        value = get(image.props, key)
        if key == "exports":
            return [
                ref
                for export in value or []
                for kind in ("registry", "image")
                for ref in get(export, f"{kind}.names") or []
            ]
        if key == "imageName":
            return [value]
        return list(value or [])

    return refs


def _image_ref(container: Any) -> Refs:
    return lambda: [get(container, "image")]


_PUSH_KEYS = {BUILDKIT_IMAGE: ("tags", "exports"), DOCKER_IMAGE: ("imageName",)}


class _Registry:
    """The stack's repositories and what builds into and runs from them."""

    def __init__(self, resources: Sequence[PolicyResource]) -> None:
        self.resources = resources
        self.repositories = [r for r in resources if r.resource_type == REPOSITORY]

    def _of(self, *types: str) -> list[PolicyResource]:
        return [r for r in self.resources if r.resource_type in types]

    @staticmethod
    def _into(resource: PolicyResource, key: str, refs: Refs, repository: PolicyResource) -> bool:
        name = _name(repository)
        if name is None:  # auto-named: only the graph knows
            return any(r.urn == repository.urn for r in linked(resource, key, [REPOSITORY]))
        return any(repository_of(ref) == name for ref in refs())

    def cache_writers(self, repository: PolicyResource) -> list[str]:
        """The docker-build images that export their registry cache into `repository`."""
        return [
            image.name
            for image in self._of(BUILDKIT_IMAGE)
            if self._into(image, "cacheTo", _cache_refs(image), repository)
        ]

    def pushes(self, repository: PolicyResource) -> Iterator[tuple[str, list[str]]]:
        """(what, the references it pushes) for each image input that pushes into it."""
        name = _name(repository)
        for image in self._of(*_PUSH_KEYS):
            for key in _PUSH_KEYS[image.resource_type]:
                refs = _pushed_refs(image, key)
                if self._into(image, key, refs, repository):
                    kind = "docker-build" if image.resource_type == BUILDKIT_IMAGE else "docker"
                    mine = [r for r in refs() if name and repository_of(r) == name]
                    yield f"{kind} image {image.name} pushes to it ({key})", mine

    def runs(self, repository: PolicyResource) -> Iterator[str]:
        """A description of each container whose image is in `repository`."""
        for resource in self._of(*POD_KINDS):
            pod = containers(resource.props, resource_type=resource.resource_type, ephemeral=True)
            for label, container in pod:
                if self._into(resource, "spec", _image_ref(container), repository):
                    yield f"{label} of {_object(resource)} runs an image from it"

    def other_uses(self, repository: PolicyResource) -> Iterator[str]:
        """What points into `repository` besides a build cache (pushes, then pods)."""
        for what, _ in self.pushes(repository):
            yield what
        yield from self.runs(repository)

    def only_cache(self, repository: PolicyResource) -> bool:
        """Whether `repository` serves solely as a BuildKit registry cache."""
        if not self.cache_writers(repository):
            return False
        return next(self.other_uses(repository), None) is None

    def scanned_by_registry(self, repository: PolicyResource) -> bool:
        """Whether a registry scanning rule (on push or continuous) covers `repository`."""
        name = _name(repository)
        if name is None:
            return False
        return any(
            get(rule, "scanFrequency") in SCANNING_FREQUENCIES
            and any(_wildcard(get(f, "filter"), name) for f in get(rule, "repositoryFilters") or [])
            for config in self._of(REGISTRY_SCANNING)
            for rule in get(config.props, "rules") or []
        )


# -- immutable tags ---------------------------------------------------------------------------


def _exclusions(registry: _Registry, repository: PolicyResource) -> Violations:
    label = _label(repository)
    filters = [
        get(f, "filter") for f in get(repository.props, "imageTagMutabilityExclusionFilters") or []
    ]
    if any(isinstance(f, str) and f and set(f) == {"*"} for f in filters):
        yield (
            (
                f"repository {label} is IMMUTABLE_WITH_EXCLUSION with the exclusion filter *: "
                "every tag stays mutable"
            ),
            repository.urn,
        )
        return
    for what, refs in registry.pushes(repository):
        for ref in refs:
            tag = _tag_of(ref)
            matched = next((f for f in filters if _wildcard(f, tag)), None)
            if matched is not None:
                yield (
                    (
                        f"repository {label} leaves release tag {tag} mutable (exclusion filter "
                        f"{matched}), and {what}"
                    ),
                    repository.urn,
                )


def _immutable_tags(args: StackValidationArgs) -> Violations:
    registry = _Registry(args.resources)
    for repository in registry.repositories:
        label = _label(repository)
        declared = get(repository.props, "imageTagMutability")
        if declared == IMMUTABLE:
            continue
        if declared == IMMUTABLE_WITH_EXCLUSION:
            yield from _exclusions(registry, repository)
            continue
        mutability = str(declared) if declared else "MUTABLE, the default"
        writers = registry.cache_writers(repository)
        if not writers:
            yield (
                (
                    f"repository {label} has mutable tags ({mutability}): a release tag can be "
                    "pushed again with other bytes, so it no longer names the build that was "
                    "reviewed and scanned"
                ),
                repository.urn,
            )
            continue
        other = next(registry.other_uses(repository), None)
        if other is not None:
            yield (
                (
                    f"repository {label} has mutable tags ({mutability}) as the build cache of "
                    f"{', '.join(writers)}, but it is not only a cache: {other}"
                ),
                repository.urn,
            )


# -- scan on push -----------------------------------------------------------------------------


def _scan_on_push(args: StackValidationArgs) -> Violations:
    registry = _Registry(args.resources)
    for repository in registry.repositories:
        if get(repository.props, "imageScanningConfiguration.scanOnPush") is True:
            continue
        if registry.scanned_by_registry(repository) or registry.only_cache(repository):
            continue
        yield (
            (
                f"repository {_label(repository)} does not scan images on push "
                "(imageScanningConfiguration.scanOnPush), and no registry scanning rule covers it: "
                "a known vulnerability in a release goes unseen"
            ),
            repository.urn,
        )


# -- KMS --------------------------------------------------------------------------------------


def _aws_managed(key: str) -> bool:
    return key == AWS_MANAGED_ECR_KEY or key.endswith(f":{AWS_MANAGED_ECR_KEY}")


def _kms_encryption(args: ResourceValidationArgs) -> Iterable[str]:
    name = get(args.props, "name")
    label = name if isinstance(name, str) and name else args.name
    config = get(args.props, "encryptionConfigurations.0")
    kind = get(config, "encryptionType") if config is not None else None
    if kind is None or kind == "AES256":
        yield (
            f"repository {label} is encrypted with AES256 under keys AWS manages "
            "(encryptionConfigurations declares no KMS key)"
        )
    elif kind not in KMS_TYPES:
        yield f"repository {label} has no valid encryptionType ({kind!r})"
    else:
        key = get(config, "kmsKey")
        if not isinstance(key, str) or not key or _aws_managed(key):
            yield (
                f"repository {label} is encrypted with the AWS-managed key aws/ecr, not a "
                "customer-managed KMS key (kmsKey)"
            )


# -- lifecycle --------------------------------------------------------------------------------


def _repositories_of(
    policy: PolicyResource, repositories: Sequence[PolicyResource]
) -> list[PolicyResource]:
    """The repositories a lifecycle policy's `repository` refers to: by dependency, or name."""
    found = linked(policy, "repository", [REPOSITORY])
    if found:
        return found
    named = get(policy.props, "repository")
    if not isinstance(named, str) or not named:
        return []
    return [r for r in repositories if _name(r) == named]


def _expires(document: Any) -> bool:
    rules = get(document, "rules") if isinstance(document, Mapping) else None
    return any(str(get(rule, "action.type") or "").lower() == "expire" for rule in rules or [])


def _lifecycle(args: StackValidationArgs) -> Violations:
    repositories = [r for r in args.resources if r.resource_type == REPOSITORY]
    owned: dict[str, list[PolicyResource]] = {r.urn: [] for r in repositories}
    for policy in args.resources:
        if policy.resource_type == LIFECYCLE_POLICY:
            for repository in _repositories_of(policy, repositories):
                owned[repository.urn].append(policy)
    for repository in repositories:
        label = _label(repository)
        if not owned[repository.urn]:
            yield (
                (
                    f"repository {label} has no lifecycle policy: old images pile up, billed, and "
                    "stay pullable with their unpatched vulnerabilities"
                ),
                repository.urn,
            )
        for policy in owned[repository.urn]:
            text = get(policy.props, "policy")
            try:
                document = json.loads(text) if isinstance(text, str) else text
            except json.JSONDecodeError:
                yield f"the lifecycle policy of repository {label} is not valid JSON", policy.urn
                continue
            if not _expires(document):
                yield (
                    (
                        f"the lifecycle policy of repository {label} expires nothing (no rule's "
                        "action is expire)"
                    ),
                    policy.urn,
                )


POLICIES = [
    stack_rule(
        "ecr-immutable-tags",
        "A release tag names one build forever: ECR repositories refuse a push to an existing "
        "tag (IMMUTABLE, or IMMUTABLE_WITH_EXCLUSION that excludes no release tag). A "
        "repository the graph shows to be only a BuildKit registry cache (a build's cacheTo, "
        "no image pushed there by tag, no pod running from it) may stay mutable.",
        severity=Severity.HIGH, mandatory=True, check=_immutable_tags,
        fix="Set imageTagMutability = 'IMMUTABLE' on the repository (components/"
        "container_image.py); keep build caches in a repository of their own.",
        scanners=["CKV_AWS_51", "AWS-0031", "AWSConfig:ecr-private-tag-immutability-enabled"],
    ),
    stack_rule(
        "ecr-scan-on-push",
        "Every image pushed to a release repository is scanned for known vulnerabilities "
        "(scan on push, or a registry scanning rule that covers the repository); a pure build "
        "cache holds no image that runs and is exempt.",
        severity=Severity.MEDIUM, mandatory=True, check=_scan_on_push,
        fix="Set imageScanningConfiguration.scanOnPush = true, or add a registry scanning "
        "rule (SCAN_ON_PUSH or CONTINUOUS_SCAN) whose filter matches the repository.",
        scanners=["CKV_AWS_163", "AWS-0030", "AWSConfig:ecr-private-image-scanning-enabled"],
    ),
    resource_rule(
        "ecr-kms-encryption",
        "Image layers (our code and its dependencies) are encrypted with our own KMS key, so "
        "who can read them is a grant on the key that can be audited and revoked.",
        types=[REPOSITORY], severity=Severity.MEDIUM, mandatory=True, check=_kms_encryption,
        fix="Set encryptionConfigurations = [{encryptionType: 'KMS', kmsKey: <customer-managed "
        "key ARN>}] (encryption is fixed at creation: the repository is replaced).",
        scanners=["CKV_AWS_136", "AWS-0033", "AWSConfig:ecr-repository-cmk-encryption-enabled"],
    ),
    stack_rule(
        "ecr-lifecycle-policy",
        "Every repository has a lifecycle policy that expires images, so storage stays "
        "bounded and old, unpatched images stop being pullable.",
        severity=Severity.LOW, mandatory=False, check=_lifecycle,
        fix="Add an aws.ecr.LifecyclePolicy for the repository with at least one rule whose "
        "action is expire (e.g. keep the newest N tagged images).",
        scanners=["AWSConfig:ecr-private-lifecycle-policy-configured"],
    ),
]  # fmt: skip
