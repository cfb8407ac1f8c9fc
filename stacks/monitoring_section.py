"""`eduscale:monitoring`: the Prometheus stack's versions, sizes and image pins.

Defaults are prod's (two replicas, a month of samples); dev sets smaller values. The chart
versions are pinned here, in one place, like the cluster add-ons'.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from stacks.sections import Section

__all__ = ["ChartImage", "MonitoringConfig"]

ChartImage = Literal[
    "prometheus",
    "alertmanager",
    "operator",
    "config_reloader",
    "webhook_certgen",
    "grafana",
    "grafana_sidecar",
    "kube_state_metrics",
    "node_exporter",
    "adapter",
]
"""An image of the monitoring charts that `imageDigests` may pin (see components/monitoring)."""

Digest = Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$")]
Cpu = Annotated[str, Field(pattern=r"^\d+(\.\d+)?m?$")]
Memory = Annotated[str, Field(pattern=r"^\d+(Mi|Gi)$")]


class MonitoringConfig(Section):
    """`eduscale:monitoring`: kube-prometheus-stack and prometheus-adapter."""

    stack_chart_version: str = "88.5.3"
    """kube-prometheus-stack chart version."""
    adapter_chart_version: str = "5.3.0"
    """prometheus-adapter chart version."""
    retention_days: Annotated[int, Field(ge=1, le=365)] = 30
    """Days of samples Prometheus keeps (the burn-rate alerts need at least 3)."""
    storage_gb: Annotated[int, Field(ge=10, le=16_384)] = 500
    """Size of each Prometheus replica's encrypted gp3 volume; retention is capped below it."""
    replicas: Annotated[int, Field(ge=1, le=5)] = 2
    """Prometheus replicas, each scraping every target (two survive one node's loss)."""
    cpu: Cpu = "2"
    """CPU request and limit of each Prometheus replica (Kubernetes quantity)."""
    memory: Memory = "8Gi"
    """Memory request and limit of each Prometheus replica (Mi or Gi)."""
    grafana_storage_gb: Annotated[int, Field(ge=1, le=1000)] = 10
    """Size of Grafana's persistent volume."""
    image_digests: dict[ChartImage, Digest] = Field(default_factory=dict)
    """`sha256:...` per chart image, to pin the charts' images by digest as well."""
