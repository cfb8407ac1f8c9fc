"""The eduscale component package: our components, usable from every Pulumi language.

Python stacks import the classes in `components` directly. Teams whose stacks are in
TypeScript, Go, .NET, Java or YAML run `pulumi package add <this repository>` instead:
Pulumi starts this repository as a plugin (`PulumiPlugin.yaml`, which runs
`__main__.py` next to it, which calls `main` here), asks it for its package schema, and
generates an SDK in the stack's language from that schema. Creating a component from
that SDK calls back into this plugin, which builds the very same Python class.

The schema is not written by hand: the SDK's component provider infers it from the
type annotations of each class in `PUBLISHED_COMPONENTS` (its `<Name>Args` TypedDict for
the inputs, its `pulumi.Output[T]` class attributes for the outputs, and the docstrings
of both for the documentation). We serve it through `PublishedComponentProvider`
(`infra/published_provider.py`), which keeps integers and enums typed on their way in and
out. `tests/components/test_component_schema.py` checks the schema offline, so a component whose
typing cannot be published fails a test rather than another team's `pulumi package add`;
`tests/components/test_component_provider_grpc.py` starts this plugin as the engine does and builds
components through it.

Publishing one more component is one more line in `PUBLISHED_COMPONENTS`.
"""

import json
import sys
from functools import cache
from importlib.metadata import version
from typing import Any, Final

import pulumi
import pulumi.provider

from components.analytics import Analytics
from components.api_gateway import ApiGateway
from components.cache import Cache
from components.cdn import Cdn
from components.cluster import Cluster
from components.container_image import ContainerImage
from components.database import Database
from components.document_store import DocumentStore
from components.event_bus import EventBus
from components.load_balancer import LoadBalancer
from components.microservice import Microservice
from components.monitoring import Monitoring
from components.network import Network
from components.origin_authentication import OriginAuthentication
from components.schema_migration import SchemaMigration
from components.trace_collector import TraceCollector
from components.type_tokens import PACKAGE
from components.vector_store import VectorStore
from components.worker import Worker
from infra.published_provider import PublishedComponentProvider

__all__ = ["PACKAGE_NAME", "PUBLISHED_COMPONENTS", "main", "provider", "published_schema"]

PACKAGE_NAME: Final = PACKAGE
"""The package name consumers see: `pulumi package add` creates an `eduscale` SDK."""

PUBLISHED_COMPONENTS: Final[tuple[type[pulumi.ComponentResource], ...]] = (
    Network,
    Database,
    Cache,
    EventBus,
    DocumentStore,
    Cluster,
    ContainerImage,
    SchemaMigration,
    Microservice,
    Worker,
    VectorStore,
    Analytics,
    ApiGateway,
    OriginAuthentication,
    LoadBalancer,
    Cdn,
    Monitoring,
    TraceCollector,
)
"""Every component other languages can create; the schema has one resource per entry."""


@cache  # inferring the schema takes seconds; one provider serves a process
def provider() -> PublishedComponentProvider:
    """The provider serving `PUBLISHED_COMPONENTS`; its version is the project's."""
    return PublishedComponentProvider(
        list(PUBLISHED_COMPONENTS), PACKAGE_NAME, version(PACKAGE_NAME)
    )


@cache
def published_schema() -> dict[str, Any]:
    """The package schema the plugin answers to `GetSchema`, parsed."""
    schema = provider().schema
    assert schema is not None  # noqa: S101 (the provider always infers one)
    parsed: dict[str, Any] = json.loads(schema)
    return parsed


def main() -> None:
    """Serve `PUBLISHED_COMPONENTS` to the Pulumi engine until it disconnects.

    The engine passes its address and flags on the command line.
    """
    pulumi.provider.main(provider(), sys.argv[1:])


if __name__ == "__main__":
    main()
