"""Run the policy pack in-process against a recorded resource graph.

The same rule objects the CrossGuard pack serves are called through the SDK's own
argument types (`ResourceValidationArgs`, `StackValidationArgs`, `PolicyResource`), with
the resource inputs wrapped in the SDK's unknown-value proxy, as the engine would call
them during `pulumi preview --policy-pack policies`. The config follows the engine's
`--policy-pack-config` format: `{rule: {property: value, "enforcementLevel": ...}}`, over
the defaults each rule's schema declares.
"""

import asyncio
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
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

from infra.graph import STACK_TYPE, Graph, RecordedResource

__all__ = ["PolicyConfigError", "Violation", "check_graph", "load_policy_config"]


class PolicyConfigError(Exception):
    """A policy config file is unreadable or names rules or levels that do not exist."""


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource (or by the stack as a whole)."""

    rule: str
    severity: str
    mandatory: bool
    urn: str | None
    message: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        """The violation as written by `eduscale policy --json`."""
        return asdict(self)


def load_policy_config(path: Path | None, policies: Sequence[Policy]) -> dict[str, dict[str, Any]]:
    """Read a `--policy-pack-config` file; missing file means no overrides."""
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(f"{path} is not valid JSON: {exc}") from None
    known = {p.name for p in policies}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PolicyConfigError(f"{path} configures unknown rules: {', '.join(unknown)}")
    return {name: dict(values) for name, values in data.items()}


def _level(policy: Policy, overrides: Mapping[str, Any]) -> EnforcementLevel:
    value = overrides.get("enforcementLevel")
    if value is None:
        return policy.enforcement_level or EnforcementLevel.ADVISORY
    try:
        return EnforcementLevel(value)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise PolicyConfigError(
            f"{policy.name}: enforcementLevel {value!r} is not one of {allowed}"
        ) from None


def _config(policy: Policy, overrides: Mapping[str, Any]) -> dict[str, Any]:
    schema = policy.config_schema.properties if policy.config_schema else {}
    values = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    values.update({k: v for k, v in overrides.items() if k != "enforcementLevel"})
    return values


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent,
    )


def _policy_resources(resources: list[RecordedResource]) -> dict[str, PolicyResource]:
    built: dict[str, PolicyResource] = {}
    for resource in resources:
        built[resource.urn] = PolicyResource(
            resource_type=resource.type,
            props=unknown_checking_proxy(dict(resource.inputs)),
            urn=resource.urn,
            name=resource.name,
            opts=_options(resource),
            provider=None,
            parent=None,
            dependencies=[],
            property_dependencies={},
        )
    for resource in resources:
        target = built[resource.urn]
        target.parent = built.get(resource.parent or "")
        target.dependencies = [built[u] for u in resource.dependencies if u in built]
        target.property_dependencies = {
            key: [built[u] for u in urns if u in built]
            for key, urns in resource.property_dependencies.items()
        }
    return built


def _call(validate: Any, args: Any, report: Any) -> None:
    result = validate(args, report)
    if inspect.isawaitable(result):
        asyncio.run(_wait(result))


async def _wait(result: Any) -> None:
    await result


def check_graph(
    graph: Graph,
    policies: Sequence[Policy],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    waivers: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Every violation of `policies` in `graph`; waived (advisory) rules are skipped."""
    config = config or {}
    waivers = waivers or {}
    resources = [r for r in graph if r.type != STACK_TYPE]
    built = _policy_resources(resources)
    violations: list[Violation] = []
    for policy in policies:
        overrides = config.get(policy.name, {})
        level = _level(policy, overrides)
        if level == EnforcementLevel.DISABLED or policy.name in waivers:
            continue
        values = _config(policy, overrides)
        mandatory = level in {EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE}
        severity = policy.severity.value if policy.severity else "medium"

        def report(
            message: str,
            urn: str | None,
            *,
            _policy: Policy = policy,
            _mandatory: bool = mandatory,
            _severity: str = severity,
            _default_urn: str | None = None,
        ) -> None:
            violations.append(
                Violation(
                    rule=_policy.name,
                    severity=_severity,
                    mandatory=_mandatory,
                    urn=urn or _default_urn,
                    message=message,
                    fix=_policy.remediation_steps or "",
                )
            )

        if isinstance(policy, StackValidationPolicy):
            stack_args = StackValidationArgs(resources=list(built.values()), config=values)
            _call(policy.validate, stack_args, report)
            continue
        if not isinstance(policy, ResourceValidationPolicy):
            raise TypeError(f"{policy.name}: not a resource or stack validation policy")
        for resource in resources:
            if not resource.custom:
                continue
            resource_args = ResourceValidationArgs(
                resource_type=resource.type,
                props=built[resource.urn].props,
                urn=resource.urn,
                name=resource.name,
                opts=built[resource.urn].opts,
                provider=None,
                config=values,
            )
            _call(
                policy.validate,
                resource_args,
                lambda message, urn, _urn=resource.urn, _report=report: _report(
                    message, urn or _urn
                ),
            )
    return violations
