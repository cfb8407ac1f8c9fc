"""The platform's monitoring: what Prometheus scrapes, from the stack's config.

Every long-running workload of the platform is a scrape target: the services and workers
(`/metrics` on their `http` port), Kong (its Prometheus plugin, on the status port),
Qdrant (on its HTTP port, with its API key as a bearer token) and ClickHouse's servers and
Keeper nodes (their `metrics` port). The policy pack's `k8s-workload-scraped` rule checks
that none is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.analytics import server_labels
from components.cluster_addons import STORAGE_CLASS
from components.monitoring import Monitoring, ScrapeTargetArgs
from stacks.config import StackConfig
from stacks.workloads import ANALYTICS_NAME, GATEWAY

__all__ = ["HTTP_SERVICES", "MONITORING_NAMESPACE", "WORKERS", "build_monitoring"]

MONITORING_NAMESPACE = "monitoring"
HTTP_SERVICES = ("auth", "course", "ai-orchestrator")
"""The HTTP services: each gets a golden-signals row and scales on its queue depth."""
WORKERS = ("generation-worker", "indexer-worker", "analytics-sink")


def build_monitoring(
    config: StackConfig,
    *,
    app_namespace: pulumi.Input[str],
    gateway_namespace: pulumi.Input[str],
    vector_store_api_key: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    depends_on: Sequence[pulumi.Resource],
) -> Monitoring:
    """Declare the monitoring stack and a scrape target for every workload."""
    settings = config.monitoring

    def app(name: str, **extra: object) -> ScrapeTargetArgs:
        target: ScrapeTargetArgs = {
            "name": name,
            "namespace": app_namespace,
            "labels": {"app.kubernetes.io/name": name},
            "port": "http",
        }
        return {**target, **extra}  # type: ignore[typeddict-item]

    targets: list[ScrapeTargetArgs] = [
        *(app(name, http_service=True) for name in HTTP_SERVICES),
        *(app(name) for name in WORKERS),
        {
            "name": GATEWAY["labels"]["app.kubernetes.io/name"],
            "namespace": gateway_namespace,
            "labels": dict(GATEWAY["labels"]),
            "port": "status",
        },
        app("qdrant", bearer_token=vector_store_api_key),
        {
            "name": ANALYTICS_NAME,
            "namespace": app_namespace,
            "labels": server_labels(ANALYTICS_NAME),
            "port": "metrics",
        },
        app(f"{ANALYTICS_NAME}-keeper", port="metrics"),
    ]
    return Monitoring(
        "monitoring",
        {
            "namespace": MONITORING_NAMESPACE,
            "stack_chart_version": settings.stack_chart_version,
            "adapter_chart_version": settings.adapter_chart_version,
            "retention_days": settings.retention_days,
            "storage_gb": settings.storage_gb,
            "storage_class": STORAGE_CLASS,
            "replicas": settings.replicas,
            "cpu": settings.cpu,
            "memory": settings.memory,
            "grafana_storage_gb": settings.grafana_storage_gb,
            "scrape_targets": targets,
            "image_digests": {str(key): value for key, value in settings.image_digests.items()},
        },
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=list(depends_on))
        ),
    )
