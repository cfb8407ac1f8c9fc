"""The generation worker on the cluster: consumes `generation.requested`, calls the provider."""

from __future__ import annotations

from components.worker import Worker
from contracts.topics import GENERATION_REQUESTED
from services.ai.settings import AISettings
from services.generation_worker.settings import GenerationWorkerSettings
from stacks.workloads.context import EVENTS_ONLY, HTTPS_OUT, WorkloadContext
from stacks.workloads.deploy import kafka_worker
from stacks.workloads.pod_env import section_env, workload_env
from stacks.workloads.roles import workload_role
from stacks.workloads.sections import ai_env, core_env, kafka_env, tracing_env

__all__ = ["build_generation_worker"]


def build_generation_worker(context: WorkloadContext) -> Worker:
    """Declare the generation worker; it never sees a file, so it is not told the bucket."""
    name, scaling = "generation-worker", context.config.services.generation_worker
    environment = workload_env(
        GenerationWorkerSettings,
        core_env(context, reads_replicas=True, serves_clients=False),
        kafka_env(context),
        ai_env(context),
        section_env(AISettings, worker_concurrency=scaling.worker_concurrency),
        tracing_env(context, name),
    )
    return kafka_worker(
        context,
        name,
        command="generation",
        topic=GENERATION_REQUESTED.name,
        scaling=scaling,
        environment=environment,
        # Workers emit learning events too (generation finished).
        role=workload_role(context, name, kafka=(EVENTS_ONLY, GENERATION_REQUESTED.name)),
        egress_to=[context.data_stores, context.kafka, HTTPS_OUT],
        egress_peers=[context.qdrant],
    )
