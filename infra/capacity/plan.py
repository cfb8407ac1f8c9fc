"""The capacity plan: every tier sized for N active users, and checked against a stack.

`build_plan` is pure: users, the workload model, the measured figures, the stack's typed
config and the price table in; a `Plan` out. Reading files is `load_inputs`'s job, so
tests (and other tools) can hand in a modified config object instead of a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.capacity.bench import BenchFigures, load_bench_figures
from infra.capacity.costs import CostLine, monthly_costs
from infra.capacity.data_tiers import DATA_FIGURES, MeasuredRates, size_data_tiers
from infra.capacity.llm import LlmPriceTable, LlmSpend, load_llm_prices, monthly_llm_spend
from infra.capacity.nodes import size_node_groups
from infra.capacity.pods import AVOIDED_FIGURE, cache_avoided_share, size_pods
from infra.capacity.prices import PriceTable, load_price_table
from infra.capacity.requirement import Requirement
from infra.capacity.traffic import Traffic, peak_traffic
from infra.capacity.workload import WorkloadModel, load_workload_model
from stacks.config import StackConfig

__all__ = ["PLAN_FIGURES", "Inputs", "Plan", "build_plan", "load_inputs", "load_stack_config"]

PLAN_FIGURES = ("generation_jobs", "outbox_relay", AVOIDED_FIGURE, *DATA_FIGURES)
"""Figures the plan reads besides those the model's endpoints name."""


@dataclass(frozen=True)
class Plan:
    """What N users need, tier by tier, and what it costs."""

    users: int
    stack: str
    traffic: Traffic
    requirements: list[Requirement]
    costs: list[CostLine]
    prices: PriceTable
    figures: BenchFigures
    llm: LlmSpend
    """The provider's fees: usage-priced, a total of their own."""

    @property
    def shortfalls(self) -> list[Requirement]:
        """The requirements the stack cannot hold."""
        return [r for r in self.requirements if r.short]

    @property
    def monthly_total(self) -> float:
        """The infrastructure: the sum of the cost lines (LLM fees apart)."""
        return sum(line.monthly for line in self.costs)


@dataclass(frozen=True)
class Inputs:
    """Everything a plan is built from, read and validated."""

    model: WorkloadModel
    figures: BenchFigures
    prices: PriceTable
    llm_prices: LlmPriceTable


def load_inputs(
    model_path: Path, bench_path: Path, prices_path: Path, llm_prices_path: Path | None = None
) -> Inputs:
    """Read the model first: it says which benchmark figures the plan needs."""
    model = load_workload_model(model_path)
    figures = load_bench_figures(bench_path, model.figure_keys() | set(PLAN_FIGURES))
    return Inputs(
        model=model,
        figures=figures,
        prices=load_price_table(prices_path),
        llm_prices=load_llm_prices()
        if llm_prices_path is None
        else load_llm_prices(llm_prices_path),
    )


def load_stack_config(stack: str, project_dir: Path | None) -> StackConfig:
    """The stack's typed config, read from Pulumi.<stack>.yaml as `eduscale preview` does."""
    from infra.stack_files import find_project_dir, load_stack  # noqa: PLC0415
    from stacks.config import parse_stack_config  # noqa: PLC0415

    files = load_stack(project_dir or find_project_dir(Path.cwd()), stack)
    return parse_stack_config(files.config)


def build_plan(users: int, stack: str, config: StackConfig, inputs: Inputs) -> Plan:
    """Size every tier for `users` active users and compare it with `config`."""
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    model, prices = inputs.model, inputs.prices
    traffic = peak_traffic(users, model)
    requirements, workloads = size_pods(traffic, inputs.figures, config)
    worker_pods = {r.item: r.needed for r in requirements if r.item.endswith("worker")}
    data_requirements, tiers = size_data_tiers(
        traffic, worker_pods, config, prices, MeasuredRates.from_figures(inputs.figures)
    )
    node_requirements, nodes = size_node_groups(
        [*workloads, *tiers.pods], config, prices, model.cluster
    )
    avoided = cache_avoided_share(inputs.figures)
    return Plan(
        users=users,
        stack=stack,
        traffic=traffic,
        requirements=[*requirements, *node_requirements, *data_requirements],
        costs=monthly_costs(nodes, tiers, config, prices),
        prices=prices,
        figures=inputs.figures,
        llm=monthly_llm_spend(traffic, config.ai.openai_model, avoided, inputs.llm_prices),
    )
