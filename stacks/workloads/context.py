"""What every workload module of the stack is built from: the tiers, the image, the fences.

Each deployable has its own module here (`auth`, `course`, ...) with one `build`
function; they share this context, the IRSA role helper (`roles`) and the environment
sections (`sections`), so each default and each piece of wiring is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.analytics import Analytics, server_labels
from components.cache import Cache
from components.cluster import Cluster
from components.database import Database
from components.document_store import DocumentStore
from components.event_bus import EventBus
from components.network import Network
from components.trace_collector import TraceCollector
from components.vector_store import VectorStore
from components.workload import EgressRuleArgs, PeerArgs, ResourcesArgs
from contracts.topics import ANALYTICS_EVENTS
from stacks.compute_sections import Scaling
from stacks.config import StackConfig, StackSecrets

__all__ = [
    "ANALYTICS_CLIENTS",
    "ANALYTICS_NAME",
    "APP_NAMESPACE",
    "EVENTS_ONLY",
    "GATEWAY",
    "HTTPS_OUT",
    "HTTP_PORT",
    "WorkloadContext",
    "resources",
]

APP_NAMESPACE = "eduscale"
HTTP_PORT = 8000
GATEWAY: PeerArgs = {"namespace": "gateway", "labels": {"app.kubernetes.io/name": "api-gateway"}}
"""The API gateway's pods: the only callers of the HTTP services."""
ANALYTICS_NAME = "clickhouse"
"""Name of the ClickHouse cluster's objects (its client Service is `clickhouse`)."""
ANALYTICS_CLIENTS = ("course", "analytics-sink")
"""The only pods that reach ClickHouse: the sink writes events, Course reports on them."""
EVENTS_ONLY = (ANALYTICS_EVENTS.name,)
"""What a workload that only emits learning events may write."""
HTTPS_OUT: EgressRuleArgs = {"cidr": "0.0.0.0/0", "ports": [443]}
"""AWS APIs (STS for IRSA, Secrets Manager) and the OpenAI API, through NAT."""


@dataclass(frozen=True)
class WorkloadContext:
    """The platform's tiers and the deployment inputs every workload shares."""

    config: StackConfig
    secrets: StackSecrets
    network: Network
    cluster: Cluster
    database: Database
    cache: Cache
    event_bus: EventBus
    vector_store: VectorStore
    documents: DocumentStore
    analytics: Analytics
    image: pulumi.Input[str]
    """The services' image, pinned by digest."""
    schema_migration: pulumi.Input[str]
    """The schema Job every database client waits for."""
    namespace: pulumi.Input[str]
    opts: pulumi.ResourceOptions
    token_key: pulumi.Input[str]
    """The HS256 key of the services that issue or verify tokens."""
    trace_collector: TraceCollector
    """Where the traced workloads export their spans."""

    @property
    def data_stores(self) -> EgressRuleArgs:
        """PostgreSQL and Redis inside the VPC."""
        return {"cidr": self.config.network.cidr, "ports": [5432, 6379]}

    @property
    def kafka(self) -> EgressRuleArgs:
        """MSK's IAM listener inside the VPC."""
        return {"cidr": self.config.network.cidr, "ports": [9098]}

    @property
    def qdrant(self) -> PeerArgs:
        """The Qdrant pods."""
        return {"namespace": APP_NAMESPACE, "labels": {"app.kubernetes.io/name": "qdrant"}}

    @property
    def clickhouse(self) -> PeerArgs:
        """The ClickHouse server pods."""
        return {"namespace": APP_NAMESPACE, "labels": server_labels(ANALYTICS_NAME)}


def resources(scaling: Scaling) -> ResourcesArgs:
    """A workload's container requests and limits, from its scaling section."""
    return {
        "cpu_request": scaling.cpu_request,
        "cpu_limit": scaling.cpu_limit,
        "memory_request": scaling.memory_request,
        "memory_limit": scaling.memory_limit,
    }
