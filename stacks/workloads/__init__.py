"""The platform's services and workers on the cluster, and what each may reach.

One module per deployable (`auth`, `course`, `ai_orchestrator`, `generation_worker`,
`indexer_worker`, `analytics_sink`), each rendering its pods' environment from the
deployable's settings class (`pod_env`) and declaring exactly the network access and IAM
role its job needs: the Course service reads from the replicas (reports never touch the
writer), every service and worker may write learning events to `analytics.events` but
only the AI orchestrator may queue work, only the AI tier reaches the internet (HTTPS to
the OpenAI API) and Qdrant, only the AI orchestrator (which stores uploads) and the
indexer worker (which reads them) reach the documents bucket, and only the analytics
sink and the Course service reach ClickHouse. Secrets reach the pods as read-only files
(`<NAME>_FILE`); the ClickHouse password is read from the analytics component's own
Secret, never copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.analytics import Analytics
from components.cache import Cache
from components.cluster import Cluster
from components.database import Database
from components.document_store import DocumentStore
from components.event_bus import EventBus
from components.microservice import Microservice
from components.network import Network
from components.trace_collector import TraceCollector
from components.vector_store import VectorStore
from components.worker import Worker
from stacks.config import StackConfig, StackSecrets
from stacks.service_env import token_key
from stacks.workloads.ai_orchestrator import build_ai_orchestrator
from stacks.workloads.analytics_sink import build_analytics_sink
from stacks.workloads.auth import build_auth
from stacks.workloads.context import (
    ANALYTICS_CLIENTS,
    ANALYTICS_NAME,
    APP_NAMESPACE,
    GATEWAY,
    HTTP_PORT,
    WorkloadContext,
)
from stacks.workloads.course import build_course
from stacks.workloads.generation_worker import build_generation_worker
from stacks.workloads.indexer_worker import build_indexer_worker

__all__ = [
    "ANALYTICS_CLIENTS",
    "ANALYTICS_NAME",
    "APP_NAMESPACE",
    "GATEWAY",
    "HTTP_PORT",
    "Workloads",
    "build_workloads",
]


@dataclass(frozen=True)
class Workloads:
    """The services and workers of one platform."""

    auth: Microservice
    course: Microservice
    ai_orchestrator: Microservice
    generation_worker: Worker
    indexer_worker: Worker
    analytics_sink: Worker


def build_workloads(
    config: StackConfig,
    secrets: StackSecrets,
    *,
    network: Network,
    cluster: Cluster,
    database: Database,
    cache: Cache,
    event_bus: EventBus,
    vector_store: VectorStore,
    documents: DocumentStore,
    analytics: Analytics,
    image: pulumi.Input[str],
    schema_migration: pulumi.Input[str],
    namespace: pulumi.Input[str],
    trace_collector: TraceCollector,
    opts: pulumi.ResourceOptions,
) -> Workloads:
    """Declare every service and worker, wired to the data tier.

    `image` is the services' image pinned by digest; every workload that uses the
    database waits for `schema_migration` (the schema Job's name) before it rolls out.
    """
    context = WorkloadContext(
        config=config,
        secrets=secrets,
        network=network,
        cluster=cluster,
        database=database,
        cache=cache,
        event_bus=event_bus,
        vector_store=vector_store,
        documents=documents,
        analytics=analytics,
        image=image,
        schema_migration=schema_migration,
        namespace=namespace,
        opts=opts,
        token_key=token_key(opts),
        trace_collector=trace_collector,
    )
    return Workloads(
        auth=build_auth(context),
        course=build_course(context),
        ai_orchestrator=build_ai_orchestrator(context),
        generation_worker=build_generation_worker(context),
        indexer_worker=build_indexer_worker(context),
        analytics_sink=build_analytics_sink(context),
    )
