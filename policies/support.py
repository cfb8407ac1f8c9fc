"""How a rule of the pack is written: one factory per kind, and safe property access.

Every rule is a real `pulumi_policy` policy object, built by `resource_rule` or
`stack_rule`, so the same object runs in `pulumi preview --policy-pack policies` and in the
offline runner (`eduscale policy`). A rule's check is a plain function that yields violation
messages; the factory adds what the engine needs: the type filter, the enforcement level
(mandatory for security and data-loss rules, advisory for hygiene), the severity, the fix
hint, the scanner ids it corresponds to (as tags), and a config schema where a threshold
differs per environment.

Reading properties: `get(props, "a.b.c")` returns `None` when any step is absent, so a rule
that asks "is it on?" treats absent as off (checkov's convention) instead of crashing. A
value unknown during preview raises the SDK's `UnknownValueError`, which the engine turns
into an advisory "cannot check during preview" note; rules must not swallow it. Messages
never include property values that could be secrets: they name the property instead.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

__all__ = [
    "ResourceCheck",
    "StackCheck",
    "config_value",
    "get",
    "is_true",
    "resource_rule",
    "stack_rule",
]

ResourceCheck = Callable[[ResourceValidationArgs], Iterable[str]]
"""Yields one message per violation of one resource."""
StackCheck = Callable[[StackValidationArgs], Iterable[tuple[str, str | None]]]
"""Yields (message, URN or None) per violation across the stack."""


def get(props: Mapping[str, Any], path: str) -> Any:
    """The value at dotted `path` (list indexes as numbers), or `None` if any step is absent."""
    value: Any = props
    for part in path.split("."):
        if isinstance(value, Mapping):
            # Not `part in value` / `.get`: on the SDK's proxy both read the value anyway.
            try:
                value = value[part]
            except KeyError:
                return None
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            index = int(part)
            if index >= len(value):
                return None
            value = value[index]
        else:
            return None
    return value


def is_true(props: Mapping[str, Any], path: str) -> bool:
    """Whether the flag at `path` is set to true (absent counts as false)."""
    return get(props, path) is True


def _level(mandatory: bool) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if mandatory else EnforcementLevel.ADVISORY


def _schema(config: Mapping[str, Mapping[str, Any]] | None) -> PolicyConfigSchema | None:
    if not config:
        return None
    return PolicyConfigSchema(properties={key: dict(value) for key, value in config.items()})


def resource_rule(
    name: str,
    description: str,
    *,
    types: Sequence[str],
    severity: Severity,
    mandatory: bool,
    fix: str,
    check: ResourceCheck,
    scanners: Sequence[str] = (),
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> ResourceValidationPolicy:
    """A rule checked on each resource whose type is one of `types`."""
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in wanted:
            return
        for message in check(args):
            report(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=_level(mandatory),
        severity=severity,
        remediation_steps=fix,
        tags=list(scanners),
        config_schema=_schema(config),
    )


def stack_rule(
    name: str,
    description: str,
    *,
    severity: Severity,
    mandatory: bool,
    fix: str,
    check: StackCheck,
    scanners: Sequence[str] = (),
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> StackValidationPolicy:
    """A rule checked once over all the stack's resources (relations between them)."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for message, urn in check(args):
            report(message, urn)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=_level(mandatory),
        severity=severity,
        remediation_steps=fix,
        tags=list(scanners),
        config_schema=_schema(config),
    )


def config_value(
    args: ResourceValidationArgs | StackValidationArgs, key: str, *, default: Any
) -> Any:
    """A rule's config value (the engine fills in schema defaults; offline we do)."""
    return args.get_config().get(key, default)
