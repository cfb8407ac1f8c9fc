"""Typed Pulumi components for the eduscale platform, one tier per module.

Every component here follows the same conventions, so a team importing one into its own
stack knows what it gets:

- Type token `eduscale:index:<Name>` (`eduscale:index:Network`), the token of the
  published package schema; `components.type_tokens` holds them all, each with an alias
  from the token earlier releases used.
- `__init__(self, name, args: <Name>Args, opts=None)`, where `<Name>Args` is a
  `TypedDict`: `pulumi.Input[T]` for values that travel on the wire, plain types only for
  values that shape the graph (counts, CIDR layouts, flags), `NotRequired` for optional
  fields and no `Union` but `Optional`. That is what Pulumi's component provider host can
  publish to other languages.
- Outputs are annotated `pulumi.Output[T]` attributes holding scalars or lists of them
  (ids, endpoints, ARNs), also passed to `register_outputs`.
- Every child resource is created with `parent=self`.
- Every taggable AWS resource carries `standard_tags()` (`project`, `stack`,
  `component`, `managed-by`, and `Name`), and every physical name comes from
  `physical_name()`; both live in `components.conventions`.
- Defaults are the secure, production-grade ones (encryption with rotating customer keys,
  private placement, logs on). Environments differ only by the args they pass.
- Invalid args raise `ValueError` naming the arg and what is allowed, before any child
  resource is declared.

Every component, its `<Name>Args` and the nested arg types they take are importable from
here (`from components import Microservice, MicroserviceArgs`). Each is loaded on first
use, so `import components` costs nothing and a stack pays only for the provider SDKs of
the components it uses: the Cloudflare SDK alone takes seconds, and only `Cdn` and
`OriginAuthentication` load it when imported (`LoadBalancer` when it is created).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.analytics import Analytics, AnalyticsArgs
    from components.api_gateway import ApiGateway, ApiGatewayArgs, GatewayTracesArgs, UpstreamArgs
    from components.cache import Cache, CacheArgs
    from components.cdn import Cdn, CdnArgs
    from components.cluster import Cluster, ClusterArgs, NodeGroupArgs
    from components.cluster_addons import AddonVersionsArgs
    from components.container_image import ContainerImage, ContainerImageArgs, ImageBuildArgs
    from components.database import Database, DatabaseArgs
    from components.document_store import DocumentStore, DocumentStoreArgs
    from components.event_bus import EventBus, EventBusArgs, TopicArgs
    from components.kong_config import GatewayLimitsArgs
    from components.load_balancer import LoadBalancer, LoadBalancerArgs
    from components.microservice import Microservice, MicroserviceArgs
    from components.monitoring import Monitoring, MonitoringArgs, ScrapeTargetArgs
    from components.network import Network, NetworkArgs
    from components.origin_authentication import OriginAuthentication, OriginAuthenticationArgs
    from components.schema_migration import SchemaMigration, SchemaMigrationArgs
    from components.trace_collector import TraceCollector, TraceCollectorArgs
    from components.vector_store import VectorStore, VectorStoreArgs
    from components.worker import Worker, WorkerArgs
    from components.workload import (
        EgressRuleArgs,
        PeerArgs,
        ResourcesArgs,
        SecretKeyArgs,
        WorkloadArgs,
    )
    from contracts.vector_layout import CollectionLayout, Distance

_EXPORTS: dict[str, str] = {
    "Analytics": "components.analytics",
    "AnalyticsArgs": "components.analytics",
    "ApiGateway": "components.api_gateway",
    "ApiGatewayArgs": "components.api_gateway",
    "UpstreamArgs": "components.api_gateway",
    "GatewayTracesArgs": "components.api_gateway",
    "Cache": "components.cache",
    "CacheArgs": "components.cache",
    "Cdn": "components.cdn",
    "CdnArgs": "components.cdn",
    "Cluster": "components.cluster",
    "ClusterArgs": "components.cluster",
    "NodeGroupArgs": "components.cluster",
    "AddonVersionsArgs": "components.cluster_addons",
    "ContainerImage": "components.container_image",
    "ContainerImageArgs": "components.container_image",
    "ImageBuildArgs": "components.container_image",
    "Database": "components.database",
    "DatabaseArgs": "components.database",
    "DocumentStore": "components.document_store",
    "DocumentStoreArgs": "components.document_store",
    "EventBus": "components.event_bus",
    "EventBusArgs": "components.event_bus",
    "TopicArgs": "components.event_bus",
    "GatewayLimitsArgs": "components.kong_config",
    "LoadBalancer": "components.load_balancer",
    "LoadBalancerArgs": "components.load_balancer",
    "Microservice": "components.microservice",
    "MicroserviceArgs": "components.microservice",
    "Monitoring": "components.monitoring",
    "MonitoringArgs": "components.monitoring",
    "ScrapeTargetArgs": "components.monitoring",
    "Network": "components.network",
    "NetworkArgs": "components.network",
    "OriginAuthentication": "components.origin_authentication",
    "OriginAuthenticationArgs": "components.origin_authentication",
    "SchemaMigration": "components.schema_migration",
    "TraceCollector": "components.trace_collector",
    "TraceCollectorArgs": "components.trace_collector",
    "SchemaMigrationArgs": "components.schema_migration",
    "VectorStore": "components.vector_store",
    "VectorStoreArgs": "components.vector_store",
    "Worker": "components.worker",
    "WorkerArgs": "components.worker",
    "EgressRuleArgs": "components.workload",
    "PeerArgs": "components.workload",
    "ResourcesArgs": "components.workload",
    "SecretKeyArgs": "components.workload",
    "WorkloadArgs": "components.workload",
    "CollectionLayout": "contracts.vector_layout",
    "Distance": "contracts.vector_layout",
}
"""Exported name -> the module defining it, imported when the name is first read."""

__all__ = [
    "AddonVersionsArgs",
    "Analytics",
    "AnalyticsArgs",
    "ApiGateway",
    "ApiGatewayArgs",
    "Cache",
    "CacheArgs",
    "Cdn",
    "CdnArgs",
    "Cluster",
    "ClusterArgs",
    "CollectionLayout",
    "ContainerImage",
    "ContainerImageArgs",
    "Database",
    "DatabaseArgs",
    "Distance",
    "DocumentStore",
    "DocumentStoreArgs",
    "EgressRuleArgs",
    "EventBus",
    "EventBusArgs",
    "GatewayLimitsArgs",
    "GatewayTracesArgs",
    "ImageBuildArgs",
    "LoadBalancer",
    "LoadBalancerArgs",
    "Microservice",
    "MicroserviceArgs",
    "Monitoring",
    "MonitoringArgs",
    "Network",
    "NetworkArgs",
    "NodeGroupArgs",
    "OriginAuthentication",
    "OriginAuthenticationArgs",
    "PeerArgs",
    "ResourcesArgs",
    "SchemaMigration",
    "SchemaMigrationArgs",
    "ScrapeTargetArgs",
    "SecretKeyArgs",
    "TopicArgs",
    "TraceCollector",
    "TraceCollectorArgs",
    "UpstreamArgs",
    "VectorStore",
    "VectorStoreArgs",
    "Worker",
    "WorkerArgs",
    "WorkloadArgs",
]


def __getattr__(name: str) -> Any:
    """Import the module defining `name` on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
