"""The type token of every component: one name per component, in state and in the schema.

A component registers as `eduscale:index:<Name>`, the token the published package schema
gives it (Pulumi's component provider host puts every component in the `index` module),
so a stack built in Python and one built from the generated SDK of another language see
the same type in their state, their policies and `pulumi stack` output.

Earlier releases registered the classes as `eduscale:<area>:<Name>` instead. Each
component carries that former token as an alias, so a stack deployed with it keeps its
resources: the engine matches the component (and, through it, every child, whose URN
embeds the parent's type) to the old state instead of replacing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi

__all__ = ["PACKAGE", "TYPE_TOKENS", "TypeToken"]

PACKAGE: Final = "eduscale"
"""The package name: `pulumi package add` creates an `eduscale` SDK."""


@dataclass(frozen=True)
class TypeToken:
    """The type token of one component, and the token its stacks may still hold."""

    name: str
    """The class name, e.g. `Network`."""
    former_module: str | None = None
    """The module of the former token, e.g. `network` in `eduscale:network:Network`;
    None for a component that never registered under another token."""

    @property
    def token(self) -> str:
        """What the component registers as: `eduscale:index:<Name>`."""
        return f"{PACKAGE}:index:{self.name}"

    @property
    def former(self) -> str | None:
        """The token the component registered as before it matched the schema, if any."""
        if self.former_module is None:
            return None
        return f"{PACKAGE}:{self.former_module}:{self.name}"

    def options(self, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
        """The caller's options plus an alias from the former token, if there is one."""
        if self.former is None:
            return pulumi.ResourceOptions.merge(opts, None)
        alias = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=self.former)])
        return pulumi.ResourceOptions.merge(opts, alias)


NETWORK: Final = TypeToken("Network", "network")
DATABASE: Final = TypeToken("Database", "data")
CACHE: Final = TypeToken("Cache", "data")
EVENT_BUS: Final = TypeToken("EventBus", "data")
ANALYTICS: Final = TypeToken("Analytics", "data")
DOCUMENT_STORE: Final = TypeToken("DocumentStore", "storage")
CONTAINER_IMAGE: Final = TypeToken("ContainerImage", "images")
CLUSTER: Final = TypeToken("Cluster", "compute")
SCHEMA_MIGRATION: Final = TypeToken("SchemaMigration", "compute")
MICROSERVICE: Final = TypeToken("Microservice", "compute")
WORKER: Final = TypeToken("Worker", "compute")
VECTOR_STORE: Final = TypeToken("VectorStore", "compute")
API_GATEWAY: Final = TypeToken("ApiGateway", "edge")
LOAD_BALANCER: Final = TypeToken("LoadBalancer", "edge")
CDN: Final = TypeToken("Cdn", "edge")
ORIGIN_AUTHENTICATION: Final = TypeToken("OriginAuthentication", "edge")
MONITORING: Final = TypeToken("Monitoring")
TRACE_COLLECTOR: Final = TypeToken("TraceCollector")

TYPE_TOKENS: Final[dict[str, TypeToken]] = {
    t.name: t
    for t in (
        NETWORK,
        DATABASE,
        CACHE,
        EVENT_BUS,
        ANALYTICS,
        DOCUMENT_STORE,
        CONTAINER_IMAGE,
        CLUSTER,
        SCHEMA_MIGRATION,
        MICROSERVICE,
        WORKER,
        VECTOR_STORE,
        API_GATEWAY,
        LOAD_BALANCER,
        CDN,
        ORIGIN_AUTHENTICATION,
        MONITORING,
        TRACE_COLLECTOR,
    )
}
"""Class name -> its token, for every component."""
