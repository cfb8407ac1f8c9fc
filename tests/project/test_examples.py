"""The programs in `examples/` work as written, checked offline.

The Python stack runs on the mock engine (`preview=False`, so every `apply` runs) exactly
as `pulumi up` would run its `__main__.py`. The YAML program cannot run without the
Pulumi CLI, so it is checked the way the CLI would check it before creating anything:
every `eduscale:*` resource's type exists in the schema the plugin publishes, every
property it sets is an input of that type with a value of the declared type (enums
among their values, integers as integers, nested args complete), every required input
is set, and every `${resource.output}` names an output the schema declares.
"""

import copy
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_program

from infra.component_provider import PACKAGE_NAME, published_schema
from infra.graph import Graph

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT_DIR / "examples"
PYTHON_STACK = EXAMPLES / "python-stack"
YAML_PROGRAM = EXAMPLES / "yaml-program"


# -- the Python stack ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def python_stack() -> Graph:
    project = yaml.safe_load((PYTHON_STACK / "Pulumi.yaml").read_text())["name"]
    main = str(PYTHON_STACK / "__main__.py")
    return run_program(
        lambda: runpy.run_path(main, run_name="__main__"), project=project, stack="dev"
    )


def test_the_python_stack_composes_our_components_under_their_published_tokens(
    python_stack: Graph,
):
    components = {r.type for r in python_stack if r.is_component}
    assert components == {
        f"{PACKAGE_NAME}:index:{name}" for name in ("Network", "Database", "Cache", "DocumentStore")
    }


def test_the_python_stack_names_and_tags_everything_after_its_own_project(python_stack: Graph):
    for instance in python_stack.of_type("aws:rds/instance:Instance"):
        assert instance.inputs["identifier"].startswith("lms-data-tier-dev-db-")
        assert instance.inputs["tags"]["project"] == "lms-data-tier"
    group = python_stack.one("aws:rds/parameterGroup:ParameterGroup")
    values = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert values["log_min_duration_statement"] == "250"


def test_the_python_stack_exports_its_endpoints(python_stack: Graph):
    outputs = python_stack.outputs
    assert set(outputs) == {
        "vpcId", "databaseWriter", "databaseReader", "cacheEndpoint", "documentBucket",
    }  # fmt: skip
    assert all(isinstance(value, str) and value for value in outputs.values())


# -- the YAML program ---------------------------------------------------------------------

_REFERENCE = re.compile(r"^\$\{([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?(?:\[\d+\])?\}$")


class ProgramChecker:
    """Checks a Pulumi YAML program's use of our package against the published schema."""

    def __init__(self, program: dict[str, Any], schema: dict[str, Any]) -> None:
        self.program, self.schema = program, schema
        self.resources: dict[str, Any] = program.get("resources", {})
        self.config: dict[str, Any] = program.get("config", {})
        self.errors: list[str] = []

    def check(self) -> list[str]:
        for name, resource in self.resources.items():
            if resource["type"].startswith(f"{PACKAGE_NAME}:"):
                self._resource(name, resource)
        for name, value in (self.program.get("outputs") or {}).items():
            self._value(value, {}, f"outputs.{name}")
        return self.errors

    def _resource(self, name: str, resource: dict[str, Any]) -> None:
        spec = self.schema["resources"].get(resource["type"])
        if spec is None:
            self.errors.append(f"{name}: the package has no {resource['type']}")
            return
        self._object(resource.get("properties") or {}, spec["inputProperties"],
                     spec.get("requiredInputs", []), name)  # fmt: skip

    def _object(
        self, value: Any, properties: dict[str, Any], required: list[str], path: str
    ) -> None:
        if not isinstance(value, dict):
            self.errors.append(f"{path}: expected an object, got {value!r}")
            return
        for key in sorted(set(required) - set(value)):
            self.errors.append(f"{path}: missing required input {key}")
        for key, item in value.items():
            if key not in properties:
                self.errors.append(f"{path}: {key} is not an input")
            else:
                self._value(item, properties[key], f"{path}.{key}")

    def _value(self, value: Any, spec: dict[str, Any], path: str) -> None:  # noqa: C901, PLR0912
        if isinstance(value, str) and value.startswith("${"):
            self._reference(value, spec, path)
            return
        if "$ref" in spec:
            definition = self.schema["types"][spec["$ref"].removeprefix("#/types/")]
            if "enum" in definition:
                allowed = [member["value"] for member in definition["enum"]]
                if value not in allowed:
                    self.errors.append(f"{path}: {value!r} is not one of {allowed}")
            else:
                self._object(value, definition["properties"], definition.get("required", []), path)
            return
        kind = spec.get("type")
        if kind == "string" and not isinstance(value, str):
            self.errors.append(f"{path}: expected a string, got {value!r}")
        elif kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            self.errors.append(f"{path}: expected an integer, got {value!r}")
        elif kind == "boolean" and not isinstance(value, bool):
            self.errors.append(f"{path}: expected a boolean, got {value!r}")
        elif kind == "array":
            if not isinstance(value, list):
                self.errors.append(f"{path}: expected a list, got {value!r}")
                return
            for index, item in enumerate(value):
                self._value(item, spec["items"], f"{path}[{index}]")
        elif kind == "object" and "additionalProperties" in spec:
            if not isinstance(value, dict):
                self.errors.append(f"{path}: expected a map, got {value!r}")
                return
            for key, item in value.items():
                self._value(item, spec["additionalProperties"], f"{path}.{key}")

    def _reference(self, value: str, spec: dict[str, Any], path: str) -> None:
        match = _REFERENCE.match(value)
        if match is None:
            self.errors.append(f"{path}: cannot read the reference {value!r}")
            return
        name, output = match.groups()
        if name in self.config and output is None:
            return  # a config value is known before anything is created
        if spec.get("plain"):
            self.errors.append(f"{path}: takes a plain value, not another resource's output")
        resource = self.resources.get(name)
        if resource is None:
            self.errors.append(f"{path}: {name} is neither a resource nor a config key")
            return
        ours = self.schema["resources"].get(resource["type"])
        if ours is not None and output not in ours["properties"]:
            self.errors.append(f"{path}: {resource['type']} has no output {output}")


@pytest.fixture(scope="module")
def yaml_program() -> dict[str, Any]:
    program: dict[str, Any] = yaml.safe_load((YAML_PROGRAM / "Pulumi.yaml").read_text())
    return program


def test_the_yaml_program_uses_this_repository_as_its_package(yaml_program: dict[str, Any]):
    assert yaml_program["runtime"] == "yaml"
    plugin = (YAML_PROGRAM / yaml_program["packages"][PACKAGE_NAME]).resolve()
    assert plugin == PROJECT_DIR
    assert (plugin / "PulumiPlugin.yaml").is_file()
    assert (plugin / "__main__.py").is_file()


def test_the_yaml_program_sets_only_published_inputs_with_values_of_their_types(
    yaml_program: dict[str, Any],
):
    ours = [
        r["type"] for r in yaml_program["resources"].values() if r["type"].startswith("eduscale:")
    ]
    assert len(ours) == 4
    assert ProgramChecker(yaml_program, published_schema()).check() == []


@pytest.mark.parametrize(
    ("resource", "change", "error"),
    [
        ("grader", {"lagThreshold": "50"}, "grader.lagThreshold: expected an integer, got '50'"),
        ("grader", {"lagTreshold": 50}, "grader: lagTreshold is not an input"),
        ("grader", {"egressTo": [{"cidr": "10.0.0.0/8", "ports": [5432.5]}]}, "grader.egressTo[0].ports[0]: expected an integer, got 5432.5"),
        ("vectors", {"collection": {"distance": "Manhattan"}}, "vectors.collection: missing required input hnswM"),
        ("vectors", {"replicas": "${db.port}"}, "vectors.replicas: takes a plain value, not another resource's output"),
        ("db", {"vpcId": "${net.vpc}"}, "db.vpcId: eduscale:index:Network has no output vpc"),
        ("db", {"allowedSecurityGroupIds": ["${net.vpcId}"]}, "db.allowedSecurityGroupIds[0]: takes a plain value, not another resource's output"),
        ("net", {"type": "eduscale:index:Netwerk"}, "net: the package has no eduscale:index:Netwerk"),
    ],
)  # fmt: skip
def test_the_checker_catches_what_the_cli_would_refuse(
    yaml_program: dict[str, Any], resource: str, change: dict[str, Any], error: str
):
    program = copy.deepcopy(yaml_program)
    if "type" in change:
        program["resources"][resource].update(change)
    else:
        program["resources"][resource]["properties"].update(change)
    assert error in ProgramChecker(program, published_schema()).check()


def test_each_example_has_a_readme():
    for example in (PYTHON_STACK, YAML_PROGRAM):
        assert (example / "README.md").read_text().startswith("# ")
