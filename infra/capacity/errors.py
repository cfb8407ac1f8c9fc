"""The one error of the capacity plan's inputs: which file, which key, what was wrong."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["CapacityInputError", "from_validation_error", "load_yaml_input"]

_Model = TypeVar("_Model", bound=BaseModel)


class CapacityInputError(Exception):
    """A workload model, benchmark file or price table cannot be used; the message says why."""


def from_validation_error(
    path: Path, what: str, error: ValidationError, renamed: Mapping[str, str] | None = None
) -> CapacityInputError:
    """Word pydantic's errors for a person: one line per key, with its value and the rule.

    `what` names the kind of file ("workload model", "price table") so the first line
    says what was being read, not only where. `renamed` maps a key a file may still
    carry from an older version to what replaced it (the new key and why), so an old
    file is told what to write instead of "unknown key".
    """
    renamed = renamed or {}
    lines = []
    for issue in error.errors():
        key = ".".join(str(part) for part in issue["loc"]) or "(top level)"
        message = str(issue["msg"]).removeprefix("Value error, ")
        last = str(issue["loc"][-1]) if issue["loc"] else ""
        if issue["type"] == "missing":
            lines.append(f"  {key}: required; not set")
        elif issue["type"] == "extra_forbidden" and last in renamed:
            lines.append(f"  {key} = {_show(issue['input'])}: renamed {renamed[last]}")
        elif issue["type"] == "extra_forbidden":
            lines.append(f"  {key} = {_show(issue['input'])}: unknown key (a typo?)")
        else:
            lines.append(f"  {key} = {_show(issue['input'])}: {message}")
    return CapacityInputError(
        f"invalid {what} {path} ({len(lines)} problem(s)):\n" + "\n".join(lines)
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."  # noqa: PLR2004


def load_yaml_input(
    path: Path, what: str, model: type[_Model], renamed: Mapping[str, str] | None = None
) -> _Model:
    """Read the YAML file `path` into `model`; any problem is a `CapacityInputError`.

    `renamed`: keys of older versions of the file and what replaced them (see
    `from_validation_error`).
    """
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CapacityInputError(f"no {what} at {path}") from None
    except yaml.YAMLError as exc:
        raise CapacityInputError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CapacityInputError(f"{what} {path}: expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(path, what, exc, renamed) from None
