"""Where the plan's inputs live by default (importable without loading any of them)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_BENCH", "DEFAULT_LLM_PRICES", "DEFAULT_MODEL", "DEFAULT_PRICES"]

_HERE = Path(__file__).resolve().parent

DEFAULT_MODEL = _HERE / "workload.yaml"
"""The documented workload model."""
DEFAULT_PRICES = _HERE / "prices.yaml"
"""The dated price table."""
DEFAULT_LLM_PRICES = _HERE / "llm_prices.yaml"
"""The dated per-token price table of the LLM provider."""
DEFAULT_BENCH = _HERE.parents[1] / "benchmarks" / "baseline.json"
"""The committed reference run (written by `python -m benchmarks --json ...`)."""
