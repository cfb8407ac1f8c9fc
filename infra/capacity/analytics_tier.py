"""The ClickHouse tier: its servers (shards x replicas), Keeper, and their volumes.

ClickHouse does not autoscale: the stack fixes its size (`eduscale:analytics`), and the
plan checks that size against the learning events the workload writes. Every replica of a
shard holds the shard's share of the raw events kept for `rawEventsTtlDays`, at the
measured compressed size per event, with room for merges. Events per day come from the
peak rate brought back to the busy-hour average (/ `peak_factor`), over the busy hours of
an active day, with the active days spread over the calendar (the TTL counts calendar
days). The servers and Keeper members are placed on nodes like every other pod, and their
volumes are billed as gp3.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.capacity.pods import WorkloadPods, cpu_cores, memory_mib
from infra.capacity.requirement import Requirement, ceil_div
from infra.capacity.traffic import Traffic
from stacks.config import StackConfig

__all__ = ["DAYS_PER_MONTH", "AnalyticsTier", "events_per_day", "size_analytics"]

DAYS_PER_MONTH = 365.25 / 12
"""Calendar days in an average month."""
_SECONDS_PER_HOUR = 3600
_BYTES_PER_GIB = 1024**3


@dataclass(frozen=True)
class AnalyticsTier:
    """The ClickHouse pods and Keeper members the stack runs, and their volume sizes."""

    servers: WorkloadPods
    keepers: WorkloadPods
    server_volume_gb: int
    keeper_volume_gb: int


def events_per_day(traffic: Traffic) -> float:
    """Learning events written on an average calendar day."""
    usage = traffic.model.usage
    average = traffic.events / traffic.model.peak_factor
    active_day = average * _SECONDS_PER_HOUR * usage.busy_hours_per_day
    return active_day * usage.active_days_per_month / DAYS_PER_MONTH


def size_analytics(
    traffic: Traffic, config: StackConfig
) -> tuple[list[Requirement], AnalyticsTier]:
    """The storage requirement of a ClickHouse replica, and the tier's pods."""
    analytics = config.analytics
    model = traffic.model.analytics
    daily = events_per_day(traffic)
    stored_gib = daily * analytics.raw_events_ttl_days * model.compressed_bytes_per_event
    stored_gib /= _BYTES_PER_GIB
    per_replica = stored_gib / analytics.shards / model.disk_utilisation
    needed = ceil_div(per_replica, 1)
    requirement = Requirement(
        "analytics",
        "clickhouse GB per replica",
        needed,
        analytics.storage_gb,
        "eduscale:analytics.storageGb",
        f"{daily / 1e6:,.0f} M events a day x {analytics.raw_events_ttl_days} days x "
        f"{model.compressed_bytes_per_event:g} B = {stored_gib:,.0f} GiB / "
        f"{analytics.shards} shards / {model.disk_utilisation:g} fill",
        remedy=f"raise eduscale:analytics.storageGb to at least {needed}, or add shards "
        "(eduscale:analytics.shards) or shorten rawEventsTtlDays",
    )
    tier = AnalyticsTier(
        servers=WorkloadPods(
            name="clickhouse",
            pods=analytics.shards * analytics.replicas_per_shard,
            cpu=cpu_cores(analytics.cpu),
            memory_mib=memory_mib(analytics.memory),
            interruptible=False,
        ),
        keepers=WorkloadPods(
            name="clickhouse keeper",
            pods=analytics.keeper_nodes,
            cpu=cpu_cores(analytics.keeper_cpu),
            memory_mib=memory_mib(analytics.keeper_memory),
            interruptible=False,
        ),
        server_volume_gb=analytics.storage_gb,
        keeper_volume_gb=analytics.keeper_storage_gb,
    )
    return [requirement], tier
