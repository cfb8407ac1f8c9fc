"""The analytics sink on the cluster: `analytics.events` into ClickHouse, nothing else.

The sink touches Kafka and ClickHouse only: no database login, Redis or data-store
route, so a compromised sink reaches nothing of the relational data.
"""

from __future__ import annotations

from components.worker import Worker
from contracts.topics import ANALYTICS_EVENTS
from services.analytics_sink.settings import AnalyticsSinkSettings
from stacks.workloads.context import WorkloadContext
from stacks.workloads.deploy import kafka_worker
from stacks.workloads.pod_env import workload_env
from stacks.workloads.roles import workload_role
from stacks.workloads.sections import analytics_env, kafka_env, logging_env

__all__ = ["build_analytics_sink"]


def build_analytics_sink(context: WorkloadContext) -> Worker:
    """Declare the sink."""
    name = "analytics-sink"
    environment = workload_env(
        AnalyticsSinkSettings, logging_env(context), kafka_env(context), analytics_env(context)
    )
    return kafka_worker(
        context,
        name,
        command="analytics",
        topic=ANALYTICS_EVENTS.name,
        scaling=context.config.services.analytics_sink,
        environment=environment,
        role=workload_role(context, name, kafka=((), ANALYTICS_EVENTS.name), database=False),
        egress_to=[context.kafka],
        egress_peers=[context.clickhouse],
        uses_database=False,
    )
