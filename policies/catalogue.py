"""Every rule of the pack, in one list: what `__main__.py` and `eduscale policy` both load."""

from pulumi_policy import Policy

from policies import database

__all__ = ["ALL_POLICIES"]

ALL_POLICIES: list[Policy] = [
    *database.POLICIES,
]
