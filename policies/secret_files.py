"""Secrets reach a workload's process as files, not environment variables.

A value in the environment shows in `/proc/<pid>/environ`, in crash dumps, in child
processes and in `kubectl describe pod`; a file of a read-only Secret volume does not.
Our services read `<NAME>_FILE` for every secret (contracts/secret_files.py), so a
container of ours that takes a Secret by `env.valueFrom.secretKeyRef` or
`envFrom.secretRef` is a regression. Third-party images that can only read environment
variables are listed, with the reason, in `policies.waivers.ENV_SECRET_IMAGES`.
"""

from collections.abc import Iterable

from pulumi_policy import ResourceValidationArgs, Severity

from policies.kubernetes_pods import POD_KINDS, containers
from policies.support import get, resource_rule
from policies.waivers import ENV_SECRET_IMAGES

__all__ = ["POLICIES", "image_repository"]


def image_repository(image: str) -> str:
    """`repo/name` of an image reference, without registry-hub prefix, tag or digest."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name


def _secrets_as_files(args: ResourceValidationArgs) -> Iterable[str]:
    for label, container in containers(
        args.props, resource_type=args.resource_type, ephemeral=True
    ):
        if image_repository(str(get(container, "image") or "")) in ENV_SECRET_IMAGES:
            continue
        for variable in get(container, "env") or []:
            if get(variable, "valueFrom.secretKeyRef") is not None:
                name = get(variable, "name")
                yield (
                    f"{label} takes a Secret through its environment ({name} by secretKeyRef); "
                    f"mount it as a read-only file and set {name}_FILE"
                )
        for source in get(container, "envFrom") or []:
            if get(source, "secretRef") is not None:
                yield (
                    f"{label} takes a Secret through its environment "
                    f"(envFrom secretRef {get(source, 'secretRef.name')}); mount it as "
                    "read-only files and set <NAME>_FILE"
                )


POLICIES = [
    resource_rule(
        "k8s-secrets-as-files",
        "A Secret in a container's environment shows in /proc/<pid>/environ, crash dumps and "
        "child processes; our services read every secret from a file (<NAME>_FILE).",
        types=POD_KINDS, severity=Severity.HIGH, mandatory=True, check=_secrets_as_files,
        fix="Mount the Secret as a read-only volume (components/workload.py does for "
        "secret_env and secret_refs) and point <NAME>_FILE at the file; a third-party image "
        "that reads env only goes in policies/waivers.py ENV_SECRET_IMAGES with the reason.",
        scanners=["CKV_K8S_35"],
    ),
]  # fmt: skip
