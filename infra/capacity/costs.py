"""The plan's monthly cost at on-demand list prices, from the dated price table.

An upper bound on purpose: the plan's peak sizes run all month (the HPA scales down off
peak), spot node groups are priced on demand (spot is typically far cheaper, but not
guaranteed), and traffic-priced items (data transfer, NAT and ALB per-GB or per-LCU
charges, S3, CloudWatch) are left out: they depend on bytes, not sizes. The LLM provider's
fees depend on tokens: they are a separate total (llm.py), never added to this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.capacity.data_tiers import DataTiers
from infra.capacity.nodes import GroupNodes
from infra.capacity.prices import PriceTable
from stacks.config import StackConfig

__all__ = ["CostLine", "monthly_costs"]


@dataclass(frozen=True)
class CostLine:
    """One billed item: what it is, how many, and its monthly cost."""

    item: str
    quantity: str
    monthly: float


def monthly_costs(
    nodes: list[GroupNodes], tiers: DataTiers, config: StackConfig, prices: PriceTable
) -> list[CostLine]:
    """Monthly on-demand cost of every sized item of the plan."""
    hours = prices.hours_per_month
    lines = [CostLine("EKS control plane", "1", prices.eks_cluster_hourly * hours)]
    for group in nodes:
        price = prices.node(group.instance_type).hourly
        spot = " (spot group, priced on demand)" if group.group.capacity_type == "SPOT" else ""
        lines.append(
            CostLine(
                f"nodes: {group.group.name}{spot}",
                f"{group.nodes} x {group.instance_type}",
                group.nodes * price * hours,
            )
        )
    store = config.vector_store
    lines.append(
        CostLine(
            "qdrant volumes (gp3)",
            f"{tiers.vector_pods.pods} x {store.storage_gb} GB",
            tiers.vector_pods.pods * store.storage_gb * prices.ebs_gb_month,
        )
    )
    analytics = tiers.analytics
    lines.append(
        CostLine(
            "clickhouse volumes (gp3)",
            f"{analytics.servers.pods} x {analytics.server_volume_gb} GB",
            analytics.servers.pods * analytics.server_volume_gb * prices.ebs_gb_month,
        )
    )
    lines.append(
        CostLine(
            "clickhouse keeper volumes (gp3)",
            f"{analytics.keepers.pods} x {analytics.keeper_volume_gb} GB",
            analytics.keepers.pods * analytics.keeper_volume_gb * prices.ebs_gb_month,
        )
    )
    database = config.database
    instance = prices.database(database.instance_class)
    writers = 2 if database.multi_az else 1
    lines.append(
        CostLine(
            "RDS primary" + (" (Multi-AZ)" if database.multi_az else ""),
            f"{writers} x {database.instance_class}",
            writers * instance.hourly * hours,
        )
    )
    replica_class = database.replica_class
    lines.append(
        CostLine(
            "RDS read replicas",
            f"{tiers.read_replicas} x {replica_class}",
            tiers.read_replicas * prices.database(replica_class).hourly * hours,
        )
    )
    lines.append(
        CostLine(
            "RDS storage",
            f"{database.allocated_storage_gb} GB x {tiers.read_replicas + writers}",
            database.allocated_storage_gb
            * (tiers.read_replicas + writers)
            * prices.rds_storage_gb_month,
        )
    )
    cache = config.cache
    cache_nodes = tiers.cache_shards * (1 + cache.replicas_per_shard)
    lines.append(
        CostLine(
            "ElastiCache nodes",
            f"{cache_nodes} x {cache.node_type}",
            cache_nodes * prices.cache_node(cache.node_type).hourly * hours,
        )
    )
    kafka = config.kafka
    lines.append(
        CostLine(
            "MSK brokers",
            f"{tiers.brokers} x {kafka.broker_instance_type}",
            tiers.brokers * prices.broker(kafka.broker_instance_type).hourly * hours,
        )
    )
    lines.append(
        CostLine(
            "MSK storage",
            f"{tiers.brokers} x {kafka.volume_size_gb} GB",
            tiers.brokers * kafka.volume_size_gb * prices.msk_storage_gb_month,
        )
    )
    nats = config.network.az_count if config.network.nat_per_az else 1
    lines.append(
        CostLine("NAT gateways (hourly)", str(nats), nats * prices.nat_gateway_hourly * hours)
    )
    lines.append(CostLine("ALB (hourly)", "1", prices.alb_hourly * hours))
    return lines
