"""The Pulumi program: what `pulumi up` runs and what `eduscale preview` records."""

from __future__ import annotations

from stacks.config import load_secrets, load_stack_config
from stacks.platform import build_platform, export_outputs

__all__ = ["program"]


def program() -> None:
    """Validate this stack's config, then declare the platform and its outputs."""
    config = load_stack_config()
    secrets = load_secrets()
    export_outputs(build_platform(config, secrets))
