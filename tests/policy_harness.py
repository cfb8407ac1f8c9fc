"""Drive policy rules exactly as the engine does: through `validate` with the SDK's args."""

import copy
import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from infra.graph import Graph
from policies.catalogue import ALL_POLICIES

URN = "urn:pulumi:test::eduscale::type::name"


def rule(name: str) -> Policy:
    """The rule of the pack named `name`."""
    (found,) = [p for p in ALL_POLICIES if p.name == name]
    return found


def _config(policy: Policy, config: Mapping[str, Any] | None) -> dict[str, Any]:
    schema = policy.config_schema.properties if policy.config_schema else {}
    values = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    values.update(config or {})
    return values


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
    )  # fmt: skip


def resource_violations(
    name: str, resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> list[str]:
    """Messages the resource rule `name` reports for one resource with `props`."""
    policy = rule(name)
    assert isinstance(policy, ResourceValidationPolicy)
    args = ResourceValidationArgs(
        resource_type, unknown_checking_proxy(copy.deepcopy(dict(props))), URN, "name",
        _options(), None, _config(policy, config),
    )  # fmt: skip
    messages: list[str] = []
    policy.validate(args, lambda message, _urn: messages.append(message))
    return messages


def policy_resource(
    resource_type: str,
    props: Mapping[str, Any],
    urn: str,
    dependencies: list[PolicyResource] | None = None,
) -> PolicyResource:
    """A resource as a stack rule sees it."""
    return PolicyResource(
        resource_type, unknown_checking_proxy(copy.deepcopy(dict(props))), urn, urn.rsplit("::", 1)[-1],
        _options(), None, None, dependencies or [], {},
    )  # fmt: skip


def stack_violations(
    name: str, resources: list[PolicyResource], config: Mapping[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    """(message, urn) pairs the stack rule `name` reports over `resources`."""
    policy = rule(name)
    assert isinstance(policy, StackValidationPolicy)
    found: list[tuple[str, str | None]] = []
    policy.validate(
        StackValidationArgs(resources, _config(policy, config)),
        lambda message, urn: found.append((message, urn)),
    )
    return found


def mutated_graph_file(graph: Graph, path: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """Write `graph` as `eduscale preview --json` would, after `mutate` edits its JSON."""
    document = json.loads(json.dumps(graph.to_json()))
    mutate(document)
    path.write_text(json.dumps(document))
    return path


def resources_of(document: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The resources of `resource_type` in a graph document, for mutations."""
    return [r for r in document["resources"] if r["type"] == resource_type]


def policy_cli_on(
    graph: Graph, directory: Path, mutate: Callable[[dict[str, Any]], None]
) -> tuple[int, set[str]]:
    """Run `eduscale policy --graph` on a mutated copy of `graph`.

    Returns the exit status and the mandatory rules the `--json` report names.
    """
    from infra.cli import main  # noqa: PLC0415

    path = mutated_graph_file(graph, directory / "graph.json", mutate)
    report = directory / "violations.json"
    status = main(["policy", "--graph", str(path), "--json", str(report)])
    return status, {v["rule"] for v in json.loads(report.read_text()) if v["mandatory"]}


Mutation = tuple[str, Callable[[dict[str, Any]], None], str]
"""A mutation test case: what it breaks, the edit to the graph document, the rule that must
catch it."""


class MutationCheck(Protocol):
    """`prod_graph_broken_by(case, ...)`: the rule-naming check every policy family runs."""

    def __call__(
        self, case: Mutation, *, within: Collection[str] | None = None, alone: bool = False
    ) -> None: ...


def check_mutation(
    graph: Graph,
    directory: Path,
    capsys: pytest.CaptureFixture[str],
    case: Mutation,
    *,
    within: Collection[str] | None = None,
    alone: bool = False,
) -> None:
    """Fail unless `eduscale policy` refuses the mutated graph naming the case's rule.

    `within`: the rule is the only one of that family (say, the module's rules) that breaks;
    `alone`: it is the only mandatory rule that breaks at all. Otherwise it is among them.
    """
    what, mutate, rule = case
    status, broken = policy_cli_on(graph, directory, mutate)
    assert status == 1, what
    assert f"[mandatory] {rule}" in capsys.readouterr().out
    if alone:
        assert broken == {rule}, what
    elif within is not None:
        assert broken & set(within) == {rule}, what
    else:
        assert rule in broken, what
