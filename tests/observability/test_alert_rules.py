"""The alert rules: generated file current, valid for Prometheus, and each alert unit-tested.

`promtool` (Debian's `prometheus` package; .ci/run installs it) checks the rule file and
runs observability/rules.test.yml, where a poison message makes the DLQ alert fire.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_DIR

from components.alert_rules import RUNBOOKS, alerts, rule_groups
from scripts import alert_rules

OBSERVABILITY = PROJECT_DIR / "observability"
PROMTOOL = shutil.which("promtool")


def promtool(*args: str, cwd: Path = OBSERVABILITY) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_rule_file_is_generated_from_the_code():
    assert alert_rules.main(["--check"]) == 0, "run python -m scripts.alert_rules"


def test_a_stale_rule_file_is_reported_and_rewritten(tmp_path: Path):
    stale = tmp_path / "rules.yml"
    stale.write_text("groups: []\n")
    assert alert_rules.main(["--check"], rules=stale) == 1
    assert alert_rules.main([], rules=stale) == 0
    assert yaml.safe_load(stale.read_text()) == {"groups": rule_groups()}


@pytest.mark.server  # promtool runs as a process of its own
@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_prometheus_accepts_the_rule_file():
    result = promtool("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.server  # promtool runs as a process of its own
@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_every_rule_unit_test_passes():
    result = promtool("test", "rules", "rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.server  # promtool runs as a process of its own
@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_the_unit_tests_catch_a_dlq_alert_that_no_longer_fires(tmp_path: Path):
    rules = (OBSERVABILITY / "rules.yml").read_text()
    broken = rules.replace(
        "eduscale_dlq_writes_total[5m])) > 0", "eduscale_dlq_writes_total[5m])) > 5"
    )
    assert broken != rules
    (tmp_path / "rules.yml").write_text(broken)
    shutil.copy(OBSERVABILITY / "rules.test.yml", tmp_path)
    result = promtool("test", "rules", "rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "EduscaleDeadLetterWrites" in result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires():
    cases = yaml.safe_load((OBSERVABILITY / "rules.test.yml").read_text())["tests"]
    firing = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert {alert.name for alert in alerts()} <= firing


def test_a_poison_message_case_exists_for_the_dlq_alert():
    cases = yaml.safe_load((OBSERVABILITY / "rules.test.yml").read_text())["tests"]
    poison = next(case for case in cases if "poison" in case["name"])
    assert any(c["alertname"] == "EduscaleDeadLetterWrites" for c in poison["alert_rule_test"])


def test_every_alert_links_to_its_runbook_section():
    runbook = (PROJECT_DIR / RUNBOOKS).read_text()
    headings = {m.lower() for m in re.findall(r"^## (\S+)$", runbook, re.MULTILINE)}
    for alert in alerts():
        url = alert.rule()["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == RUNBOOKS
        assert anchor in headings, f"{alert.name}: no '## {alert.name}' section in {RUNBOOKS}"
