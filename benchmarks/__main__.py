"""Run the benchmarks, one suite after another, printing one table and writing JSON.

Command: `python3 -m uv run --locked --group bench python -m benchmarks [--only SUITE]
[--quick]`.

Each suite is a module with `run(quick: bool) -> list[Figure]`; suites run one after
another (never concurrently: they would measure each other), print one table and write
the figures as JSON (default `benchmarks/results.json`). Not part of the test suite.
The `http` and `pipeline` suites need PostgreSQL and Redis as the tests do
(TEST_POSTGRES_URL, TEST_REDIS_URL, whose database they flush) and the load generator
wrk (see `benchmarks/wrk.py`); README.md, section Benchmarks, says what each figure means.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from benchmarks.figures import Figure, merge_results, print_table, write_results

SUITES: dict[str, str] = {
    "preview": "benchmarks.preview",
    "http": "benchmarks.http_endpoints",
    "pipeline": "benchmarks.pipeline",
    "semantic_cache": "benchmarks.semantic_cache",
    "semantic_cache_eval": "benchmarks.semantic_cache_eval",
    "analytics": "benchmarks.analytics",
    "event_wire": "benchmarks.event_wire",
    "database_reads": "benchmarks.database_reads",
    "database_writes": "benchmarks.database_writes",
    "imports": "benchmarks.component_imports",
}
"""Suite name -> module; each module exposes `run(quick: bool) -> list[Figure]`."""


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites in turn; the exit status is 0 unless a suite crashed."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(SUITES), help="run only these suites"
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument(
        "--merge-into",
        type=Path,
        metavar="FILE",
        help="also replace this run's figures in FILE (e.g. benchmarks/baseline.json), "
        "each stamped with when it was measured; the others stay",
    )
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    for name in args.only or list(SUITES):
        print(f"== {name}", file=sys.stderr, flush=True)
        module = importlib.import_module(SUITES[name])
        figures.extend(module.run(args.quick))
    print_table(figures)
    write_results(figures, args.json)
    print(f"figures written to {args.json}", file=sys.stderr)
    if args.merge_into:
        merge_results(figures, args.merge_into)
        print(f"figures merged into {args.merge_into}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
