"""A plan as people read it (a table) and as machines read it (JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.capacity.plan import Plan

__all__ = ["plan_json", "render_plan"]


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def render_plan(plan: Plan) -> str:
    """The plan as text: inputs, the tier table, how each number was derived, the cost."""
    traffic, figures, prices = plan.traffic, plan.figures, plan.prices
    model = traffic.model
    cpus = figures.machine.get("cpus", "?")
    lines = [
        f"Capacity plan for {plan.users:,} concurrently active users, stack {plan.stack}",
        (
            f"  peak {traffic.total:,.0f} req/s through the gateway (x{model.peak_factor:g} "
            f"the busy-hour average), {traffic.enqueued('generation'):,.1f} generations/s, "
            f"{traffic.enqueued('document'):,.2f} PDF uploads/s"
        ),
        f"  pods sized at each HPA's CPU target with x{model.headroom:g} headroom",
        (
            f"  per-core figures: {_shown(figures.path)}, measured {figures.measured_at} "
            f"on {cpus} CPU(s)"
        ),
        "",
    ]
    rows = [
        [
            r.tier,
            r.item,
            f"{r.needed:,}",
            "-" if r.configured is None else f"{r.configured:,}",
            "SHORT" if r.short else "ok",
            r.config_key,
        ]
        for r in plan.requirements
    ]
    lines += _table(["tier", "item", "needed", "stack", "status", "config key"], rows, {2, 3})
    lines += ["", "How each number was derived:"]
    lines += [f"  {r.item}: {r.basis}" for r in plan.requirements]
    cost_rows = [[c.item, c.quantity, f"{c.monthly:,.0f}"] for c in plan.costs]
    cost_rows.append(["infrastructure total", "", f"{plan.monthly_total:,.0f}"])
    lines += [""]
    lines += _table(["monthly infrastructure cost", "quantity", prices.currency], cost_rows, {2})
    lines += [
        (
            f"  {prices.region} on-demand list prices as of {prices.as_of.isoformat()}; an "
            "upper bound (peak sizes all month, spot priced on demand, no data transfer or "
            "LLM fees)"
        ),
    ]
    lines += ["", *_llm_lines(plan)]
    lines += [
        "",
        (
            f"Monthly totals ({prices.currency}): infrastructure {plan.monthly_total:,.0f}; "
            f"LLM {plan.llm.monthly_total:,.0f} (kept apart: usage-priced)"
        ),
    ]
    shortfalls = plan.shortfalls
    if shortfalls:
        lines += ["", f"The stack cannot hold the target: {len(shortfalls)} shortfall(s):"]
        lines += [f"  - {r.shortfall()}" for r in shortfalls]
    else:
        lines += ["", f"The stack holds {plan.users:,} active users."]
    return "\n".join(lines)


def _llm_lines(plan: Plan) -> list[str]:
    llm = plan.llm
    rows = [
        [line.item, f"{line.million_tokens:,.0f}", f"{line.monthly:,.0f}"] for line in llm.lines
    ]
    rows.append(["LLM total", "", f"{llm.monthly_total:,.0f}"])
    lines = _table(["monthly LLM fees", "M tokens", llm.prices.currency], rows, {1, 2})
    usage = plan.traffic.model.usage
    lines += [
        (
            f"  {llm.jobs / 1e6:,.1f} M generation jobs a month ({usage.busy_hours_per_day:g} "
            f"busy hours x {usage.active_days_per_month:g} days), {llm.avoided_share:.1%} "
            f"answered by the semantic cache (measured) -> {llm.chat_calls / 1e6:,.1f} M chat "
            f"calls; {llm.documents / 1e3:,.0f} k documents indexed"
        ),
        (f"  per-token list prices as of {llm.prices.as_of.isoformat()} ({llm.prices.source})"),
    ]
    return lines


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready document."""
    traffic = plan.traffic
    return {
        "users": plan.users,
        "stack": plan.stack,
        "holds": not plan.shortfalls,
        "peak_requests_per_second": {
            "total": round(traffic.total, 1),
            **{name: round(rate, 2) for name, rate in traffic.per_endpoint.items()},
        },
        "requirements": [
            {
                "tier": r.tier,
                "item": r.item,
                "needed": r.needed,
                "configured": r.configured,
                "config_key": r.config_key,
                "short": r.short,
                "basis": r.basis,
            }
            for r in plan.requirements
        ],
        "shortfalls": [r.shortfall() for r in plan.shortfalls],
        "monthly_totals": {
            "infrastructure": round(plan.monthly_total, 2),
            "llm": round(plan.llm.monthly_total, 2),
        },
        "monthly_cost": {
            "currency": plan.prices.currency,
            "region": plan.prices.region,
            "prices_as_of": plan.prices.as_of.isoformat(),
            "total": round(plan.monthly_total, 2),
            "lines": [
                {"item": c.item, "quantity": c.quantity, "monthly": round(c.monthly, 2)}
                for c in plan.costs
            ],
        },
        "llm_monthly_cost": {
            "currency": plan.llm.prices.currency,
            "prices_as_of": plan.llm.prices.as_of.isoformat(),
            "prices_source": plan.llm.prices.source,
            "total": round(plan.llm.monthly_total, 2),
            "generation_jobs": round(plan.llm.jobs),
            "chat_calls": round(plan.llm.chat_calls),
            "semantic_cache_avoided_share": round(plan.llm.avoided_share, 4),
            "documents_indexed": round(plan.llm.documents),
            "lines": [
                {
                    "item": line.item,
                    "million_tokens": round(line.million_tokens, 3),
                    "monthly": round(line.monthly, 2),
                }
                for line in plan.llm.lines
            ],
        },
        "figures": {
            "file": str(plan.figures.path),
            "measured_at": plan.figures.measured_at,
            "machine": dict(plan.figures.machine),
        },
    }


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
