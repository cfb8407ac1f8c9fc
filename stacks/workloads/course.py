"""The Course service on the cluster: catalogue and quizzes, reports over ClickHouse."""

from __future__ import annotations

from components.microservice import Microservice
from services.course.settings import CourseSettings
from stacks.workloads.context import EVENTS_ONLY, HTTPS_OUT, WorkloadContext
from stacks.workloads.deploy import http_service
from stacks.workloads.pod_env import workload_env
from stacks.workloads.roles import workload_role
from stacks.workloads.sections import analytics_env, core_env, kafka_env, tracing_env

__all__ = ["build_course"]


def build_course(context: WorkloadContext) -> Microservice:
    """Declare the Course service: it reads the replicas and emits learning events."""
    environment = workload_env(
        CourseSettings,
        core_env(context, reads_replicas=True),
        kafka_env(context),
        analytics_env(context),
        tracing_env(context, "course"),
    )
    return http_service(
        context,
        "course",
        context.config.services.course,
        environment,
        workload_role(context, "course", kafka=(EVENTS_ONLY, None)),
        egress_to=[context.data_stores, context.kafka, HTTPS_OUT],
        egress_peers=[context.clickhouse],
    )
