"""Read a stack's settings from `Pulumi.yaml` and `Pulumi.<stack>.yaml`, as the CLI would.

The offline engine has no Pulumi CLI to hand it config, so it reads the same files and
turns them into what the language host would receive: every value a string, structured
values as JSON. Encrypted (`secure:`) values cannot be decrypted without the stack's
secrets provider; offline they become a fixed stand-in that is still marked secret, so
the program exercises the same secret paths and the stand-in never appears in output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["OFFLINE_SECRET", "StackFileError", "StackFiles", "find_project_dir", "load_stack"]

OFFLINE_SECRET = "offline-preview-secret"  # noqa: S105 (a stand-in, never a credential)
"""What a `secure:` value becomes offline, where it cannot be decrypted."""


class StackFileError(Exception):
    """The project or stack file is missing or malformed; the message says how."""


@dataclass(frozen=True)
class StackFiles:
    """One stack's identity and config, ready for the engine."""

    project: str
    stack: str
    config: dict[str, str]
    secret_keys: list[str]


def find_project_dir(start: Path) -> Path:
    """The nearest directory at or above `start` that holds a Pulumi.yaml."""
    for directory in (start, *start.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    raise StackFileError(
        f"no Pulumi.yaml in {start} or any parent directory; run from the project "
        "directory or pass --project-dir"
    )


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def load_stack(project_dir: Path, stack: str) -> StackFiles:
    """Read the project name and `stack`'s config from `project_dir`."""
    project = _read_yaml(project_dir / "Pulumi.yaml")
    name = project.get("name")
    if not isinstance(name, str) or not name:
        raise StackFileError(f"{project_dir / 'Pulumi.yaml'}: `name` must be the project name")
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise StackFileError(f"unknown stack {stack!r}: no {stack_file.name} (stacks: {known})")
    settings = _read_yaml(stack_file)
    raw_config = settings.get("config") or {}
    if not isinstance(raw_config, dict):
        raise StackFileError(f"{stack_file}: `config` must be a mapping of key: value")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw_config.items():
        full_key = key if ":" in str(key) else f"{name}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full_key] = OFFLINE_SECRET
            secret_keys.append(full_key)
        else:
            config[full_key] = _as_config_string(value)
    return StackFiles(project=name, stack=stack, config=config, secret_keys=secret_keys)


def _as_config_string(value: Any) -> str:
    """Config as the engine passes it: strings as-is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackFileError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StackFileError(f"{path}: expected a mapping at the top level")
    return data
