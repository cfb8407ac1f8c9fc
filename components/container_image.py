"""An image of ours in ECR: built and pushed by `pulumi up`, or prebuilt by the team's CI.

Workloads run the image by digest (`<repository>:<tag>@sha256:...`), never by tag alone:
every node pulls the same bytes, a rebuild whose bytes changed rolls the pods, and one
whose bytes did not (a cache hit) changes nothing downstream.

The repository, after terraform-aws-modules/ecr: tags are immutable, so a release tag
can never be pointed at other bytes; images are scanned on push; layers are encrypted
with a rotating customer-managed KMS key (ECR decrypts for pulls through its own grant,
so the nodes' pull role needs no key permission); a lifecycle policy keeps the newest
`keep_releases` images and expires older ones, so a rollback can reach that far back.

The build uses Pulumi's BuildKit provider (`pulumi-docker-build`) on the machine that
runs `pulumi up`: one image per platform in `platforms` (a multi-platform index when
there are several), pushed with credentials from ECR's authorization token. BuildKit's
registry cache (`mode=max`, so the dependency layers of the builder stage are kept too)
lives in a second repository of the component, because it is overwritten by every build
and immutable tags would refuse that; its lifecycle expires superseded cache manifests.
Nothing in the release repository is ever untagged by a cache write, so no lifecycle
rule there touches untagged manifests (the per-platform manifests of a multi-platform
release are untagged children of its index and must live as long as it does).
"""

import json
import re
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.type_tokens import CONTAINER_IMAGE
from components.workload import check_pinned

__all__ = [
    "CACHE_TAG",
    "ContainerImage",
    "ContainerImageArgs",
    "ImageBuildArgs",
]

CACHE_TAG = "buildcache"
"""The tag BuildKit's registry cache is written to, in the cache repository."""
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_PLATFORMS = ("linux/amd64", "linux/arm64")
_CACHE_DAYS = 14


class ImageBuildArgs(TypedDict):
    """How `pulumi up` builds the image."""

    context: str
    """Directory sent to BuildKit as the build context (e.g. `.`, the repository root)."""
    dockerfile: NotRequired[str]
    """Path of the Dockerfile (default `<context>/Dockerfile`)."""
    platforms: list[str]
    """Platforms to build for: `linux/arm64` (Graviton nodes), `linux/amd64`, or both."""
    tag: str
    """The release tag, derived from the sources (a new tag when they change); immutable."""


class ContainerImageArgs(TypedDict):
    """Inputs of `ContainerImage`: exactly one of `build` and `prebuilt_image`."""

    build: NotRequired[ImageBuildArgs | None]
    """Build the image during `pulumi up` and push it to the component's repository."""
    prebuilt_image: NotRequired[str | None]
    """An image built elsewhere (e.g. pushed to this repository by the team's CI), pinned
    by digest: `name[:tag]@sha256:<64 hex>`."""
    keep_releases: NotRequired[int]
    """Images the repository keeps before the oldest expire (default 20)."""


class ContainerImage(pulumi.ComponentResource):
    """An ECR repository (immutable, scanned, KMS-encrypted) and the image workloads run."""

    repository_url: pulumi.Output[str]
    """Where releases are pushed: `<account>.dkr.ecr.<region>.amazonaws.com/<name>`."""
    repository_arn: pulumi.Output[str]
    """The repository's ARN (for a CI role that pushes prebuilt images)."""
    image_ref: pulumi.Output[str]
    """The image to run, pinned by digest: `<repository>:<tag>@sha256:<64 hex>`."""

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(CONTAINER_IMAGE.token, name, None, CONTAINER_IMAGE.options(opts))
        build, prebuilt = _checked(args)
        keep = args.get("keep_releases", 20)
        if not 1 <= keep <= 1000:  # noqa: PLR2004 - ECR's countNumber is at least 1
            raise ValueError(f"keep_releases must be between 1 and 1000, got {keep}")
        child = pulumi.ResourceOptions(parent=self)
        key = customer_managed_key(name, "images", parent=self)
        repository = self._repository(
            name, physical_name(name), key, mutable=False, scan=True, parent=self
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(_release_lifecycle(keep)),
            opts=child,
        )
        if build is not None:
            image_ref = self._build(name, build, repository, key)
        else:
            image_ref = pulumi.Output.from_input(str(prebuilt))
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.image_ref = image_ref
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
                "image_ref": self.image_ref,
            }
        )

    @staticmethod
    def _repository(
        name: str,
        physical: str,
        key: aws.kms.Key,
        *,
        mutable: bool,
        scan: bool,
        parent: pulumi.Resource,
    ) -> aws.ecr.Repository:
        return aws.ecr.Repository(
            name,
            name=physical,
            image_tag_mutability="MUTABLE" if mutable else "IMMUTABLE",
            image_scanning_configuration={"scan_on_push": scan},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": key.arn}],
            # A repository with images is never deleted with them by accident.
            force_delete=False,
            tags=standard_tags(name, physical),
            opts=pulumi.ResourceOptions(parent=parent),
        )

    def _build(
        self, name: str, build: ImageBuildArgs, repository: aws.ecr.Repository, key: aws.kms.Key
    ) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        cache = self._repository(
            f"{name}-cache",
            physical_name(name, CACHE_TAG),
            key,
            mutable=True,
            scan=False,
            parent=self,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-cache-lifecycle",
            repository=cache.name,
            policy=json.dumps(_cache_lifecycle()),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        cache_ref = pulumi.Output.concat(cache.repository_url, ":", CACHE_TAG)
        context = build["context"]
        image = docker_build.Image(
            f"{name}-build",
            push=True,
            context={"location": context},
            dockerfile={"location": build.get("dockerfile", f"{context}/Dockerfile")},
            platforms=[docker_build.Platform(p) for p in build["platforms"]],
            tags=[pulumi.Output.concat(repository.repository_url, ":", build["tag"])],
            registries=[
                {
                    "address": repository.repository_url,
                    "username": token.user_name,
                    "password": pulumi.Output.secret(token.password),
                }
            ],
            cache_from=[{"registry": {"ref": cache_ref}}],
            cache_to=[
                {
                    "registry": {
                        "ref": cache_ref,
                        "mode": docker_build.CacheMode.MAX,
                        # ECR stores a cache only as an image manifest with OCI media types.
                        "image_manifest": True,
                        "oci_media_types": True,
                    }
                }
            ],
            # A preview must not need a Docker daemon; the build runs on `pulumi up`.
            build_on_preview=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cache]),
        )
        return image.ref


def _checked(args: ContainerImageArgs) -> tuple[ImageBuildArgs | None, str | None]:
    build, prebuilt = args.get("build"), args.get("prebuilt_image")
    if (build is None) == (prebuilt is None):
        raise ValueError("give exactly one of build (build it during `up`) and prebuilt_image")
    if prebuilt is not None:
        check_pinned(prebuilt)
    if build is not None:
        unknown = sorted(set(build["platforms"]) - set(_PLATFORMS))
        if not build["platforms"] or unknown:
            raise ValueError(
                f"build.platforms must be a non-empty list of {', '.join(_PLATFORMS)}, "
                f"got {build['platforms']}"
            )
        if _TAG.match(build["tag"]) is None:
            raise ValueError(f"build.tag {build['tag']!r} is not a valid image tag")
    return build, prebuilt


def _release_lifecycle(keep: int) -> dict[str, object]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Keep the newest {keep} releases",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            }
        ]
    }


def _cache_lifecycle() -> dict[str, object]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire build-cache manifests a newer build superseded",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": _CACHE_DAYS,
                },
                "action": {"type": "expire"},
            }
        ]
    }
