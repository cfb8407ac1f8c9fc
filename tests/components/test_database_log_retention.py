"""The database's logs (its access trail) are kept as the stack config says, a year in prod."""

from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_DIR, run_program
from policy_harness import policy_cli_on, resource_violations, resources_of
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UnknownValueError

from components.database import Database, DatabaseArgs
from infra.graph import Graph
from infra.stack_files import load_stack
from stacks.config import ConfigError, parse_stack_config

RULE = "rds-log-retention"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
POSTGRES_LOG = "/aws/rds/instance/eduscale-prod-database-writer/postgresql"
ARGS: DatabaseArgs = {
    "vpc_id": "vpc-1",
    "subnet_ids": ["subnet-a", "subnet-b"],
    "availability_zones": ["eu-west-1a", "eu-west-1b"],
    "allowed_security_group_ids": ["sg-app"],
    "engine_version": "17.4",
    "instance_class": "db.r7g.large",
    "replica_count": 1,
}
VALID: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "eduscale:edge": {"domain": "learn.example.com", "cloudflareZoneId": "0" * 32},
}


def rds_log_groups(graph: Graph) -> list[Any]:
    return [g for g in graph.of_type(LOG_GROUP) if g.inputs["name"].startswith("/aws/rds/")]


@pytest.mark.parametrize(("stack", "days"), [("dev", 30), ("prod", 365)])
def test_every_database_log_is_kept_as_the_stack_config_says(
    stack: str, days: int, request: pytest.FixtureRequest
):
    graph: Graph = request.getfixturevalue(f"{stack}_graph")
    config = load_stack(PROJECT_DIR, stack).config
    assert '"logRetentionDays": ' + str(days) in config["eduscale:database"]
    groups = rds_log_groups(graph)
    instances = graph.of_type("aws:rds/instance:Instance")
    assert len(groups) == 2 * len(instances)  # postgresql and upgrade, per instance
    assert {g.inputs["retentionInDays"] for g in groups} == {days}


def test_a_stack_that_says_nothing_keeps_database_logs_a_year():
    assert parse_stack_config(VALID).database.log_retention_days == 365


def test_a_retention_cloudwatch_rejects_is_refused_by_the_config():
    with pytest.raises(
        ConfigError, match=r"eduscale:database.logRetentionDays = 100: .*accepts only"
    ):
        parse_stack_config({**VALID, "eduscale:database": {"logRetentionDays": 100}})


def test_the_component_defaults_to_a_year_and_refuses_what_cloudwatch_rejects():
    graph = run_program(lambda: Database("db", ARGS))
    assert {g.inputs["retentionInDays"] for g in rds_log_groups(graph)} == {365}
    with pytest.raises(ValueError, match="log_retention_days is 100; CloudWatch Logs accepts"):
        run_program(lambda: Database("db", {**ARGS, "log_retention_days": 100}))


# --- the rule ---------------------------------------------------------------------------


def violations(props: dict[str, Any], config: dict[str, Any] | None = None) -> list[str]:
    return resource_violations(RULE, LOG_GROUP, props, config)


@pytest.mark.parametrize("days", [365, 400, 3653])
def test_a_year_or_more_passes(days: int):
    assert violations({"name": POSTGRES_LOG, "retentionInDays": days}) == []


@pytest.mark.parametrize("days", [1, 30, 180])
def test_less_than_a_year_fails(days: int):
    (found,) = violations({"name": POSTGRES_LOG, "retentionInDays": days})
    assert f"keeps the database's logs {days} days" in found
    assert "at least 365" in found


def test_logs_that_never_expire_pass():
    assert violations({"name": POSTGRES_LOG}) == []
    assert violations({"name": POSTGRES_LOG, "retentionInDays": 0}) == []


def test_the_threshold_is_the_stacks_config():
    assert violations({"name": POSTGRES_LOG, "retentionInDays": 30}, {"minimumDays": 30}) == []
    assert violations({"name": POSTGRES_LOG, "retentionInDays": 14}, {"minimumDays": 30})


def test_cluster_logs_count_and_other_log_groups_are_not_this_rules():
    cluster = "/aws/rds/cluster/reports/postgresql"
    assert violations({"name": cluster, "retentionInDays": 7})
    assert violations({"name": "/aws/eks/cluster/c/cluster", "retentionInDays": 7}) == []


def test_an_unknown_retention_during_preview_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        violations({"name": POSTGRES_LOG, "retentionInDays": UNKNOWN_NUMBER_VALUE})


def test_prod_with_a_month_of_database_logs_fails_naming_the_rule(
    prod_graph: Graph, tmp_path: Path
):
    def shorten(document: dict[str, Any]) -> None:
        for group in resources_of(document, LOG_GROUP):
            if group["inputs"]["name"].endswith("/postgresql"):
                group["inputs"]["retentionInDays"] = 30

    status, broken = policy_cli_on(prod_graph, tmp_path, shorten)
    assert status == 1
    assert broken == {RULE}
