"""`eduscale preview --manifests`: every Kubernetes object of the graph, one YAML file each.

The files must be what the API server would get (validated against the upstream schemas),
exactly the graph's objects (nothing dropped, nothing invented), free of secret values,
and safe to write again into the same directory.
"""

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pulumi
import pytest
import yaml
from conftest import PROJECT_DIR
from manifest_kinds import CUSTOM_KINDS
from test_cli import run_cli

from infra.cli import main
from infra.graph import SECRET_MASK, Graph, RecordedResource
from infra.manifests import (
    CLUSTER_SCOPED_KINDS,
    ManifestDirError,
    check_output_dir,
    manifests,
    write_manifests,
)
from infra.mocks import OfflineMocks, kubernetes_auto_name
from infra.stack_files import load_stack
from stacks.config import parse_stack_config


def kubernetes_objects(graph: Graph) -> list[RecordedResource]:
    """The graph's Kubernetes objects, found independently of the module under test."""
    return [
        r
        for r in graph
        if r.custom
        and r.type.startswith("kubernetes:")
        and not r.type.startswith("kubernetes:helm.sh/")
    ]


def read_back(directory: Path) -> dict[PurePosixPath, Any]:
    return {
        PurePosixPath(path.relative_to(directory).as_posix()): yaml.safe_load(path.read_text())
        for path in directory.rglob("*.yaml")
    }


def cluster_version(stack: str) -> str:
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config).cluster.kubernetes_version


# --- the stacks' objects ------------------------------------------------------------


def test_the_files_read_back_as_exactly_the_graphs_objects(stack_graph: Graph, tmp_path: Path):
    written = write_manifests(stack_graph, tmp_path)
    files = read_back(tmp_path)
    assert files == {m.path: m.body for m in manifests(stack_graph)}
    assert written == len(files) == len(kubernetes_objects(stack_graph)) >= 70
    assert all(len(path.parts) == 2 for path in files)


def test_each_object_is_its_resources_inputs_with_name_and_namespace_filled_in(
    stack_graph: Graph,
):
    objects = manifests(stack_graph)
    assert {m.urn for m in objects} == {r.urn for r in kubernetes_objects(stack_graph)}
    for manifest in objects:
        inputs = stack_graph.by_urn(manifest.urn).inputs
        metadata = {"name": kubernetes_auto_name(stack_graph.by_urn(manifest.urn).name)}
        metadata |= inputs["metadata"]
        body = manifest.body
        assert list(body)[:3] == ["apiVersion", "kind", "metadata"]
        assert {k: v for k, v in body.items() if k != "metadata"} == {
            k: v for k, v in inputs.items() if k != "metadata"
        }, manifest.urn
        assert body["metadata"] == metadata, manifest.urn


def test_objects_are_filed_by_namespace_and_cluster_scoped_ones_have_none(stack_graph: Graph):
    objects = manifests(stack_graph)
    identities = {(m.body["kind"], m.body["metadata"].get("namespace"), m.body["metadata"]["name"]) for m in objects}  # fmt: skip
    assert len(identities) == len({m.path for m in objects}) == len(objects)
    for manifest in objects:
        metadata, kind = manifest.body["metadata"], manifest.body["kind"]
        if kind in CLUSTER_SCOPED_KINDS:
            assert "namespace" not in metadata
            assert manifest.path.parent.name == "_cluster"
        else:
            assert manifest.path.parent.name == metadata["namespace"]
        assert manifest.path.name == f"{kind.lower()}-{metadata['name']}.yaml"
    assert {m.body["kind"] for m in objects if "namespace" not in m.body["metadata"]} == {
        "Namespace",
        "StorageClass",
    }


def references(value: Any) -> Iterator[tuple[str, str]]:
    """The (kind, name) of every ConfigMap and Secret a pod spec refers to."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in {"configMapRef", "configMapKeyRef", "configMap"}:
                yield "ConfigMap", item["name"]
            elif key in {"secretRef", "secretKeyRef"}:
                yield "Secret", item["name"]
            elif key == "secret" and "secretName" in item:
                yield "Secret", item["secretName"]
            else:
                yield from references(item)


def test_auto_named_objects_carry_the_names_the_workloads_refer_to(stack_graph: Graph):
    objects = manifests(stack_graph)
    written = {(m.body["kind"], m.body["metadata"]["name"]) for m in objects}
    workloads = [m.body for m in objects if m.body["kind"] in {"Deployment", "StatefulSet"}]
    referenced = {ref for workload in workloads for ref in references(workload["spec"])}
    auto_named = {
        (m.body["kind"], m.body["metadata"]["name"])
        for m in objects
        if "name" not in stack_graph.by_urn(m.urn).inputs["metadata"]
    }
    assert referenced <= written
    assert len(referenced & auto_named) >= 5  # the autonaming is exercised, not bypassed


def test_every_written_builtin_object_validates_against_the_clusters_kubernetes(
    stack_graph: Graph, tmp_path: Path
):
    write_manifests(stack_graph, tmp_path)
    types = {m.path: stack_graph.by_urn(m.urn).type for m in manifests(stack_graph)}
    version = cluster_version(stack_graph.stack)
    failures, checked = [], 0
    for path, obj in read_back(tmp_path).items():
        if types[path] in CUSTOM_KINDS:
            continue
        checked += 1
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{path}: {error.message} at {list(error.path)}")
    assert checked >= 60
    assert not failures, "\n".join(failures)


def generated_secrets(graph: Graph) -> list[str]:
    """The values the offline engine generated for the stack's random passwords."""
    mocks = OfflineMocks("eu-west-1")
    return [
        mocks.new_resource(pulumi.runtime.MockResourceArgs(r.type, r.name, r.inputs))[1]["result"]
        for r in graph.of_type("random:index/randomPassword:RandomPassword")
    ]


def test_no_secret_value_is_written(stack_graph: Graph, tmp_path: Path):
    write_manifests(stack_graph, tmp_path)
    secrets = [obj for obj in read_back(tmp_path).values() if obj["kind"] == "Secret"]
    assert len(secrets) >= 5
    for secret in secrets:
        values = {**secret.get("data", {}), **secret.get("stringData", {})}
        assert values
        assert set(values.values()) == {SECRET_MASK}, secret["metadata"]["name"]
    generated = generated_secrets(stack_graph)
    assert len(generated) >= 3
    text = "\n".join(path.read_text() for path in tmp_path.rglob("*.yaml"))
    assert not [value for value in generated if value in text]


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


def test_the_files_do_not_depend_on_the_order_the_engine_received_the_keys_in(dev_graph: Graph):
    shuffled = Graph(
        dev_graph.stack,
        [
            RecordedResource(**{**vars(r), "inputs": reversed_keys(r.inputs)})
            for r in reversed(dev_graph.resources)
        ],
    )
    assert [m.render() for m in manifests(shuffled)] == [m.render() for m in manifests(dev_graph)]


def test_multi_line_strings_are_written_as_blocks_a_diff_shows_line_by_line(dev_graph: Graph):
    (kong,) = [m for m in manifests(dev_graph) if m.body["metadata"]["name"].startswith("api-gateway-declarative")]  # fmt: skip
    assert "  kong.json: |" in kong.render()


# --- what is an object, and what it is filled in with ---------------------------------

PROVIDER = "urn:pulumi:test::p::pulumi:providers:kubernetes::k8s"


def resource(
    type_: str,
    name: str,
    inputs: dict[str, Any],
    *,
    custom: bool = True,
    provider: str | None = f"{PROVIDER}::id-1",
) -> RecordedResource:
    return RecordedResource(
        urn=f"urn:pulumi:test::p::{type_}::{name}",
        type=type_,
        name=name,
        parent=None,
        inputs=inputs,
        dependencies=[],
        custom=custom,
        provider=provider,
    )


def config_map(name: str, metadata: dict[str, Any], **kwargs: Any) -> RecordedResource:
    inputs = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "1"}}
    return resource("kubernetes:core/v1:ConfigMap", name, inputs, **kwargs)


def small_graph(*resources: RecordedResource, namespace: str | None = None) -> Graph:
    provider_inputs = {"kubeconfig": "[secret]"} | ({"namespace": namespace} if namespace else {})
    provider = resource("pulumi:providers:kubernetes", "k8s", provider_inputs, provider=None)
    return Graph("test", [provider, *resources])


def test_helm_releases_charts_patches_and_the_provider_are_not_objects():
    graph = small_graph(
        resource("kubernetes:helm.sh/v3:Release", "keda", {"chart": "keda"}),
        resource("kubernetes:helm.sh/v4:Chart", "chart", {"chart": "x"}, custom=False),
        resource("kubernetes:apps/v1:DeploymentPatch", "patch", {"metadata": {"name": "a"}}),
        config_map("settings", {"name": "settings", "namespace": "apps"}),
    )
    assert [m.path for m in manifests(graph)] == [PurePosixPath("apps/configmap-settings.yaml")]


def test_an_object_without_a_namespace_is_in_its_providers_default_one():
    unplaced = config_map("settings", {"name": "settings"})
    assert manifests(small_graph(unplaced, namespace="apps"))[0].body["metadata"] == {
        "name": "settings",
        "namespace": "apps",
    }
    assert manifests(small_graph(unplaced))[0].path == PurePosixPath(
        "default/configmap-settings.yaml"
    )


def test_an_unnamed_object_gets_the_offline_engines_name():
    (manifest,) = manifests(small_graph(config_map("settings", {"namespace": "apps"})))
    assert manifest.body["metadata"]["name"] == kubernetes_auto_name("settings")
    assert manifest.body["metadata"]["name"].startswith("settings-")


def test_a_cluster_scoped_object_carries_no_namespace_and_engine_keys_are_left_out():
    namespace = resource(
        "kubernetes:core/v1:Namespace",
        "ns",
        {"kind": "Namespace", "metadata": {"name": "apps", "namespace": "x"}, "__defaults": []},
    )
    (manifest,) = manifests(small_graph(namespace))
    assert manifest.body == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}
    assert manifest.path == PurePosixPath("_cluster/namespace-apps.yaml")


def test_an_object_declared_twice_is_an_error():
    graph = small_graph(
        config_map("one", {"name": "same", "namespace": "apps"}),
        config_map("two", {"name": "same", "namespace": "apps"}),
    )
    with pytest.raises(ValueError, match=r"ConfigMap::one and .*ConfigMap::two are both apps/"):
        manifests(graph)


@pytest.mark.parametrize("metadata", [{"name": "../up"}, {"name": "x", "namespace": ".."}])
def test_a_name_that_would_leave_the_directory_is_refused(metadata: dict[str, str]):
    with pytest.raises(ValueError, match="cannot name a file"):
        manifests(small_graph(config_map("bad", metadata)))


# --- the output directory -------------------------------------------------------------


def test_a_second_run_replaces_the_first_runs_files(dev_graph: Graph, tmp_path: Path):
    out = tmp_path / "manifests"
    write_manifests(dev_graph, out)
    assert write_manifests(small_graph(config_map("one", {"name": "one"})), out) == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "default",
        "default/configmap-one.yaml",
    ]


@pytest.mark.parametrize(
    "foreign",
    ["notes.txt", "apps/kept.yaml", "apps/deeper/x.yaml"],
    ids=["a file at the top", "a yaml file not ours", "a subdirectory"],
)
def test_a_directory_holding_anything_else_is_refused_and_left_alone(
    dev_graph: Graph, tmp_path: Path, foreign: str
):
    write_manifests(dev_graph, tmp_path)
    before = sorted(tmp_path.rglob("*"))
    (tmp_path / foreign).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / foreign).write_text("apiVersion: v1\n")
    with pytest.raises(ManifestDirError, match="was not written by eduscale preview --manifests"):
        write_manifests(small_graph(), tmp_path)
    assert set(before) <= set(tmp_path.rglob("*"))


def test_an_output_path_that_is_a_file_or_has_no_parent_is_refused(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ManifestDirError, match="not a directory"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(ManifestDirError, match=f"{tmp_path / 'missing'} is not a directory"):
        check_output_dir(tmp_path / "missing" / "out")
    check_output_dir(tmp_path / "new")
    assert not (tmp_path / "new").exists()


# --- the command line -----------------------------------------------------------------


@pytest.mark.server  # runs the CLI in a process
def test_preview_writes_the_manifests_of_the_stack(dev_graph: Graph, tmp_path: Path):
    out = tmp_path / "manifests"
    result = run_cli("preview", "--stack", "dev", "--manifests", str(out))
    assert result.returncode == 0, result.stderr
    count = len(kubernetes_objects(dev_graph))
    assert f"Wrote {count} Kubernetes manifests to {out}" in result.stderr
    assert read_back(out) == {m.path: m.body for m in manifests(dev_graph)}


@pytest.mark.parametrize("foreign", [False, True], ids=["missing parent", "foreign directory"])
def test_an_unusable_manifests_directory_exits_2_before_previewing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], foreign: bool
):
    target = tmp_path / "missing" / "out"
    if foreign:
        target = tmp_path
        (tmp_path / "mine.txt").write_text("keep me")
    assert main(["preview", "--stack", "dev", "--manifests", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eduscale: ")
    assert err.count("\n") == 1, err  # one line, and no "Previewing ...": nothing ran
    if foreign:
        assert (tmp_path / "mine.txt").read_text() == "keep me"
