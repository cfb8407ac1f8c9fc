"""The measured per-core figures the plan scales from: a `python -m benchmarks` JSON file.

Only the figures' values are read (req/s or jobs/s of ONE server process, which the
benchmarks pin to one core); the rest of the document (machine, latencies, ratios) is
printed back so a plan says which run it stands on. A figure the model needs but the
file lacks is an error naming the figure and the figures the file has: a plan silently
built on a default would look measured and not be.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.capacity.errors import CapacityInputError
from infra.capacity.paths import DEFAULT_BENCH

__all__ = ["DEFAULT_BENCH", "SCHEMA_VERSION", "BenchFigures", "load_bench_figures"]


SCHEMA_VERSION = 1
"""The `schema_version` of benchmarks/figures.py `results_document` this reader knows."""


@dataclass(frozen=True)
class BenchFigures:
    """Figure key -> measured value, and where and when it was measured."""

    path: Path
    measured_at: str
    machine: Mapping[str, Any]
    values: Mapping[str, float]
    units: Mapping[str, str]

    def value(self, key: str) -> float:
        """One figure's value (presence is checked when the file is loaded)."""
        return self.values[key]


def load_bench_figures(path: Path, required: Iterable[str]) -> BenchFigures:
    """Read a results file and check it has every `required` figure, each positive."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise CapacityInputError(
            f"no benchmark results at {path}; run `python -m benchmarks --json {path}` "
            "or pass --bench with a results file"
        ) from None
    except json.JSONDecodeError as exc:
        raise CapacityInputError(f"benchmark results {path} are not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("figures"), dict):
        raise CapacityInputError(
            f"benchmark results {path}: expected the `python -m benchmarks` format, an object "
            'with "figures": {key: {"value": ..., "unit": ...}}'
        )
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CapacityInputError(
            f"benchmark results {path}: schema_version {version!r} is not supported "
            f"(this reader knows {SCHEMA_VERSION})"
        )
    figures: dict[str, Any] = document["figures"]
    missing = sorted(set(required) - set(figures))
    if missing:
        raise CapacityInputError(
            f"benchmark results {path} lack figure(s) the plan needs: {', '.join(missing)} "
            f"(the file has: {', '.join(sorted(figures)) or 'none'}); run the benchmark "
            "suites that measure them"
        )
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    for key, figure in figures.items():
        value = figure.get("value") if isinstance(figure, dict) else None
        if key in set(required) and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise CapacityInputError(
                f"benchmark results {path}: figure {key} has value {value!r}; expected a "
                "positive number (requests or jobs per second of one process)"
            )
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = float(value)
            units[key] = str(figure.get("unit", ""))
    return BenchFigures(
        path=path,
        measured_at=_measured_between(document, figures, set(required)),
        machine=document.get("machine") or {},
        values=values,
        units=units,
    )


def _measured_between(
    document: Mapping[str, Any], figures: Mapping[str, Any], required: set[str]
) -> str:
    """When the figures the plan reads were measured, earliest to latest.

    A suite re-run and merged into the file (`python -m benchmarks --merge-into`) carries
    its own `extra.measured_at`; the others date from the file's run.
    """
    run = str(document.get("measured_at", "unknown"))
    dates = {
        str(figure.get("extra", {}).get("measured_at", run))
        for key, figure in figures.items()
        if key in required and isinstance(figure, dict)
    }
    dates = dates or {run}
    return min(dates) if len(dates) == 1 else f"{min(dates)} to {max(dates)}"
