"""Run a Pulumi program in-process on the SDK's mock engine and record what it declares.

This is the "synth" half of `eduscale preview`: the real program, the real provider SDKs,
the real config, and in place of the engine a monitor that records each registration
request exactly as it arrives (type, parent, dependencies, wire-format inputs with their
secret markers) before the mocks answer it. `Mocks.new_resource` alone sees neither the
parent nor the dependencies, and receives secrets already unwrapped, which is why the
recording happens in the monitor.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.graph import SECRET_MASK, STACK_TYPE, Graph, RecordedResource
from infra.mocks import OfflineMocks

__all__ = ["run_offline"]

# The wire markers of a secret value. Private in the SDK, but part of the engine protocol
# (every language SDK uses the same constants), so they do not change.
_SECRET = rpc._special_secret_sig  # noqa: SLF001
_SIGNATURE_KEY = rpc._special_sig_key  # noqa: SLF001


def wire_value(value: Any) -> Any:
    """Turn a deserialized protobuf value into JSON as the engine shows it, secrets masked.

    A secret scalar becomes `"[secret]"`; a secret map or list keeps its keys and length
    with every value masked.

    Protobuf `Struct` numbers are doubles; whole numbers are shown as integers, as
    `pulumi preview --json` does.
    """
    if isinstance(value, dict):
        if value.get(_SIGNATURE_KEY) == _SECRET:
            return _masked(value.get("value"))
        return {key: wire_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wire_value(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _masked(value: Any) -> Any:
    """A secret with every value replaced by the mask and its shape kept.

    The keys of a secret map (the names of a Secret's environment variables) are not
    secret, and keeping them lets the graph be validated and reviewed.
    """
    if isinstance(value, dict) and value.get(_SIGNATURE_KEY) != _SECRET:
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return SECRET_MASK


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps every registration request it answers."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """Build URNs as the engine does.

        A child's type is qualified by its parent's whole type chain, except under the
        root stack; the SDK's mock keeps only the parent's last type and also qualifies
        by the stack, which would give URNs no real deployment has.
        """
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != STACK_TYPE:
                type_ = f"{parent_type}${type_}"
        return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = wire_value(json_format.MessageToDict(request.object))
        with self._lock:
            self.recorded.append(
                RecordedResource(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    inputs=inputs if request.type != STACK_TYPE else {},
                    dependencies=sorted(set(request.dependencies)),
                    custom=bool(request.custom),
                    provider=request.provider or None,
                    property_dependencies={
                        key: sorted(set(value.urns))
                        for key, value in request.propertyDependencies.items()
                        if value.urns
                    },
                )
            )
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


def run_offline(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    region: str,
) -> Graph:
    """Run `program` as stack `stack` of `project` with `config`; return what it declared.

    Runs with `preview=False`: in a mocked preview, outputs missing from the mocks stay
    unknown and `apply` callbacks never run, so half of the program would go unchecked.
    Exceptions from the program propagate unchanged.
    """
    _ensure_event_loop()
    mocks = OfflineMocks(region)
    monitor = RecordingMonitor(mocks)
    settings.reset_options(project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(dict(config), secret_keys)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    root = settings.get_root_resource()
    _sync_await(run_pulumi_func(program))
    outputs: dict[str, Any] = {}
    if root is not None:
        for key, value in getattr(root, "outputs", {}).items():
            outputs[key] = _sync_await(_resolve(value))
    return Graph(stack=stack, resources=list(monitor.recorded), outputs=outputs)


def _ensure_event_loop() -> None:
    """Give the SDK the current event loop it fetches.

    `asyncio.run` elsewhere in the same process (a service test, say) leaves none behind.
    """
    policy = asyncio.get_event_loop_policy()
    try:
        loop: asyncio.AbstractEventLoop | None = policy.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        policy.set_event_loop(policy.new_event_loop())


async def _resolve(value: Any) -> Any:
    """An exported value, resolved, with secrets masked."""
    output = pulumi.Output.from_input(value)
    if await output.is_secret():
        return SECRET_MASK
    return wire_value(await output.future())
