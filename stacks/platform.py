"""The whole platform, composed from the typed stack config.

One function builds every tier and wires the real outputs of one into the next, so the
same topology is deployed by `pulumi up` and recorded by `eduscale preview`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.network import Network
from stacks.config import StackConfig, StackSecrets

__all__ = ["Platform", "build_platform"]


@dataclass(frozen=True)
class Platform:
    """The components of one deployed platform."""

    network: Network


def build_platform(config: StackConfig, secrets: StackSecrets) -> Platform:
    """Declare every tier of the platform for `config`."""
    del secrets  # consumed by the service tiers
    network = Network(
        "network",
        {
            "cidr_block": config.network.cidr,
            "az_count": config.network.az_count,
            "nat_per_az": config.network.nat_per_az,
            "flow_log_retention_days": config.network.flow_log_retention_days,
        },
    )
    return Platform(network=network)


def export_outputs(platform: Platform) -> None:
    """The stack outputs an operator needs to reach and connect to the platform."""
    pulumi.export("vpcId", platform.network.vpc_id)
    pulumi.export("availabilityZones", platform.network.azs)
    pulumi.export("privateSubnetIds", platform.network.private_subnet_ids)
    pulumi.export("publicSubnetIds", platform.network.public_subnet_ids)
