"""Pod environments rendered from the services' settings classes, never hand-written names.

A stack states a value per settings *field* (`section_env(ServiceSettings,
database_iam_auth=True)`); the class names the variable, renders the value as the
process parses it and says whether it is a secret. `workload_env` then refuses any
variable the deployable's settings class does not declare, so the stacks cannot give a
pod a variable its process does not read, and a test validates every rendered env
against its class (tests/stacks/test_workload_env.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.workload import SecretKeyArgs
from services.runtime.environment import EnvironmentSettings, WorkloadSettings, render_value

__all__ = ["PodEnvironment", "SecretRef", "SettingValue", "section_env", "workload_env"]


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret another component owns (mounted as a file, never copied)."""

    name: pulumi.Input[str]
    key: str


SettingValue = pulumi.Input[str] | int | float | bool | tuple[str, ...] | SecretRef | None
"""What a stack may give a field: a literal, an output, or another component's Secret key
(None leaves the variable unset, so the process uses its default)."""


@dataclass(frozen=True)
class PodEnvironment:
    """Variables for a ConfigMap (`plain`), a Secret (`secret`) and others' Secrets (`refs`)."""

    plain: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    secret: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    refs: dict[str, SecretKeyArgs] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Every variable set."""
        return {*self.plain, *self.secret, *self.refs}

    def __or__(self, other: PodEnvironment) -> PodEnvironment:
        """Both environments (`other` wins a variable set by both)."""
        return PodEnvironment(
            {**self.plain, **other.plain},
            {**self.secret, **other.secret},
            {**self.refs, **other.refs},
        )


def _rendered(value: pulumi.Input[str] | float | bool | tuple[str, ...]) -> pulumi.Input[str]:
    if isinstance(value, pulumi.Output):
        return value.apply(render_value)
    return render_value(value)


def section_env(section: type[EnvironmentSettings], **values: SettingValue) -> PodEnvironment:
    """The variables of `section` for these field values (keyword = field name)."""
    variables = {variable.field: variable for variable in section.variables()}
    unknown = sorted(set(values) - set(variables))
    if unknown:
        message = f"{section.__name__} has no field {', '.join(unknown)}"
        raise TypeError(message)
    environment = PodEnvironment()
    for name, value in values.items():
        if value is None:
            continue
        variable = variables[name]
        if isinstance(value, SecretRef):
            if not variable.secret:
                message = f"{variable.name} is not a secret of {section.__name__}"
                raise TypeError(message)
            environment.refs[variable.name] = {"name": value.name, "key": value.key}
        elif variable.secret:
            environment.secret[variable.name] = pulumi.Output.secret(_rendered(value))
        else:
            environment.plain[variable.name] = _rendered(value)
    return environment


def workload_env(settings: type[WorkloadSettings], *parts: PodEnvironment) -> PodEnvironment:
    """The parts merged, every variable declared by the deployable's `settings`."""
    merged = PodEnvironment()
    for part in parts:
        merged = merged | part
    declared = {variable.name for variable in settings.variables()}
    undeclared = sorted(merged.names() - declared)
    if undeclared:
        message = f"{settings.__name__} reads no {', '.join(undeclared)}"
        raise TypeError(message)
    return merged
