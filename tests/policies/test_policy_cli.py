"""`eduscale policy` as a user runs it: both stacks pass; each broken rule is named."""

import json
from pathlib import Path
from typing import Any

import pytest
from policy_harness import Mutation, MutationCheck, mutated_graph_file, resources_of

from infra.cli import main
from infra.graph import Graph
from policies.catalogue import ALL_POLICIES
from policies.waivers import WAIVERS


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_pass_every_mandatory_rule(
    stack: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["policy", "--stack", stack]) == 0
    assert "0 mandatory" in capsys.readouterr().out


def writer(document: dict[str, Any]) -> dict[str, Any]:
    return next(
        r
        for r in resources_of(document, "aws:rds/instance:Instance")
        if "replicateSourceDb" not in r["inputs"]
    )


def make_public(document: dict[str, Any]) -> None:
    writer(document)["inputs"]["publiclyAccessible"] = True


def remove_replicas(document: dict[str, Any]) -> None:
    document["resources"] = [
        r for r in document["resources"] if "replicateSourceDb" not in r["inputs"]
    ]


def drop_backups(document: dict[str, Any]) -> None:
    writer(document)["inputs"]["backupRetentionPeriod"] = 1


MUTATIONS: list[Mutation] = [
    ("public RDS", make_public, "rds-not-public"),
    ("replicas removed", remove_replicas, "rds-read-replicas"),
    ("backups cut to a day", drop_backups, "rds-backup-retention"),
]


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_prod_graph_fails_naming_the_rule(
    case: Mutation, prod_graph_broken_by: MutationCheck
) -> None:
    prod_graph_broken_by(case)


def test_a_missing_graph_file_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["policy", "--graph", str(tmp_path / "none.json")]) == 2
    assert "no graph file" in capsys.readouterr().err


def test_a_config_naming_an_unknown_rule_is_refused(
    prod_graph: Graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = mutated_graph_file(prod_graph, tmp_path / "graph.json", lambda _: None)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"no-such-rule": {}}))
    assert main(["policy", "--graph", str(path), "--config", str(config)]) == 2
    assert "unknown rules: no-such-rule" in capsys.readouterr().err


def test_rules_have_unique_names_severities_fixes_and_scanner_ids():
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    for policy in ALL_POLICIES:
        assert policy.severity is not None, policy.name
        assert policy.remediation_steps, policy.name
        assert policy.tags, policy.name
        assert policy.enforcement_level is not None, policy.name


def test_only_advisory_rules_are_waived():
    by_name = {p.name: p for p in ALL_POLICIES}
    for name, reason in WAIVERS.items():
        assert name in by_name
        assert by_name[name].enforcement_level.value == "advisory"  # type: ignore[union-attr]
        assert reason


def test_the_policy_readme_lists_every_rule_as_the_rules_say():
    from conftest import PROJECT_DIR  # noqa: PLC0415

    from scripts.policy_readme import table  # noqa: PLC0415

    readme = (PROJECT_DIR / "policies" / "README.md").read_text()
    assert table() in readme
    assert len(ALL_POLICIES) >= 40


def test_the_policy_readme_shows_every_waiver_and_accepted_finding():
    from conftest import PROJECT_DIR  # noqa: PLC0415

    from policies.waivers import ACCEPTED_FINDINGS  # noqa: PLC0415
    from scripts.policy_readme import waivers_table  # noqa: PLC0415

    readme = (PROJECT_DIR / "policies" / "README.md").read_text()
    assert waivers_table() in readme
    for finding in ACCEPTED_FINDINGS:
        assert finding.scanners
        assert finding.resources
        assert finding.reason
        assert ", ".join(finding.scanners) in readme
