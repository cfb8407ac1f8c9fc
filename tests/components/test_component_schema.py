"""The package schema Pulumi would publish for our components, from the SDK's own analyzer.

`pulumi package add` turns this schema into the SDK a TypeScript, Go, .NET, Java or YAML
team programs against, so what is checked here is what they would see: one resource per
published component, its inputs (and which are required) and its outputs. The schema is
built exactly as the plugin builds it when it starts (no engine, no CLI):
`PublishedComponentProvider` runs the SDK's analyzer over `PUBLISHED_COMPONENTS` and
serialises the result; that string is what the plugin answers to `GetSchema`
(`test_component_provider_grpc.py` asks it over gRPC).

The generic tests derive their expectations from the classes themselves (every
`pulumi.Output` class attribute, every key of the `<Name>Args` TypedDict), so a component
added to `PUBLISHED_COMPONENTS` is covered without a new test.
"""

import inspect
import json
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any, ForwardRef, NotRequired, Required, Union, get_args, get_origin

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from components import Database, Network
from components.type_tokens import TYPE_TOKENS
from infra.component_provider import PACKAGE_NAME, PUBLISHED_COMPONENTS, provider

# One worker infers the package schema (seconds) for every test of these modules.
pytestmark = pytest.mark.xdist_group("component_schema")

Component = type[pulumi.ComponentResource]


class RejectedByAnalyzerError(Exception):
    """The SDK's analyzer refused, or crashed on, the typing of a published component."""


def _name(component: Component) -> str:
    return component.__name__


def _stringified(component: Component) -> bool:
    """Whether the component's annotations are unevaluated strings (PEP 563)."""
    return isinstance(inspect.get_annotations(component.__init__).get("args"), str)


def _rejected(components: Sequence[Component], error: Exception) -> RejectedByAnalyzerError:
    hint = "".join(
        f"\n  {_name(c)}: its annotations are strings; remove `from __future__ import "
        f"annotations` from {c.__module__} and from the modules of its args' nested types"
        for c in components
        if _stringified(c)
    )
    names = ", ".join(_name(c) for c in components)
    return RejectedByAnalyzerError(f"{names}: {type(error).__name__}: {error}{hint}")


@cache
def published_schema() -> dict[str, Any]:
    """The schema the component provider host serves, parsed."""
    try:
        served = provider()
    except Exception as error:  # any failure here is the analyzer's verdict
        raise _rejected(PUBLISHED_COMPONENTS, error) from error
    assert served.schema is not None
    schema: dict[str, Any] = json.loads(served.schema)
    return schema


def resource(component: Component) -> dict[str, Any]:
    """The schema entry of `component`, under the token the analyzer gives it."""
    resources: dict[str, Any] = published_schema()["resources"]
    token = f"{PACKAGE_NAME}:index:{_name(component)}"
    assert token in resources, f"{token} not in the schema; it has {sorted(resources)}"
    entry: dict[str, Any] = resources[token]
    return entry


def camel_case(snake: str) -> str:
    """The schema name of a Python attribute or key (`nat_per_az` -> `natPerAz`)."""
    head, *rest = snake.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def output_attributes(component: Component) -> dict[str, Any]:
    """Class-level annotations of `component` and its own bases, evaluated."""
    found: dict[str, Any] = {}
    for cls in reversed(component.__mro__):
        if cls in (object, pulumi.Resource, pulumi.ComponentResource):
            continue
        found.update(inspect.get_annotations(cls, eval_str=True))
    return {name: hint for name, hint in found.items() if not name.startswith("_")}


def _admits_none(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def evaluated_annotations(obj: Callable[..., object]) -> dict[str, Any]:
    """The annotations of a class or function as objects, also where PEP 563 left them as text.

    A TypedDict in a module with `from __future__ import annotations` holds `ForwardRef`s,
    which `inspect.get_annotations(eval_str=True)` leaves alone; and `get_type_hints`
    cannot be used, as it also evaluates the `"Output[T]"` inside `pulumi.Input`.
    """
    module_globals = vars(sys.modules[obj.__module__])
    found = {}
    for name, hint in inspect.get_annotations(obj).items():
        text = hint.__forward_arg__ if isinstance(hint, ForwardRef) else hint
        # Our own annotation text, evaluated as inspect.get_annotations(eval_str=True) does.
        found[name] = eval(text, module_globals) if isinstance(text, str) else text  # noqa: S307
    return found


def args_keys(component: Component) -> dict[str, bool]:
    """Key of the component's args TypedDict -> whether a caller must pass it."""
    args_type = evaluated_annotations(component.__init__)["args"]
    total = getattr(args_type, "__total__", True)
    keys = {}
    for key, hint in evaluated_annotations(args_type).items():
        origin = get_origin(hint)
        inner = get_args(hint)[0] if origin in (NotRequired, Required) else hint
        required = origin is Required or (total and origin is not NotRequired)
        keys[key] = required and not _admits_none(inner)
    return keys


def refs(value: Any) -> Iterator[str]:
    """Every `$ref` anywhere in a piece of schema."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


@pytest.mark.parametrize("component", PUBLISHED_COMPONENTS, ids=_name)
def test_the_analyzer_accepts_each_published_component(component: Component):
    try:
        result = Analyzer(PACKAGE_NAME).analyze([component])
    except Exception as error:  # any failure here is the analyzer's verdict
        raise _rejected([component], error) from error
    assert set(result["component_definitions"]) == {_name(component)}


def test_each_published_component_is_one_resource_under_the_index_module():
    # The analyzer always uses the module `index`: `eduscale:index:Network`.
    resources = published_schema()["resources"]
    assert set(resources) == {f"{PACKAGE_NAME}:index:{_name(c)}" for c in PUBLISHED_COMPONENTS}
    assert all(entry["isComponent"] for entry in resources.values())
    assert published_schema()["name"] == PACKAGE_NAME


def test_each_component_registers_the_token_the_schema_gives_it():
    # One name for one thing: state, policies and generated SDKs all see the schema's.
    assert {t.name for t in TYPE_TOKENS.values()} == {_name(c) for c in PUBLISHED_COMPONENTS}
    resources = published_schema()["resources"]
    assert {t.token for t in TYPE_TOKENS.values()} == set(resources)
    for component in PUBLISHED_COMPONENTS:
        source = "".join(inspect.getsource(component.__init__).split())
        constant = next(k for k, v in vars(sys.modules[component.__module__]).items()
                        if v is TYPE_TOKENS[_name(component)])  # fmt: skip
        call = f"super().__init__({constant}.token,name,None,{constant}.options(opts))"
        assert call in source, f"{_name(component)} does not register as {constant}.token"


def _undocumented(properties: dict[str, Any]) -> list[str]:
    return sorted(name for name, prop in properties.items() if not prop.get("description"))


@pytest.mark.parametrize("component", PUBLISHED_COMPONENTS, ids=_name)
def test_every_input_and_output_is_documented_in_the_schema(component: Component):
    # Microservice and Worker inherit most of their inputs from WorkloadArgs.
    entry = resource(component)
    assert entry.get("description")
    assert _undocumented(entry["inputProperties"]) == []
    assert _undocumented(entry["properties"]) == []


def test_every_property_of_every_published_type_is_documented():
    undocumented = {
        token: _undocumented(definition.get("properties", {}))
        for token, definition in published_schema()["types"].items()
    }
    assert {token: names for token, names in undocumented.items() if names} == {}
    assert all(definition.get("description") for definition in published_schema()["types"].values())


def test_network_takes_a_cidr_and_an_az_count_and_optionally_nat_and_flow_log_settings():
    network = resource(Network)
    inputs = network["inputProperties"]
    assert set(inputs) == {"cidrBlock", "azCount", "natPerAz", "flowLogRetentionDays"}
    assert network["requiredInputs"] == ["azCount", "cidrBlock"]
    assert inputs["cidrBlock"]["type"] == "string"
    assert inputs["azCount"]["type"] == "integer"
    assert inputs["natPerAz"]["type"] == "boolean"
    assert inputs["flowLogRetentionDays"]["type"] == "integer"
    # Plain values: they shape the graph, so they cannot be another resource's output.
    assert all(prop.get("plain") is True for prop in inputs.values())


def test_network_outputs_the_vpc_its_subnets_and_its_zones():
    outputs = resource(Network)["properties"]
    assert {"vpcId", "publicSubnetIds", "privateSubnetIds", "azs"} <= set(outputs)
    assert outputs["vpcId"]["type"] == "string"
    for name in ("publicSubnetIds", "privateSubnetIds", "azs"):
        assert outputs[name]["type"] == "array"
        assert outputs[name]["items"]["type"] == "string"


def test_database_outputs_its_endpoints_port_secret_and_security_group():
    database = resource(Database)
    outputs = database["properties"]
    assert {
        "writerEndpoint",
        "readerEndpoint",
        "readerEndpoints",
        "port",
        "masterSecretArn",
        "securityGroupId",
    } <= set(outputs)
    assert outputs["port"]["type"] == "integer"
    assert outputs["readerEndpoints"]["items"]["type"] == "string"
    assert "vpcId" in database["requiredInputs"]
    assert "multiAz" not in database["requiredInputs"]


@pytest.mark.parametrize("component", PUBLISHED_COMPONENTS, ids=_name)
def test_every_output_attribute_is_published_as_an_output(component: Component):
    attributes = output_attributes(component)
    not_outputs = [n for n, hint in attributes.items() if get_origin(hint) is not pulumi.Output]
    assert not not_outputs, f"class attributes that are not pulumi.Output: {not_outputs}"
    assert set(resource(component)["properties"]) == {camel_case(n) for n in attributes}


@pytest.mark.parametrize("component", PUBLISHED_COMPONENTS, ids=_name)
def test_every_args_key_is_published_as_an_input_required_only_if_it_must_be_passed(
    component: Component,
):
    keys = args_keys(component)
    entry = resource(component)
    assert set(entry["inputProperties"]) == {camel_case(k) for k in keys}
    assert set(entry["requiredInputs"]) == {
        camel_case(k) for k, required in keys.items() if required
    }


def test_every_type_the_schema_refers_to_is_defined_in_it():
    schema = published_schema()
    local = [r.removeprefix("#/types/") for r in refs(schema) if r.startswith("#/types/")]
    assert set(local) <= set(schema.get("types", {}))
