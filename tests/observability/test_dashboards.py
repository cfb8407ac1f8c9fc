"""The dashboards: every query is PromQL Prometheus accepts, and reads only metrics the
platform exports (the contract) or kube-state-metrics; every board the issue asks for exists."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.dashboards import KUBE_STATE_METRICS, dashboards
from contracts.platform_metrics import METRICS

SERVICES = ("auth", "course", "ai-orchestrator")
BOARDS = dashboards(SERVICES)
QUERIES = [query for board in BOARDS for query in board.queries()]
PROMTOOL = shutil.which("promtool")
_FUNCTIONS = {"sum", "rate", "increase", "max", "histogram_quantile", "by", "le"}


def metric_names(query: str) -> set[str]:
    """Identifiers in `query` that are series names (not functions, labels or keywords)."""
    without_labels = re.sub(r"\{[^}]*\}|by \([^)]*\)|\[[^\]]*\]", " ", query)
    names = set(re.findall(r"[a-z_:][a-z0-9_:]*", without_labels))
    return {n for n in names if "_" in n} - _FUNCTIONS


def test_there_is_a_board_for_each_signal_the_operators_watch():
    titles = {board.title for board in BOARDS}
    assert titles == {
        "eduscale / golden signals",
        "eduscale / Kafka",
        "eduscale / AI",
        "eduscale / capacity",
    }
    golden = next(b for b in BOARDS if b.uid == "eduscale-golden-signals")
    for service in SERVICES:
        assert any(p.title.startswith(f"{service}: ") for p in golden.panels)
    panel_titles = " ".join(p.title for b in BOARDS for p in b.panels)
    for topic in ("consumer lag", "dead-letter", "breaker", "hit rate", "maximum"):
        assert topic in panel_titles


def test_every_query_reads_only_known_metrics():
    known = {m.series for m in METRICS} | set(KUBE_STATE_METRICS)
    known |= {m.part(p) for m in METRICS if m.kind == "histogram" for p in ("bucket", "count")}
    unknown = {name for query in QUERIES for name in metric_names(query)} - known
    assert not unknown, unknown


def test_the_metric_name_check_finds_a_typo():
    assert metric_names('sum(rate(http_server_request_duraton_seconds_count{job="x"}[5m]))') == {
        "http_server_request_duraton_seconds_count"
    }


@pytest.mark.server  # promtool runs as a process of its own
@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_prometheus_parses_every_query(tmp_path: Path):
    rules = [{"record": f"dashboard:query:{n}", "expr": q} for n, q in enumerate(QUERIES)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(path.read_text().replace("sum by (le)", "sum by (le", 1))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_panels_are_laid_out_without_overlap():
    for board in BOARDS:
        cells = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board.model()["panels"]]
        assert len(cells) == len(set(cells)), board.uid
