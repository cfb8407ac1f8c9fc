"""How the published provider types what arrives from the wire, at every depth.

A small component with every shape our args use (nested args, lists and maps of numbers
and of args, enums, inherited keys) goes through `PublishedComponentProvider` as the
engine's values would: numbers as floats, nested secrets, values wrapped in Outputs
because they depend on other resources, unknowns during a preview. The gRPC test
(`test_component_provider_grpc.py`) shows the effect on real components; this one pins
down the types the component receives, which the wire cannot show.
"""

import asyncio
import json
from enum import Enum
from types import SimpleNamespace
from typing import Any, NotRequired, TypedDict

import pulumi
import pytest
from pulumi.errors import InputPropertyError
from pulumi.runtime import rpc

from infra.published_provider import PublishedComponentProvider


class Shape(Enum):
    """A shape."""

    ROUND = "round"
    """Round."""
    SQUARE = "square"
    """Square."""


class Part(TypedDict):
    """A part."""

    count: int
    """How many."""
    shape: Shape
    """Its shape."""
    sizes: NotRequired[list[int]]
    """Its sizes."""


class BaseArgs(TypedDict):
    """What every probe takes."""

    replicas: int
    """Inherited: documented on the base only."""


class ProbeArgs(BaseArgs):
    """Inputs of `Probe`."""

    ports: list[int]
    """Ports."""
    limits: dict[str, int]
    """Limits by name."""
    parts: list[Part]
    """Parts."""
    named_parts: NotRequired[dict[str, Part]]
    """Parts by name."""
    weight: NotRequired[float]
    """A real number."""
    wire_count: NotRequired[pulumi.Input[int]]
    """A count that may come from another resource."""


class Probe(pulumi.ComponentResource):
    """A component that only exists for this test."""

    layout: pulumi.Output[Part]
    """A part, with an enum inside."""
    shapes: pulumi.Output[list[Shape]]
    """Enums in a list."""

    def __init__(  # only its annotations matter: it is analysed, never constructed
        self,
        name: str,
        args: ProbeArgs,  # noqa: ARG002
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("probe:index:Probe", name, None, opts)


PROVIDER = PublishedComponentProvider([Probe], "probe", "1.0.0")
DEFINITION = PROVIDER._component_defs["Probe"]


def mapped(inputs: dict[str, Any]) -> dict[str, Any]:
    result = PROVIDER.map_inputs(inputs, DEFINITION)
    assert isinstance(result, dict)
    return result


WIRE = {
    "replicas": 3.0,
    "ports": [80.0, 443.0],
    "limits": {"cpu": 2.0, "pods": 110.0},
    "parts": [{"count": 2.0, "shape": "round", "sizes": [1.0, 2.0]}],
    "namedParts": {"big": {"count": 1.0, "shape": "square"}},
    "weight": 0.5,
}


def test_numbers_the_schema_calls_integers_arrive_as_ints_at_every_depth():
    args = mapped(WIRE)
    assert args["replicas"] == 3
    assert args["ports"] == [80, 443]
    assert args["limits"] == {"cpu": 2, "pods": 110}
    assert args["parts"][0]["count"] == 2
    assert args["parts"][0]["sizes"] == [1, 2]
    assert args["named_parts"]["big"]["count"] == 1
    ints = [args["replicas"], *args["ports"], *args["limits"].values(), args["parts"][0]["count"]]
    assert all(type(value) is int for value in ints)
    assert json.dumps(args["limits"]) == '{"cpu": 2, "pods": 110}'


def test_real_numbers_stay_real():
    assert mapped(WIRE)["weight"] == 0.5


def test_enums_arrive_as_members_in_lists_and_maps_of_args():
    args = mapped(WIRE)
    assert args["parts"][0]["shape"] is Shape.ROUND
    assert args["named_parts"]["big"]["shape"] is Shape.SQUARE


def test_values_that_depend_on_other_resources_are_typed_once_known():
    def outputs() -> dict[str, Any]:
        args = mapped(
            {
                **WIRE,
                "parts": pulumi.Output.from_input(WIRE["parts"]),
                "wireCount": pulumi.Output.from_input(7.0),
            }
        )
        return {"parts": args["parts"], "wire_count": args["wire_count"]}

    async def run() -> dict[str, Any]:
        values = outputs()
        return {key: await value.future() for key, value in values.items()}

    values = asyncio.run(run())
    assert values["wire_count"] == 7
    assert type(values["wire_count"]) is int
    assert values["parts"][0]["shape"] is Shape.ROUND
    assert values["parts"][0]["sizes"] == [1, 2]


def test_a_nested_secret_stays_secret_and_typed():
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": 8.0}

    async def run() -> tuple[Any, bool]:
        value = mapped({**WIRE, "limits": {"pods": secret}})["limits"]["pods"]
        return await value.future(), await value.is_secret()

    assert asyncio.run(run()) == (8, True)


def test_a_value_unknown_during_preview_is_passed_on_unknown():
    assert mapped({**WIRE, "replicas": rpc.UNKNOWN})["replicas"] == rpc.UNKNOWN


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        ({"replicas": 2.5}, "replicas", "expected an integer, got 2.5"),
        ({"ports": [80.0, 80.5]}, "ports[1]", "expected an integer, got 80.5"),
        ({"limits": {"cpu": True}}, "limits.cpu", "expected an integer, got True"),
        ({"parts": [{"count": 1.0, "shape": "oval"}]}, "parts[0].shape", "'oval' is not one of 'round', 'square' (Shape)"),
        ({"parts": [{"shape": "round"}]}, "parts[0].count", "Missing required input 'parts[0].count' on 'Probe'"),
    ],
)  # fmt: skip
def test_a_wrong_value_is_refused_naming_where_it_is(
    change: dict[str, Any], path: str, reason: str
):
    with pytest.raises(InputPropertyError) as error:
        mapped({**WIRE, **change})
    assert (error.value.property_path, error.value.reason) == (path, reason)


def test_enums_in_outputs_go_out_as_their_values_at_every_depth():
    instance = SimpleNamespace(
        layout={"count": 2, "shape": Shape.SQUARE, "sizes": [3]},
        shapes=[Shape.ROUND, Shape.SQUARE],
    )
    state = PROVIDER.get_state(instance, DEFINITION)  # type: ignore[arg-type]
    assert state == {
        "layout": {"count": 2, "shape": "square", "sizes": [3]},
        "shapes": ["round", "square"],
    }


def test_an_output_holding_args_goes_out_with_schema_names_and_enum_values():
    async def run() -> Any:
        instance = SimpleNamespace(
            layout=pulumi.Output.from_input({"count": 1, "shape": Shape.ROUND})
        )
        layout = PROVIDER.get_state(instance, DEFINITION)["layout"]  # type: ignore[arg-type]
        return await layout.future()

    assert asyncio.run(run()) == {"count": 1, "shape": "round"}


def test_inherited_inputs_are_documented_from_their_base():
    schema = json.loads(PROVIDER.schema or "{}")
    inputs = schema["resources"]["probe:index:Probe"]["inputProperties"]
    assert inputs["replicas"]["description"] == "Inherited: documented on the base only."
    assert inputs["ports"]["description"] == "Ports."
