"""Our component plugin, run as the Pulumi engine runs it, against a mock engine over gRPC.

What a TypeScript, Go or YAML stack goes through when it creates one of our components:
the CLI starts the plugin the way `PulumiPlugin.yaml` says (the Python language host runs
`<virtualenv>/bin/python <plugin directory> <engine address>` in that directory), reads
the port the plugin prints, asks it for its schema and then for a `Construct`. While
constructing, the plugin's Python SDK registers every child with the resource monitor
named in the request and logs to the engine. Here both of those are gRPC servers in the
test process, built on the SDK's generated stubs, that record each registration as it
arrives and answer with the offline engine's deterministic provider answers
(`infra.mocks.OfflineMocks`), so assertions see exactly the bytes the engine would.
"""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc
import pulumi
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2,
    provider_pb2_grpc,
    resource_pb2,
    resource_pb2_grpc,
)

from infra.mocks import OfflineMocks

__all__ = ["Construction", "MockEngine", "PluginProcess", "Registration", "struct"]

STACK_TYPE = "pulumi:pulumi:Stack"

_FEATURES = [
    resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS,
    resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES,
    resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS,
    resource_pb2.RESOURCE_MONITOR_FEATURE_DELETED_WITH,
]
_FEATURE_NAMES = {"secrets", "resourceReferences", "aliasSpecs", "deletedWith"}


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    """A protobuf `Struct`: every number in it becomes a double, as on the real wire."""
    message = struct_pb2.Struct()
    message.update(value)
    return message


@dataclass(frozen=True)
class Registration:
    """One `RegisterResource` request, as the monitor received it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    alias_types: list[str]
    """The `type` of every alias spec the resource was registered with."""


class _Monitor(resource_pb2_grpc.ResourceMonitorServicer):
    def __init__(self, engine: MockEngine) -> None:
        self.engine = engine

    def GetDeploymentInfo(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return resource_pb2.DeploymentInfo(supportedFeatures=_FEATURES)

    def SupportsFeature(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return resource_pb2.SupportsFeatureResponse(hasSupport=request.id in _FEATURE_NAMES)

    def RegisterResource(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        urn = self.engine.urn(request.parent, request.type, request.name)
        inputs = json_format.MessageToDict(request.object)
        self.engine.record(
            Registration(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=request.custom,
                inputs=inputs,
                alias_types=[alias.spec.type for alias in request.aliases if alias.spec.type],
            )
        )
        if not request.custom:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        resource_id, state = self.engine.mocks.new_resource(
            pulumi.runtime.MockResourceArgs(
                typ=request.type, name=request.name, inputs=inputs, custom=True
            )
        )
        return resource_pb2.RegisterResourceResponse(
            urn=urn, id=resource_id or "", object=struct(state)
        )

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return empty_pb2.Empty()

    def Invoke(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        answer = self.engine.mocks.call(
            pulumi.runtime.MockCallArgs(
                token=request.tok,
                args=json_format.MessageToDict(request.args),
                provider=request.provider,
            )
        )
        response = resource_pb2.ResourceInvokeResponse()
        getattr(response, "return").CopyFrom(struct(answer))  # `return` is a Python keyword
        return response

    def RegisterPackage(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return resource_pb2.RegisterPackageResponse(ref=f"{request.name}-{request.version}")

    def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return empty_pb2.Empty()


class _Engine(engine_pb2_grpc.EngineServicer):
    def __init__(self, engine: MockEngine) -> None:
        self.engine = engine

    def Log(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        self.engine.logs.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return engine_pb2.GetRootResourceResponse(urn=self.engine.stack_urn)

    def SetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return engine_pb2.SetRootResourceResponse()


class MockEngine:
    """The resource monitor and engine services of one deployment, on one local port."""

    def __init__(self, *, project: str, stack: str) -> None:
        self.project, self.stack = project, stack
        self.stack_urn = f"urn:pulumi:{stack}::{project}::{STACK_TYPE}::{project}-{stack}"
        self.mocks = OfflineMocks("eu-west-1")
        self.registrations: list[Registration] = []
        self.logs: list[str] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(_Monitor(self), self._server)
        engine_pb2_grpc.add_EngineServicer_to_server(_Engine(self), self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives a resource: its type qualified by its parents' types."""
        if parent and parent != self.stack_urn:
            type_ = f"{parent.split('::')[2]}${type_}"
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    def record(self, registration: Registration) -> None:
        with self._lock:
            self.registrations.append(registration)

    def stop(self) -> None:
        self._server.stop(grace=None)


@dataclass(frozen=True)
class Construction:
    """What one `Construct` returned, and what the component registered meanwhile."""

    urn: str
    state: dict[str, Any]
    resources: list[Registration]
    """The component itself and every resource below it, in registration order."""

    def component(self) -> Registration:
        return next(r for r in self.resources if r.urn == self.urn)

    def one(self, type_: str, name: str | None = None) -> Registration:
        """The single resource of `type_` (and `name`) the component registered."""
        found = [r for r in self.resources if r.type == type_ and name in (None, r.name)]
        assert len(found) == 1, f"{len(found)} of {type_} {name or ''}: {[r.name for r in found]}"
        return found[0]


class PluginProcess:
    """The component plugin in `directory`, started as the Python language host starts it."""

    def __init__(self, directory: Path, engine: MockEngine, log: IO[bytes]) -> None:
        plugin = yaml.safe_load((directory / "PulumiPlugin.yaml").read_text())
        runtime = plugin["runtime"]
        assert runtime["name"] == "python", runtime
        python = directory / runtime["options"]["virtualenv"] / "bin" / "python"
        self.engine = engine
        self._process = subprocess.Popen(
            [str(python), str(directory), engine.address],
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        self._channel: grpc.Channel | None = None
        assert self._process.stdout is not None
        port = self._process.stdout.readline().decode().strip()
        if not port.isdigit():
            self.stop()
            log.seek(0)
            raise RuntimeError(f"the plugin printed {port!r}, not a port:\n{log.read().decode()}")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.provider = provider_pb2_grpc.ResourceProviderStub(self._channel)

    def schema(self) -> dict[str, Any]:
        """What the plugin answers to `GetSchema`, parsed."""
        response = self.provider.GetSchema(provider_pb2.GetSchemaRequest(version=0))
        parsed: dict[str, Any] = json.loads(response.schema)
        return parsed

    def version(self) -> str:
        return str(self.provider.GetPluginInfo(empty_pb2.Empty()).version)

    def construct(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any],
        dependencies: dict[str, list[str]] | None = None,
    ) -> Construction:
        """Ask the plugin for component `type_` named `name`, as the engine does."""
        self.provider.Configure(
            provider_pb2.ConfigureRequest(acceptSecrets=True, acceptResources=True)
        )
        request = provider_pb2.ConstructRequest(
            project=self.engine.project,
            stack=self.engine.stack,
            organization="organization",
            monitorEndpoint=self.engine.address,
            dryRun=False,
            parallel=4,
            type=type_,
            name=name,
            parent=self.engine.stack_urn,
            inputs=struct(inputs),
            inputDependencies={
                key: provider_pb2.ConstructRequest.PropertyDependencies(urns=urns)
                for key, urns in (dependencies or {}).items()
            },
        )
        response = self.provider.Construct(request)
        below = [
            r
            for r in self.engine.registrations
            if r.urn == response.urn or _under(r, response.urn, self.engine.registrations)
        ]
        return Construction(
            urn=response.urn, state=json_format.MessageToDict(response.state), resources=below
        )

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _under(registration: Registration, ancestor: str, everything: list[Registration]) -> bool:
    by_urn = {r.urn: r for r in everything}
    parent = registration.parent
    while parent and parent in by_urn:
        if parent == ancestor:
            return True
        parent = by_urn[parent].parent
    return False
