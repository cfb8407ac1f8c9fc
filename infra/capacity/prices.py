"""The dated price table: what each instance type costs per hour, and what it holds.

Prices change; a plan is only as current as its table, so the table carries its date
(`as_of`) and the plan prints it. Instance facts (vCPUs, memory, pods per node, partitions
per broker) sit beside the prices because the plan needs both for the same type, and a
stack that names a type the table does not know is refused with the list it does know.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from infra.capacity.errors import CapacityInputError, load_yaml_input
from infra.capacity.paths import DEFAULT_PRICES

__all__ = ["DEFAULT_PRICES", "PriceTable", "load_price_table"]


Price = Annotated[float, Field(ge=0)]
_Entry = TypeVar("_Entry")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ec2Type(_Strict):
    """A node's hourly price and the resources the kubelet can hand to pods."""

    hourly: Price
    vcpu: Annotated[int, Field(ge=1)]
    memory_gib: Annotated[float, Field(gt=0)]
    max_pods: Annotated[int, Field(ge=1)]


class RdsType(_Strict):
    """A PostgreSQL instance's hourly price and vCPUs."""

    hourly: Price
    vcpu: Annotated[int, Field(ge=1)]


class CacheNodeType(_Strict):
    """A Redis node's hourly price, vCPUs and memory."""

    hourly: Price
    vcpu: Annotated[int, Field(ge=1)]
    memory_gib: Annotated[float, Field(gt=0)]


class BrokerType(_Strict):
    """An MSK broker's hourly price and its recommended partition replicas."""

    hourly: Price
    max_partitions: Annotated[int, Field(ge=1)]


class PriceTable(_Strict):
    """On-demand prices for one region at one date."""

    as_of: dt.date
    region: str
    currency: str
    hours_per_month: Annotated[float, Field(gt=0)]
    sources: dict[str, str]
    ec2: dict[str, Ec2Type]
    rds: dict[str, RdsType]
    rds_storage_gb_month: Price
    elasticache: dict[str, CacheNodeType]
    msk: dict[str, BrokerType]
    msk_storage_gb_month: Price
    eks_cluster_hourly: Price
    nat_gateway_hourly: Price
    alb_hourly: Price
    ebs_gb_month: Price

    def node(self, instance_type: str) -> Ec2Type:
        """The EC2 type, or an error naming the known ones."""
        return _lookup(self.ec2, instance_type, "ec2")

    def database(self, instance_class: str) -> RdsType:
        """The RDS instance class, or an error naming the known ones."""
        return _lookup(self.rds, instance_class, "rds")

    def cache_node(self, node_type: str) -> CacheNodeType:
        """The ElastiCache node type, or an error naming the known ones."""
        return _lookup(self.elasticache, node_type, "elasticache")

    def broker(self, instance_type: str) -> BrokerType:
        """The MSK broker type, or an error naming the known ones."""
        return _lookup(self.msk, instance_type, "msk")


def _lookup(table: dict[str, _Entry], name: str, section: str) -> _Entry:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise CapacityInputError(
            f"the price table has no {section} entry for {name!r} (known: {known}); add it "
            f"to the `{section}:` section of the price table with its price and size"
        ) from None


def load_price_table(path: Path = DEFAULT_PRICES) -> PriceTable:
    """Read and validate a price table; `CapacityInputError` says what is wrong."""
    return load_yaml_input(path, "price table", PriceTable)
