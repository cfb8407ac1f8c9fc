"""What a benchmark measures, and how a run is printed and saved.

Every figure names the reference it was measured against in the same run on the same
machine (a bare ASGI app, the broker's raw rate, the bare SDK import...), because on a
shared, noisy machine only the ratio between the two holds from one run to the next.
The JSON written here is also what `eduscale capacity --bench` reads.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "Figure", "print_table", "results_document", "write_results"]

SCHEMA_VERSION = 1
_WHOLE_NUMBERS_FROM = 100
"""Figures this large print without decimals; smaller ones keep three significant digits."""
_RATIO_DIGITS = 4
"""Significant digits of a ratio: a login at 0.0004 of the bare app is not 0."""


@dataclass(frozen=True)
class Figure:
    """One measured number; `reference` is the key of its side-by-side baseline."""

    key: str
    """Stable identifier, e.g. `course_get_cached`; capacity planning looks figures up by it."""
    label: str
    value: float
    unit: str
    """`req/s`, `jobs/s`, `msg/s`, `events/s`, `s`, `ms` or `%`."""
    reference: str | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, float | str] = field(default_factory=dict)


def _ratios(figures: list[Figure]) -> dict[str, float | None]:
    by_key = {figure.key: figure for figure in figures}
    ratios: dict[str, float | None] = {}
    for figure in figures:
        reference = by_key.get(figure.reference) if figure.reference else None
        ratios[figure.key] = (
            float(f"{figure.value / reference.value:.{_RATIO_DIGITS}g}")
            if reference and reference.value
            else None
        )
    return ratios


def _load_average() -> list[float] | None:
    """1, 5 and 15-minute load when written: how busy the machine was around the run."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def results_document(figures: list[Figure]) -> dict[str, object]:
    """The JSON document of a run: figures by key, each with its ratio to its reference."""
    ratios = _ratios(figures)
    return {
        "schema_version": SCHEMA_VERSION,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "load_average": _load_average(),
        },
        "figures": {f.key: {**asdict(f), "ratio": ratios[f.key]} for f in figures},
    }


def write_results(figures: list[Figure], path: Path) -> None:
    """Save the run where `eduscale capacity --bench` and later comparisons can read it."""
    path.write_text(json.dumps(results_document(figures), indent=2) + "\n")


def merge_results(figures: list[Figure], path: Path) -> None:
    """Replace these figures in the results file at `path`, keeping all the others.

    A suite re-run alone updates the file the capacity plan reads without pretending the
    other figures were measured again: each merged figure records, in `extra`, when it was
    measured and the machine's load then. A merged figure's reference must be merged with
    it (same run), or its ratio would compare two runs.
    """
    keys = {figure.key for figure in figures}
    for figure in figures:
        if figure.reference and figure.reference not in keys:
            raise ValueError(
                f"{figure.key}: its reference {figure.reference} is not in this run; "
                "merge both or neither"
            )
    document = json.loads(path.read_text())
    stamp: dict[str, object] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": _load_average(),
    }
    ratios = _ratios(figures)
    for figure in figures:
        merged = {**asdict(figure), "ratio": ratios[figure.key]}
        merged["extra"] = {**figure.extra, **stamp}
        document["figures"][figure.key] = merged
    path.write_text(json.dumps(document, indent=2) + "\n")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= _WHOLE_NUMBERS_FROM else f"{value:,.3g}"


def _ratio(value: float | None) -> str:
    """Two decimals, or two significant digits below 0.1 (never an exponent)."""
    if value is None:
        return ""
    if value >= 0.1 or value <= 0:  # noqa: PLR2004
        return f"{value:.2f}"
    return f"{value:.{1 - math.floor(math.log10(value))}f}"


def print_table(figures: Iterable[Figure]) -> None:
    """One line per figure: value, latency percentiles, reference and ratio."""
    figures = list(figures)
    ratios = _ratios(figures)
    header = (
        f"{'figure':<46}{'value':>12} {'unit':<9}{'p50 ms':>9}{'p99 ms':>9}  {'vs':<24}{'ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    for f in figures:
        ratio = ratios[f.key]
        print(
            f"{f.label[:45]:<46}{_number(f.value):>12} {f.unit:<9}{_number(f.p50_ms):>9}"
            f"{_number(f.p99_ms):>9}  {(f.reference or '')[:23]:<24}"
            f"{_ratio(ratio):>9}"
        )
