"""The platform's traces: the collector every workload and Kong export to, from the config.

The collector runs in its own namespace; its OTLP/HTTP endpoint goes into each traced
workload's environment (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, see
`stacks.workloads.sections.tracing_env`) and into Kong's `opentelemetry` plugin.
"""

from __future__ import annotations

import pulumi

from components.cluster import Cluster
from components.trace_collector import COLLECTOR_LABELS, TraceCollector
from components.workload import PeerArgs
from stacks.config import StackConfig

__all__ = ["COLLECTOR", "TRACING_NAMESPACE", "build_trace_collector"]

TRACING_NAMESPACE = "tracing"
COLLECTOR: PeerArgs = {"namespace": TRACING_NAMESPACE, "labels": dict(COLLECTOR_LABELS)}
"""The collector's pods, as the workloads' and Kong's NetworkPolicies name them."""


def build_trace_collector(
    config: StackConfig, cluster: Cluster, opts: pulumi.ResourceOptions
) -> TraceCollector:
    """Declare the OpenTelemetry Collector (OTLP/HTTP in, X-Ray out)."""
    settings = config.tracing
    return TraceCollector(
        "trace-collector",
        {
            "namespace": TRACING_NAMESPACE,
            "chart_version": settings.collector_chart_version,
            "replicas": settings.collector_replicas,
            "region": config.region,
            "oidc_provider_arn": cluster.oidc_provider_arn,
            "oidc_issuer": cluster.oidc_issuer,
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[cluster])),
    )
