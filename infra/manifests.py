"""The Kubernetes objects of a recorded graph as YAML manifests: `preview --manifests`.

A reviewer diffs plain manifests, and every Kubernetes scanner (kubeconform,
kube-linter, Trivy, Checkov, `kubectl diff`) reads them; none of them reads a Pulumi
program or the graph's JSON. So each Kubernetes object the program declares becomes one
YAML file holding what the provider sends the API server: `apiVersion`, `kind`,
`metadata` and the rest of its inputs (`spec`, `data`, `stringData`, `rules`, ...),
exactly as the engine received them. Helm releases are not objects (the provider renders
their charts), nor are `*Patch` resources (partial objects applied over others).

What the API server would see and the inputs leave implicit is filled in: an unnamed
object gets the name the offline engine gives it (`infra.mocks.kubernetes_auto_name`,
which every other object in the graph references), and a namespaced object without a
namespace gets its provider's default namespace. A cluster-scoped object carries no
namespace.

No secret value is ever written: every value the program marked secret is `"[secret]"`
here, as in the graph (a Secret keeps its keys). Mapping keys are sorted (the engine
receives them in an order that changes from one process to the next) and lists keep
their order, so two previews of one program write identical files.

Files are `<namespace or _cluster>/<kind>-<name>.yaml` (kind in lower case; `_` is not
allowed in a namespace's name, so `_cluster` cannot clash with one). Each starts with a
comment naming the resource's URN, which also marks it as ours: the output directory
must be new, empty, or hold only an earlier output, which is then replaced, so no stale
manifest lingers. Any other file in it is refused and nothing is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from infra.graph import Graph, RecordedResource
from infra.mocks import kubernetes_auto_name

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "HEADER",
    "Manifest",
    "ManifestDirError",
    "check_output_dir",
    "is_kubernetes_object",
    "manifests",
    "write_manifests",
]

HEADER = "# eduscale preview --manifests: "
"""The first line of every file written, followed by the resource's URN."""

CLUSTER_SCOPED_KINDS = frozenset(
    {
        # Built-in (`kubectl api-resources --namespaced=false`, reviews left out: they are
        # requests, never applied).
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterTrustBundle",
        "ComponentStatus",
        "CustomResourceDefinition",
        "DeviceClass",
        "FlowSchema",
        "IPAddress",
        "IngressClass",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "ResourceSlice",
        "RuntimeClass",
        "ServiceCIDR",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        "VolumeAttributesClass",
        # The custom kinds of the controllers the cluster installs.
        "ClusterTriggerAuthentication",  # KEDA
    }
)
"""Kinds that live outside any namespace; every other kind is namespaced."""

_CLUSTER_DIR = "_cluster"
_DEFAULT_NAMESPACE = "default"
"""Where the Kubernetes provider puts namespaced objects when neither says otherwise."""


class ManifestDirError(Exception):
    """The output directory cannot take the manifests (missing parent, foreign files)."""


@dataclass(frozen=True)
class Manifest:
    """One object: the resource it comes from, its file (relative) and its content."""

    urn: str
    path: PurePosixPath
    body: dict[str, Any]

    def render(self) -> str:
        """The file's text: the header naming the URN, then the object as YAML."""
        # Never folded: a long value (a URL, a JSON document) stays on one diffable line.
        return f"{HEADER}{self.urn}\n" + yaml.dump(
            self.body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=float("inf")
        )


class _Dumper(yaml.SafeDumper):
    """`yaml.safe_dump`, with multi-line strings as `|` blocks so a diff shows lines."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def is_kubernetes_object(resource: RecordedResource) -> bool:
    """Whether `resource` is a whole Kubernetes object (not a Helm release or a patch)."""
    if not resource.custom or not resource.type.startswith("kubernetes:"):
        return False
    module, _, kind = resource.type.removeprefix("kubernetes:").partition(":")
    return not module.startswith("helm.sh/") and not kind.endswith("Patch")


def _api_version(type_token: str) -> str:
    # kubernetes:apps/v1:Deployment -> apps/v1; kubernetes:core/v1:Namespace -> v1
    group_version = type_token.split(":")[1]
    return group_version.removeprefix("core/")


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _provider_namespace(graph: Graph, resource: RecordedResource) -> str:
    """The default namespace of the provider that manages `resource`."""
    if resource.provider is not None:
        provider_urn = resource.provider.rsplit("::", 1)[0]  # "<urn>::<id>"
        try:
            namespace = graph.by_urn(provider_urn).inputs.get("namespace")
        except LookupError:
            namespace = None
        if isinstance(namespace, str) and namespace:
            return namespace
    return _DEFAULT_NAMESPACE


def _file_part(value: Any, what: str, urn: str) -> str:
    text = str(value)
    if not text or "/" in text or text in {".", ".."}:
        raise ValueError(f"{urn}: {what} {text!r} cannot name a file")
    return text


def _manifest(graph: Graph, resource: RecordedResource) -> Manifest:
    kind = resource.type.rsplit(":", 1)[1]
    metadata = dict(resource.inputs.get("metadata") or {})
    name = metadata.pop("name") if "name" in metadata else kubernetes_auto_name(resource.name)
    namespace = metadata.pop("namespace", None)
    head: dict[str, Any] = {"name": name}
    if kind not in CLUSTER_SCOPED_KINDS:
        head["namespace"] = namespace or _provider_namespace(graph, resource)
    body: dict[str, Any] = {
        "apiVersion": _api_version(resource.type),
        "kind": kind,
        "metadata": head | _sorted(metadata),
    }
    for key in sorted(resource.inputs):
        # `__`-prefixed properties are the engine's own (none is a Kubernetes field).
        if key not in {"apiVersion", "kind", "metadata"} and not key.startswith("__"):
            body[key] = _sorted(resource.inputs[key])
    directory = _file_part(head.get("namespace", _CLUSTER_DIR), "namespace", resource.urn)
    file_name = f"{kind.lower()}-{_file_part(name, 'name', resource.urn)}.yaml"
    return Manifest(resource.urn, PurePosixPath(directory, file_name), body)


def manifests(graph: Graph) -> list[Manifest]:
    """Every Kubernetes object of `graph`, ordered by file path.

    Raises `ValueError` when two objects would share a file, i.e. the program declares
    one object twice (the same kind, namespace and name).
    """
    found: dict[PurePosixPath, Manifest] = {}
    for resource in graph:
        if not is_kubernetes_object(resource):
            continue
        manifest = _manifest(graph, resource)
        other = found.setdefault(manifest.path, manifest)
        if other is not manifest:
            raise ValueError(f"{other.urn} and {manifest.urn} are both {manifest.path}")
    return [found[path] for path in sorted(found)]


def _is_ours(path: Path) -> bool:
    if path.is_symlink() or not path.is_file() or path.suffix != ".yaml":
        return False
    with path.open("rb") as file:
        return file.read(len(HEADER)) == HEADER.encode()


def _foreign_entry(directory: Path) -> Path | None:
    """The first entry of `directory` an earlier run did not write, if any."""
    for sub in directory.iterdir():
        if sub.is_symlink() or not sub.is_dir():
            return sub
        for path in sub.iterdir():
            if not _is_ours(path):
                return path
    return None


def check_output_dir(directory: Path) -> None:
    """Raise `ManifestDirError` unless the manifests can be written to `directory`.

    It must be missing (in an existing directory), empty, or hold only an earlier
    output. Cheap: the CLI calls it before the minute-long preview.
    """
    if not directory.parent.is_dir():
        raise ManifestDirError(f"cannot write {directory}: {directory.parent} is not a directory")
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ManifestDirError(f"cannot write manifests to {directory}: not a directory")
    foreign = _foreign_entry(directory)
    if foreign is not None:
        raise ManifestDirError(
            f"will not write manifests to {directory}: {foreign} was not written by "
            "eduscale preview --manifests (use a new or empty directory)"
        )


def write_manifests(graph: Graph, directory: Path) -> int:
    """Replace the manifests in `directory` with those of `graph`; return how many.

    Raises `ManifestDirError` (before deleting anything) if `check_output_dir` does.
    """
    objects = manifests(graph)  # first: if the graph cannot be written, keep the old files
    check_output_dir(directory)
    if directory.exists():
        for sub in list(directory.iterdir()):  # every entry is ours: checked above
            for path in list(sub.iterdir()):
                path.unlink()
            sub.rmdir()
    directory.mkdir(exist_ok=True)
    for manifest in objects:
        target = directory / manifest.path
        target.parent.mkdir(exist_ok=True)
        target.write_text(manifest.render(), encoding="utf-8")
    return len(objects)
