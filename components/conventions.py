"""The naming and tagging rules every eduscale component follows.

Physical names and tags are derived from the Pulumi project and stack the component is
deployed in, so the same component can be imported into another team's stack and still
produce names that cannot collide with ours. Keeping both rules here means a change of
policy (a new mandatory tag, a shorter name limit) is one edit, not one per component.
"""

from __future__ import annotations

import hashlib
import re

import pulumi

__all__ = ["MANAGED_BY", "name_prefix", "physical_name", "standard_tags"]

MANAGED_BY = "pulumi"
"""Value of the `managed-by` tag: tells an operator in the console not to edit by hand."""

_MIN_NAME_LENGTH = 16
"""Room for a few characters of the name plus the 9-character hash suffix."""
_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")


def name_prefix() -> str:
    """`<project>-<stack>`, normalised: what every physical name of this stack starts with.

    IAM policies use it to scope permissions to this stack's resources (`<prefix>-*`).
    """
    return _normalise(f"{pulumi.get_project()}-{pulumi.get_stack()}")


def _normalise(raw: str) -> str:
    name = _NOT_ALLOWED.sub("-", raw.lower()).strip("-")
    return re.sub(r"-{2,}", "-", name)


def physical_name(component: str, *parts: str, max_length: int = 63) -> str:
    """Return the cloud-side name for a resource of `component`.

    The name is `<project>-<stack>-<component>-<parts...>`, lower-case, with anything but
    letters, digits and dashes folded into a dash, so it is valid for the strictest AWS
    naming rules we meet (RDS identifiers, ElastiCache ids, IAM role names). When it is
    longer than `max_length` it is shortened and given a stable hash suffix, so two long
    names never collide after truncation.
    """
    if max_length < _MIN_NAME_LENGTH:
        raise ValueError(f"max_length must be at least {_MIN_NAME_LENGTH}, got {max_length}")
    name = _normalise("-".join([name_prefix(), component, *parts]))
    if not name[:1].isalpha():
        # RDS and ElastiCache identifiers must start with a letter.
        name = f"x-{name}"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


def standard_tags(component: str, name: str | None = None) -> dict[str, str]:
    """Return the tags every taggable AWS resource of `component` carries.

    `project`, `stack`, `component` and `managed-by` let cost reports and incident
    responders find who owns a resource; `Name` (when given) is what the AWS console shows.
    """
    tags = {
        "project": pulumi.get_project(),
        "stack": pulumi.get_stack(),
        "component": component,
        "managed-by": MANAGED_BY,
    }
    if name is not None:
        tags["Name"] = name
    return tags
