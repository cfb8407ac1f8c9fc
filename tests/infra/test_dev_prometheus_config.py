"""The configuration `dev up` gives its Prometheus, checked by Prometheus's own promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.dev.prometheus import RULES_FILE, SCRAPE_INTERVAL_SECONDS, prometheus_config

PROMTOOL = shutil.which("promtool")
TARGETS = {"auth": ["127.0.0.1:4001"], "generation-worker": ["127.0.0.1:4002"]}


def test_every_process_is_a_job_scraped_at_metrics_with_the_cluster_rules() -> None:
    config = json.loads(prometheus_config(TARGETS))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(TARGETS)
    assert jobs["auth"]["metrics_path"] == "/metrics"
    assert jobs["auth"]["static_configs"][0]["targets"] == ["127.0.0.1:4001"]
    assert config["global"]["scrape_interval"] == f"{SCRAPE_INTERVAL_SECONDS}s"
    assert config["rule_files"] == [str(RULES_FILE)]
    assert RULES_FILE.is_file()


@pytest.mark.server  # runs promtool, a process of its own
@pytest.mark.skipif(PROMTOOL is None, reason="the prometheus package is absent")
def test_promtool_accepts_the_config_and_its_rules(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(TARGETS))
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr
