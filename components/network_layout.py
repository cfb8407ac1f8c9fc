"""How a VPC's address space is carved into per-AZ subnets.

Kept apart from the `Network` component so the arithmetic can be checked (and reused by
the stack config's validation) without a Pulumi engine.

The VPC range is cut into eight equal blocks. Blocks 0..n-1 become the private subnets,
one per availability zone: EKS's VPC CNI gives every pod a VPC address, so the private
side needs nearly all of the space (a /16 gives each AZ a /19, 8,190 addresses). Block 7
is cut into eight again for the public subnets, which hold only load balancer and NAT
interfaces (a /16 gives each a /22). Block 6 (and any unused private block) stays free
for later tiers. The same CIDR and AZ count always give the same layout, so a change of
code never renumbers a deployed network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = [
    "MAX_AZ_COUNT",
    "MAX_VPC_PREFIX",
    "MIN_AZ_COUNT",
    "MIN_VPC_PREFIX",
    "SubnetPair",
    "subnet_layout",
    "validate_vpc_cidr",
]

MIN_AZ_COUNT = 2
"""EKS requires subnets in at least two availability zones."""
MAX_AZ_COUNT = 6
"""Six private blocks fit beside the reserved and the public block; no region has more AZs."""
MIN_VPC_PREFIX = 16
"""AWS does not allow a VPC larger than a /16."""
MAX_VPC_PREFIX = 20
"""A /20 still leaves every AZ a /23 private subnet (510 pod addresses) and a /26 public one."""

_PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


@dataclass(frozen=True)
class SubnetPair:
    """The public and private subnet CIDRs of one availability zone."""

    public: str
    private: str


def validate_vpc_cidr(cidr: str) -> ipaddress.IPv4Network:
    """Parse `cidr` and check it can host our layout; raise `ValueError` saying what is allowed."""
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"{cidr!r} is not an IPv4 network in CIDR notation such as 10.0.0.0/16 ({exc})"
        ) from None
    if not MIN_VPC_PREFIX <= network.prefixlen <= MAX_VPC_PREFIX:
        raise ValueError(
            f"{cidr} has prefix /{network.prefixlen}; allowed is /{MIN_VPC_PREFIX} to "
            f"/{MAX_VPC_PREFIX}"
        )
    if not any(network.subnet_of(private) for private in _PRIVATE_RANGES):
        allowed = ", ".join(str(private) for private in _PRIVATE_RANGES)
        raise ValueError(f"{cidr} is not a private (RFC 1918) range; allowed: {allowed}")
    return network


def subnet_layout(cidr: str, az_count: int) -> list[SubnetPair]:
    """Return one `SubnetPair` per availability zone, in AZ order."""
    if not MIN_AZ_COUNT <= az_count <= MAX_AZ_COUNT:
        raise ValueError(f"az_count is {az_count}; allowed is {MIN_AZ_COUNT} to {MAX_AZ_COUNT}")
    network = validate_vpc_cidr(cidr)
    blocks = list(network.subnets(prefixlen_diff=3))
    public_blocks = list(blocks[-1].subnets(prefixlen_diff=3))
    return [
        SubnetPair(public=str(public_blocks[az]), private=str(blocks[az])) for az in range(az_count)
    ]
