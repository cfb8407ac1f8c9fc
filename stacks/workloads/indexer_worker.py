"""The indexer worker on the cluster: consumes `document.uploaded`, reads the uploads."""

from __future__ import annotations

from components.worker import Worker
from contracts.topics import DOCUMENT_UPLOADED
from services.ai.settings import AISettings
from services.indexer_worker.settings import IndexerWorkerSettings
from stacks.access import DOCUMENT_READ
from stacks.workloads.context import EVENTS_ONLY, HTTPS_OUT, WorkloadContext
from stacks.workloads.deploy import kafka_worker
from stacks.workloads.pod_env import section_env, workload_env
from stacks.workloads.roles import workload_role
from stacks.workloads.sections import (
    ai_env,
    core_env,
    documents_env,
    kafka_env,
    tracing_env,
)

__all__ = ["build_indexer_worker"]


def build_indexer_worker(context: WorkloadContext) -> Worker:
    """Declare the indexer worker; it may only read the documents bucket."""
    name, scaling = "indexer-worker", context.config.services.indexer_worker
    environment = workload_env(
        IndexerWorkerSettings,
        core_env(context, reads_replicas=True, serves_clients=False),
        kafka_env(context),
        ai_env(context),
        documents_env(context),
        section_env(AISettings, worker_concurrency=scaling.worker_concurrency),
        tracing_env(context, name),
    )
    role = workload_role(
        context, name, kafka=(EVENTS_ONLY, DOCUMENT_UPLOADED.name), documents=DOCUMENT_READ
    )
    return kafka_worker(
        context,
        name,
        command="indexer",
        topic=DOCUMENT_UPLOADED.name,
        scaling=scaling,
        environment=environment,
        role=role,
        egress_to=[context.data_stores, context.kafka, HTTPS_OUT],
        egress_peers=[context.qdrant],
    )
