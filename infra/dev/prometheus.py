"""The local Prometheus of `eduscale dev up`: every process scraped, the cluster's alert rules.

The Debian `prometheus` package's server, when it is installed: a real Prometheus, not
a look-alike, so the queries, the rules (`observability/rules.yml`, the file the cluster
loads) and the alerts an operator will meet in production can be tried here. Its config
is generated from the processes `dev up` started, one job per process (named as the
cluster's scrape jobs are: auth, course, ai-orchestrator, generation-worker, ...), with a
short scrape interval so a few requests show within seconds. Its storage is a temporary
directory removed when it stops: local metrics are for looking, not for keeping.

Locally the orchestrator and both AI workers share one process (see ai_process.py), so
the three targets of that process expose the same samples; in the cluster each is a pod.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from contracts.platform_metrics import METRICS_PATH

__all__ = [
    "RULES_FILE",
    "SCRAPE_INTERVAL_SECONDS",
    "prometheus_binary",
    "prometheus_command",
    "prometheus_config",
]

SCRAPE_INTERVAL_SECONDS = 2
"""Short, so the first requests show at once; a few local processes can afford it."""

RULES_FILE = Path(__file__).resolve().parents[2] / "observability" / "rules.yml"
"""The alert rules the cluster's PrometheusRule holds, loaded as they are."""

MISSING = (
    "Prometheus is not installed, so no metrics are scraped locally (everything else runs); "
    "install it with `sudo apt-get install prometheus` (Debian/Ubuntu) or put a "
    "`prometheus` binary on PATH, and restart"
)
"""What `dev up` says, and then carries on, when there is no binary."""


def prometheus_binary() -> str | None:
    """The `prometheus` server on PATH (Debian's package puts it in /usr/bin), if any."""
    return shutil.which("prometheus")


def prometheus_config(
    targets: Mapping[str, Sequence[str]], rules: Sequence[Path] = (RULES_FILE,)
) -> str:
    """Prometheus's configuration (JSON, which is YAML) scraping `targets`: job -> host:port."""
    interval = f"{SCRAPE_INTERVAL_SECONDS}s"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rules if path.is_file()],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": METRICS_PATH,
                "static_configs": [{"targets": list(addresses), "labels": {"pod": f"local-{job}"}}],
            }
            for job, addresses in targets.items()
        ],
    }
    return json.dumps(config, indent=2)


def prometheus_command(binary: str, config: Path, storage: Path, listen: str) -> list[str]:
    """The server's command line: this config, this storage, listening on `listen`."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address={listen}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
        "--log.format=json",
    ]
