"""The component provider other languages talk to: the SDK's, with its values made right.

`pulumi.provider.experimental.ComponentProvider` infers the package schema from our type
annotations and builds a component when a TypeScript, Go, .NET, Java or YAML program
asks for one (`Construct`). Three of its steps lose information, and each would reach
the cloud as a wrong value:

- Numbers travel as doubles (a protobuf `Struct` has no integers). The SDK converts an
  `integer` input back to `int` and then overwrites the result with the double, and never
  looks inside lists or maps: a component given `lag_threshold: 50` writes KEDA's
  `lagThreshold: "50.0"`, which KEDA cannot parse.
- An enum inside a complex output (`VectorStore.collection.distance`) is mapped as if it
  were an object, and reaches the caller as `{}`.
- The description of an input a `<Name>Args` TypedDict inherits (`WorkloadArgs` in
  `MicroserviceArgs`) is looked up in the subclass's source only, so it is published
  undocumented. A TypedDict forgets its bases at runtime; they are read from the source.

`PublishedComponentProvider` walks every input and output along its schema, at every
depth (nested args, lists, maps, and values that arrive as Outputs), and gives each its
declared type: `int` for integers, the enum member for enum inputs and its value for
enum outputs. The schema it publishes is the SDK analyzer's, with inherited descriptions
filled in. Nothing in the SDK is patched;
`tests/components/test_component_provider_grpc.py` drives it over gRPC as the engine does.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap
from collections.abc import Callable
from enum import Enum
from typing import Any

import pulumi
from pulumi.errors import InputPropertyError
from pulumi.provider.experimental.analyzer import (
    Analyzer,
    ComponentDefinition,
    PropertyDefinition,
    PropertyType,
)
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.schema import generate_schema
from pulumi.provider.provider import Provider
from pulumi.runtime import rpc

__all__ = ["DocumentingAnalyzer", "PublishedComponentProvider"]


class DocumentingAnalyzer(Analyzer):
    """The SDK's analyzer, also finding the docstring of an attribute a base class declares."""

    def get_docstring(self, typ: type, name: str) -> str | None:
        """The docstring of `name` on `typ` or on the first class it inherits it from."""
        for owner in _declaring_classes(typ):
            docstring = super().get_docstring(owner, name)
            if docstring is not None:
                return docstring
        return None


def _declaring_classes(typ: type) -> list[type]:
    """`typ` and every class it derives from, nearest first.

    A TypedDict's `__mro__` is `(itself, dict, object)` whatever it was derived from, so its
    bases are also read from the `class` statement in its source.
    """
    found: list[type] = []
    pending = [typ]
    while pending:
        current = pending.pop(0)
        if current in found or current in (object, dict):
            continue
        found.append(current)
        pending.extend(current.__mro__[1:])
        pending.extend(_source_bases(current))
    return found


def _source_bases(typ: type) -> list[type]:
    """The classes named as bases in `typ`'s `class` statement, resolved in its module."""
    module = sys.modules.get(typ.__module__)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(typ)))
    except (OSError, TypeError, SyntaxError):
        return []
    statement = next(
        (node for node in tree.body if isinstance(node, ast.ClassDef)),
        None,
    )
    if module is None or statement is None:
        return []
    bases = (_resolve(base, vars(module)) for base in statement.bases)
    return [base for base in bases if isinstance(base, type)]


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> object:
    """The object a base-class expression (`Name` or `module.Name`) refers to, if any."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None)
    return None


class PublishedComponentProvider(ComponentProvider):
    """The SDK's component provider, with typed inputs and outputs at every depth."""

    def __init__(
        self, components: list[type[pulumi.ComponentResource]], name: str, version: str
    ) -> None:
        # ComponentProvider.__init__ with `DocumentingAnalyzer` in place of `Analyzer`: the
        # SDK builds its analyzer inside the constructor, with no way to pass another.
        self._name = name
        self.analyzer = DocumentingAnalyzer(name)
        result = self.analyzer.analyze(components)
        self._components = {component.__name__: component for component in components}
        self._component_defs = result["component_definitions"]
        self._type_defs = result["type_definitions"]
        self._external_enum_types = result["external_enum_types"]
        self._dependencies = sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}")
        schema = generate_schema(
            name, version, None, self._component_defs, self._type_defs, self._dependencies
        )
        Provider.__init__(self, version, json.dumps(schema.to_json()))

    # -- inputs: from the wire to the component's args ---------------------------------

    def map_input_properties(
        self,
        inputs: Any,
        properties: dict[str, PropertyDefinition],
        mapping: dict[str, str],
        component_name: str,
        property_path: str,
    ) -> Any:
        """An object's inputs under their Python names, each of its declared type.

        Raises `InputPropertyError` for a missing required input, as the SDK does.
        """
        if isinstance(inputs, pulumi.Output):
            return inputs.apply(
                lambda value: self.map_input_properties(
                    value, properties, mapping, component_name, property_path
                )
            )
        mapped: dict[str, Any] = {}
        for schema_name, prop in properties.items():
            path = f"{property_path}.{schema_name}" if property_path else schema_name
            value = inputs.get(schema_name) if isinstance(inputs, dict) else None
            if value is None:
                if not prop.optional:
                    raise InputPropertyError(
                        path, f"Missing required input '{path}' on '{component_name}'"
                    )
                continue
            mapped[mapping[schema_name]] = self._input(value, prop, component_name, path)
        return mapped

    def _input(self, value: Any, prop: PropertyDefinition, component: str, path: str) -> Any:
        """One input value of the type `prop` declares."""
        if isinstance(value, pulumi.Output):
            return value.apply(lambda inner: self._input(inner, prop, component, path))
        if rpc.is_rpc_secret(value):  # a nested secret, from an engine without output values
            inner = rpc.unwrap_rpc_secret(value)
            return pulumi.Output.secret(self._input(inner, prop, component, path))
        if value is None or _is_unknown(value):
            return value
        if prop.ref:
            return self._input_of_type(value, prop, component, path)
        if prop.type is PropertyType.INTEGER:
            return _integer(value, path)
        return _elements(
            value,
            prop,
            lambda item, item_prop, key: self._input(item, item_prop, component, path + key),
        )

    def _input_of_type(
        self, value: Any, prop: PropertyDefinition, component: str, path: str
    ) -> Any:
        """An input whose type is a named one: an enum member, or a nested object."""
        type_def = self.get_type_definition(prop)
        enum_type: type[Enum] | None = None
        if type_def is not None and type_def.enum:
            enum_type = type_def.python_type
        elif prop.ref is not None:
            enum_type = self._external_enum_types.get(prop.ref)
        if enum_type is not None:
            try:
                return enum_type(value)
            except ValueError as error:
                allowed = ", ".join(repr(member.value) for member in enum_type)
                raise InputPropertyError(
                    path, f"{value!r} is not one of {allowed} ({enum_type.__name__})"
                ) from error
        if type_def is None:  # Any, assets, archives and other packages' resources
            return value
        return self.map_input_properties(
            value, type_def.properties, type_def.properties_mapping, component, path
        )

    # -- outputs: from the component's attributes to the wire --------------------------

    def get_state(
        self, instance: pulumi.ComponentResource, component_def: ComponentDefinition
    ) -> dict[str, Any]:
        """The component's outputs under their schema names, enums as their values."""
        state: dict[str, Any] = {}
        for schema_name, prop in component_def.outputs.items():
            value = getattr(instance, component_def.outputs_mapping[schema_name], None)
            if value is not None:
                state[schema_name] = self._output(value, prop)
        return state

    def _output(self, value: Any, prop: PropertyDefinition) -> Any:
        """One output value as the schema describes it."""
        if isinstance(value, pulumi.Output):
            return value.apply(lambda inner: self._output(inner, prop))
        if isinstance(value, Enum):
            return value.value
        type_def = self.get_type_definition(prop) if prop.ref else None
        if type_def is not None and not type_def.enum and isinstance(value, dict):
            return _mapped(value, type_def.properties, type_def.properties_mapping, self._output)
        return _elements(value, prop, lambda item, item_prop, _: self._output(item, item_prop))


def _elements(
    value: Any, prop: PropertyDefinition, convert: Callable[[Any, PropertyDefinition, str], Any]
) -> Any:
    """A list or map with each element converted; any other value as it is.

    `convert` gets the element, its definition and its path suffix (`[0]`, `.key`).
    """
    items, values = prop.items, prop.additional_properties
    if prop.type is PropertyType.ARRAY and items is not None and isinstance(value, list):
        return [convert(item, items, f"[{index}]") for index, item in enumerate(value)]
    if prop.type is PropertyType.OBJECT and values is not None and isinstance(value, dict):
        return {key: convert(item, values, f".{key}") for key, item in value.items()}
    return value


def _mapped(
    value: dict[str, Any],
    properties: dict[str, PropertyDefinition],
    mapping: dict[str, str],
    convert: Callable[[Any, PropertyDefinition], Any],
) -> dict[str, Any]:
    """A Python-named dict as a schema-named one, each value converted."""
    result: dict[str, Any] = {}
    for schema_name, prop in properties.items():
        item = value.get(mapping[schema_name])
        if item is not None:
            result[schema_name] = convert(item, prop)
    return result


def _is_unknown(value: Any) -> bool:
    """Whether `value` is the engine's placeholder for a value not known during preview."""
    return isinstance(value, str) and value == rpc.UNKNOWN


def _integer(value: Any, path: str) -> int:
    """A number the wire carried as a double, as the integer the schema declares."""
    if isinstance(value, bool):
        raise InputPropertyError(path, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise InputPropertyError(path, f"expected an integer, got {value!r}")
