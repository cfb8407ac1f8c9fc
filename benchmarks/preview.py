"""How long the offline preview of a stack takes, against the bare import of the SDKs.

Each figure is the median of several runs in fresh processes, measured side by side in
the same run, so the ratio holds on a noisy machine. Usage:

    uv run python benchmarks/preview.py [--stack prod] [--runs 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.figures import Figure

IMPORT_SDKS = (
    "import pulumi, pulumi_aws, pulumi_kubernetes, pulumi_cloudflare, pulumi_random; "
    "import pulumi_aws.ec2, pulumi_aws.rds, pulumi_aws.eks, pulumi_kubernetes.apps.v1"
)


def _median_seconds(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (our own commands)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(quick: bool) -> list[Figure]:
    """The preview of the prod stack against the bare import of the Pulumi SDKs."""
    runs = 2 if quick else 5
    bare = _median_seconds([sys.executable, "-c", IMPORT_SDKS], runs)
    preview = _median_seconds(
        [sys.executable, "-m", "infra.cli", "preview", "--stack", "prod"], runs
    )
    return [
        Figure("pulumi_sdk_import", "import of the Pulumi SDKs (median)", bare, "s"),
        Figure(
            "preview_prod",
            "eduscale preview --stack prod (median)",
            preview,
            "s",
            reference="pulumi_sdk_import",
        ),
    ]


def main() -> None:
    """Measure, print a table and optionally write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bare = _median_seconds([sys.executable, "-c", IMPORT_SDKS], args.runs)
    preview = _median_seconds(
        [sys.executable, "-m", "infra.cli", "preview", "--stack", args.stack], args.runs
    )
    figures = {
        "stack": args.stack,
        "runs": args.runs,
        "sdk_import_seconds": round(bare, 3),
        "preview_seconds": round(preview, 3),
        "preview_over_import": round(preview / bare, 2),
    }
    print(f"{'measure':<32}{'median s':>10}")
    print(f"{'import of the Pulumi SDKs':<32}{bare:>10.2f}")
    print(f"{'eduscale preview --stack ' + args.stack:<32}{preview:>10.2f}")
    print(f"{'ratio':<32}{preview / bare:>10.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
