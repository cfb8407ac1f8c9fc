"""One line of a capacity plan: what a tier needs, what the stack allows, and which key."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Requirement", "ceil_div"]


@dataclass(frozen=True)
class Requirement:
    """`needed` instances of `item` in `tier`, against the stack's `configured` ceiling."""

    tier: str
    """`pods`, `nodes`, `database`, `cache`, `kafka` or `vector store`."""
    item: str
    needed: int
    configured: int | None
    """The stack's value at `config_key` (`None`: no stack to compare with)."""
    config_key: str
    basis: str
    """How `needed` was derived, in numbers a reviewer can check by hand."""
    remedy: str | None = None
    """What to change when the key is not a count (an instance type, say)."""

    @property
    def short(self) -> bool:
        """Whether the stack cannot hold what the plan needs."""
        return self.configured is not None and self.configured < self.needed

    def shortfall(self) -> str:
        """One line naming the tier, the numbers and the key to change."""
        fix = self.remedy or f"raise {self.config_key} to at least {self.needed}"
        allowed = f"the stack allows {self.configured}"
        return f"{self.tier} / {self.item}: needs {self.needed}, {allowed}; {fix}"


def ceil_div(amount: float, per_unit: float) -> int:
    """Units of `per_unit` that hold `amount` (at least 0), robust to float noise."""
    if amount <= 0:
        return 0
    return max(1, math.ceil(round(amount / per_unit, 9)))
