"""The AI orchestrator on the cluster: queues generation and indexing, stores uploads."""

from __future__ import annotations

from components.microservice import Microservice
from contracts.topics import DOCUMENT_UPLOADED, GENERATION_REQUESTED
from services.ai_orchestrator.settings import AIOrchestratorSettings
from stacks.access import DOCUMENT_WRITE
from stacks.workloads.context import EVENTS_ONLY, HTTPS_OUT, WorkloadContext
from stacks.workloads.deploy import http_service
from stacks.workloads.pod_env import workload_env
from stacks.workloads.roles import workload_role
from stacks.workloads.sections import (
    ai_env,
    core_env,
    documents_env,
    kafka_env,
    tracing_env,
)

__all__ = ["build_ai_orchestrator"]


def build_ai_orchestrator(context: WorkloadContext) -> Microservice:
    """Declare the orchestrator: the only workload that may queue work."""
    environment = workload_env(
        AIOrchestratorSettings,
        core_env(context),
        kafka_env(context),
        ai_env(context),
        documents_env(context),
        tracing_env(context, "ai-orchestrator"),
    )
    topics = (GENERATION_REQUESTED.name, DOCUMENT_UPLOADED.name, *EVENTS_ONLY)
    return http_service(
        context,
        "ai-orchestrator",
        context.config.services.ai_orchestrator,
        environment,
        workload_role(context, "ai-orchestrator", kafka=(topics, None), documents=DOCUMENT_WRITE),
        egress_to=[context.data_stores, context.kafka, HTTPS_OUT],
        egress_peers=[context.qdrant],
    )
