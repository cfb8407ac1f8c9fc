"""The resource graph an offline preview records: what the engine would receive.

Tests, the policy pack and the diagram all read this one structure, so they agree on
what the program declared. Its JSON form is the `--json` file of `eduscale preview`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SECRET_MASK", "STACK_TYPE", "Graph", "RecordedResource"]

SECRET_MASK = "[secret]"  # noqa: S105 (the mask, not a password)
"""What a secret input value is replaced by: the graph is written to disk and CI logs."""

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration, as the engine received it."""

    urn: str
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    dependencies: list[str]
    custom: bool
    provider: str | None = None
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Which input properties depend on which resources (e.g. a rule's security group)."""

    @property
    def is_component(self) -> bool:
        """A ComponentResource (ours or a provider's multi-language one), not the stack."""
        return not self.custom and self.type != STACK_TYPE

    def to_json(self) -> dict[str, Any]:
        """The resource as one entry of the `--json` file's `resources` list."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "inputs": self.inputs,
            "dependencies": self.dependencies,
            "custom": self.custom,
            "provider": self.provider,
            "property_dependencies": self.property_dependencies,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedResource:
        """Read an entry written by `to_json` (or by an older version without extras)."""
        return cls(
            urn=data["urn"],
            type=data["type"],
            name=data["name"],
            parent=data.get("parent"),
            inputs=data.get("inputs") or {},
            dependencies=list(data.get("dependencies") or []),
            custom=bool(data.get("custom", True)),
            provider=data.get("provider"),
            property_dependencies={
                key: list(urns) for key, urns in (data.get("property_dependencies") or {}).items()
            },
        )


@dataclass
class Graph:
    """Every resource one run of the program registered, in registration order."""

    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[RecordedResource]:
        return iter(self.resources)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """All resources of `type_token`, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RecordedResource:
        """The only resource of `type_token`; raise if there is none or several."""
        found = self.of_type(type_token)
        if len(found) != 1:
            raise LookupError(f"expected one {type_token}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        """The resource registered as `urn`; raise `LookupError` if there is none."""
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(f"no resource with URN {urn}")

    def children(self, parent_urn: str) -> list[RecordedResource]:
        """The resources whose parent is `parent_urn`."""
        return [r for r in self.resources if r.parent == parent_urn]

    def component_of(self, resource: RecordedResource) -> RecordedResource | None:
        """The nearest enclosing component of `resource` (itself if it is one)."""
        current: RecordedResource | None = resource
        while current is not None and not current.is_component:
            current = self.by_urn(current.parent) if current.parent else None
        return current

    def type_counts(self) -> Counter[str]:
        """How many custom (provider-managed) resources of each type."""
        return Counter(r.type for r in self.resources if r.custom)

    def to_json(self) -> dict[str, Any]:
        """The `--json` document: the stack, its resources and its outputs."""
        return {
            "stack": self.stack,
            "resources": [r.to_json() for r in self.resources],
            "outputs": self.outputs,
        }

    def write_json(self, path: Path) -> None:
        """Write `to_json()` to `path`, indented for review in a diff."""
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def read_json(cls, path: Path) -> Graph:
        """Load a graph written by `write_json` (e.g. for the offline policy run)."""
        data = json.loads(path.read_text())
        return cls(
            stack=data["stack"],
            resources=[RecordedResource.from_json(r) for r in data["resources"]],
            outputs=data.get("outputs") or {},
        )
