import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.network_layout import subnet_layout, validate_vpc_cidr


def _networks(cidr: str, az_count: int) -> list[ipaddress.IPv4Network]:
    layout = subnet_layout(cidr, az_count)
    return [ipaddress.IPv4Network(c) for pair in layout for c in (pair.public, pair.private)]


@given(
    base=st.sampled_from(["10.0.0.0", "10.128.0.0", "172.16.0.0", "192.168.0.0"]),
    prefix=st.integers(min_value=16, max_value=20),
    az_count=st.integers(min_value=2, max_value=6),
)
def test_subnets_lie_inside_the_vpc_and_never_overlap(base: str, prefix: int, az_count: int):
    vpc = ipaddress.IPv4Network(f"{base}/{prefix}")
    networks = _networks(str(vpc), az_count)
    assert len(networks) == 2 * az_count
    assert all(n.subnet_of(vpc) for n in networks)
    for a, b in itertools.combinations(networks, 2):
        assert not a.overlaps(b), (a, b)


def test_a_16_gives_each_az_a_19_private_and_a_22_public_subnet():
    layout = subnet_layout("10.10.0.0/16", 3)
    assert [p.private for p in layout] == ["10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19"]
    assert [p.public for p in layout] == ["10.10.224.0/22", "10.10.228.0/22", "10.10.232.0/22"]


def test_adding_an_az_keeps_the_existing_subnets():
    assert subnet_layout("10.0.0.0/16", 3)[:2] == subnet_layout("10.0.0.0/16", 2)


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.0/15", "allowed is /16 to /20"),
        ("10.0.0.0/24", "allowed is /16 to /20"),
        ("8.8.0.0/16", "not a private (RFC 1918) range"),
        ("10.0.0.1/16", "not an IPv4 network"),
        ("ten/16", "not an IPv4 network"),
    ],
)
def test_unusable_vpc_ranges_are_rejected_with_what_is_allowed(cidr: str, message: str):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_vpc_cidr(cidr)


@pytest.mark.parametrize("az_count", [0, 1, 7])
def test_az_counts_outside_2_to_6_are_rejected(az_count: int):
    with pytest.raises(ValueError, match="allowed is 2 to 6"):
        subnet_layout("10.0.0.0/16", az_count)
