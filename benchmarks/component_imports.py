"""What importing our components costs a stack, against the bare import of the Pulumi SDK.

Each figure is the median wall time of a fresh interpreter running one import statement,
measured side by side with `import pulumi` in the same run. `import components` loads
nothing until a name is read; each component loads the provider SDKs it uses; only `Cdn`
and `OriginAuthentication` load the Cloudflare SDK at import (`LoadBalancer` loads it
when it creates its DNS records). The plugin figure is what `pulumi package add` and
every foreign stack's `Construct` wait for before the plugin answers. Usage:

    uv run python -m benchmarks --only imports [--quick]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.figures import Figure

_PROJECT_DIR = Path(__file__).resolve().parent.parent

_STATEMENTS: list[tuple[str, str, str]] = [
    ("import_components", "import components", "import components"),
    (
        "import_data_and_compute",
        "Network, Database, Microservice, Worker, VectorStore",
        "from components import Network, Database, Microservice, Worker, VectorStore",
    ),
    ("import_load_balancer", "import components.load_balancer", "import components.load_balancer"),
    ("import_cdn", "import components.cdn (Cloudflare SDK)", "import components.cdn"),
    (
        "import_plugin",
        "import infra.component_provider (plugin)",
        "import infra.component_provider",
    ),
]


def _median_seconds(statement: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 (our own interpreter and statement)
            [sys.executable, "-c", statement], check=True, capture_output=True, cwd=_PROJECT_DIR
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(quick: bool) -> list[Figure]:
    """Each import against `import pulumi`, in fresh interpreters."""
    runs = 1 if quick else 5
    figures = [
        Figure(
            "import_pulumi", "import pulumi (median)", _median_seconds("import pulumi", runs), "s"
        )
    ]
    figures += [
        Figure(
            key,
            f"{label} (median)",
            _median_seconds(statement, runs),
            "s",
            reference="import_pulumi",
        )
        for key, label, statement in _STATEMENTS
    ]
    return figures
