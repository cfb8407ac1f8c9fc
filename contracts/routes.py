"""The platform's public route table: which URL paths reach which service.

Typed data in one place, imported by the Kong configuration the stacks deploy and by the
local gateway of `eduscale dev up`, so the two cannot route differently. This module
imports nothing from Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ROUTES", "Route"]


@dataclass(frozen=True)
class Route:
    """Requests whose path starts with one of `paths` go to `service`."""

    name: str
    paths: tuple[str, ...]
    service: str
    rate_limit: Literal["standard", "strict"] = "standard"
    """`strict` for endpoints attackers hammer (login, registration)."""

    def __post_init__(self) -> None:
        for path in self.paths:
            if not path.startswith("/") or path.endswith("/"):
                raise ValueError(f"route {self.name}: path {path!r} must start and not end with /")


ROUTES: tuple[Route, ...] = (
    Route("auth", ("/auth",), "auth", rate_limit="strict"),
    Route("courses", ("/courses", "/quizzes"), "course"),
    Route("ai", ("/ai",), "ai-orchestrator"),
)
"""Every public route of the platform."""
