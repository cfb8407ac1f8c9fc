"""`eduscale:tracing`: the OpenTelemetry Collector's chart and how much Kong samples.

Defaults are prod's. The chart version is pinned here, like the monitoring charts'.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stacks.sections import Section

__all__ = ["TracingConfig"]


class TracingConfig(Section):
    """`eduscale:tracing`: the collector and the gateway's sampling."""

    collector_chart_version: str = "0.127.2"
    """opentelemetry-collector chart version."""
    collector_replicas: Annotated[int, Field(ge=1, le=10)] = 2
    """Collector pods (two survive one node's loss)."""
    sampling_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    """Share of requests Kong starts a trace for; the services and workers follow its
    decision (the `traceparent` sampled flag), so this is the platform's trace volume."""
