"""Rules for the messaging tier (being written)."""

from pulumi_policy import Policy

__all__ = ["POLICIES"]

POLICIES: list[Policy] = []
