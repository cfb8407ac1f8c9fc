"""`eduscale capacity`: the plan for N users, printed, and checked against a stack."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infra.capacity.paths import DEFAULT_BENCH, DEFAULT_LLM_PRICES, DEFAULT_MODEL, DEFAULT_PRICES

# The plan's modules load the stack config (and the Pulumi SDK): only when the command runs.

__all__ = ["add_capacity_command", "capacity"]

EXIT_HOLDS = 0
EXIT_SHORT = 1


def _users(text: str) -> int:
    try:
        users = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if users < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {users}")
    return users


def add_capacity_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `eduscale capacity`."""
    capacity = commands.add_parser(
        "capacity",
        help="size every tier for N active users and check a stack can hold them",
        description="Turn a workload model and measured per-core benchmark figures into "
        "pods, nodes, replicas, shards and partitions for N concurrently active users, with "
        "a monthly infrastructure cost and, apart, the monthly LLM fees, and compare them "
        "with Pulumi.<STACK>.yaml. Exits 1 naming each shortfall when the stack cannot hold "
        "the target.",
    )
    capacity.add_argument(
        "--users", type=_users, required=True, help="concurrently active users, e.g. 1000000"
    )
    capacity.add_argument("--stack", "-s", default="prod", help="stack to check (default: prod)")
    capacity.add_argument(
        "--bench",
        type=Path,
        default=DEFAULT_BENCH,
        metavar="FILE",
        help="benchmark results (`python -m benchmarks --json FILE`; default: %(default)s)",
    )
    capacity.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        metavar="FILE",
        help="workload model YAML (default: the documented infra/capacity/workload.yaml)",
    )
    capacity.add_argument(
        "--prices",
        type=Path,
        default=DEFAULT_PRICES,
        metavar="FILE",
        help="dated price table YAML (default: infra/capacity/prices.yaml)",
    )
    capacity.add_argument(
        "--llm-prices",
        type=Path,
        default=DEFAULT_LLM_PRICES,
        metavar="FILE",
        help="dated per-token LLM price table YAML (default: infra/capacity/llm_prices.yaml)",
    )
    capacity.add_argument("--json", action="store_true", help="print the plan as JSON")
    capacity.add_argument(
        "--project-dir",
        type=Path,
        metavar="DIR",
        help="directory holding Pulumi.yaml (default: the nearest one at or above .)",
    )


def capacity(args: argparse.Namespace) -> int:
    """Print the plan; exit 1 when the stack falls short of it."""
    from infra.capacity.plan import build_plan, load_inputs, load_stack_config  # noqa: PLC0415
    from infra.capacity.render import plan_json, render_plan  # noqa: PLC0415

    inputs = load_inputs(args.model, args.bench, args.prices, args.llm_prices)
    config = load_stack_config(args.stack, args.project_dir)
    plan = build_plan(args.users, args.stack, config, inputs)
    if args.json:
        print(json.dumps(plan_json(plan), indent=2))  # noqa: T201 - a command prints
    else:
        print(render_plan(plan))  # noqa: T201
    return EXIT_SHORT if plan.shortfalls else EXIT_HOLDS
