"""The eduscale component package: our components, usable from every Pulumi language.

Python stacks import the classes in `components` directly. Teams whose stacks are in
TypeScript, Go, .NET, Java or YAML run `pulumi package add <this repository>` instead:
Pulumi starts this repository as a plugin (`PulumiPlugin.yaml`, which runs
`__main__.py` next to it, which calls `main` here), asks it for its package schema, and
generates an SDK in the stack's language from that schema. Creating a component from
that SDK calls back into this plugin, which builds the very same Python class.

The schema is not written by hand: the SDK's component provider host infers it from the
type annotations of each class in `PUBLISHED_COMPONENTS` (its `<Name>Args` TypedDict for
the inputs, its `pulumi.Output[T]` class attributes for the outputs, and the docstrings
of both for the documentation). `tests/components/test_component_schema.py` runs that same analysis
offline and checks the result, so a component whose typing cannot be published fails a
test rather than another team's `pulumi package add`.

Publishing one more component is one more line in `PUBLISHED_COMPONENTS`.
"""

from importlib.metadata import version
from typing import Final

import pulumi
from pulumi.provider.experimental import component_provider_host

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
from components.network import Network
from components.origin_authentication import OriginAuthentication
from components.schema_migration import SchemaMigration
from components.vector_store import VectorStore
from components.worker import Worker

__all__ = ["PACKAGE_NAME", "PUBLISHED_COMPONENTS", "main"]

PACKAGE_NAME: Final = "eduscale"
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
)
"""Every component other languages can create; the schema has one resource per entry."""


def main() -> None:
    """Serve `PUBLISHED_COMPONENTS` to the Pulumi engine until it disconnects.

    The engine passes its address and flags on the command line; the host reads them from
    `sys.argv`. The package version is the project's, from `pyproject.toml`.
    """
    component_provider_host(
        list(PUBLISHED_COMPONENTS), name=PACKAGE_NAME, version=version(PACKAGE_NAME)
    )


if __name__ == "__main__":
    main()
