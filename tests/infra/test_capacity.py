"""`eduscale capacity`: the plan for N users, and its verdict on a stack.

The plan reads the figures measured on this machine (benchmarks/baseline.json), as the
command does by default: prod must hold a million users with them. Re-running the
benchmarks may move pod counts; a shortfall then names the config key to raise.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from conftest import PROJECT_DIR

from infra.capacity.bench import load_bench_figures
from infra.capacity.errors import CapacityInputError
from infra.capacity.paths import DEFAULT_MODEL, DEFAULT_PRICES
from infra.capacity.plan import Inputs, Plan, build_plan, load_inputs, load_stack_config
from infra.capacity.workload import load_workload_model
from infra.cli import main
from stacks.config import StackConfig

ROOT = PROJECT_DIR
BENCH = ROOT / "benchmarks" / "baseline.json"
"""The figures measured on this machine: the plan's default input, so prod must hold with them."""
MILLION = 1_000_000


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    return load_inputs(DEFAULT_MODEL, BENCH, DEFAULT_PRICES)


@pytest.fixture(scope="module")
def prod() -> StackConfig:
    return load_stack_config("prod", ROOT)


def _capacity(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["capacity", "--bench", str(BENCH), "--project-dir", str(ROOT), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _with_course_max(config: StackConfig, max_replicas: int) -> StackConfig:
    course = config.services.course.model_copy(update={"max_replicas": max_replicas})
    services = config.services.model_copy(update={"course": course})
    return config.model_copy(update={"services": services})


def _needed(plan: Plan, item: str) -> int:
    (requirement,) = [r for r in plan.requirements if r.item == item]
    return requirement.needed


def test_prod_holds_a_million_users(capsys):
    code, out, _ = _capacity(capsys, "--users", "1000000", "--stack", "prod")
    assert code == 0, out
    assert "The stack holds 1,000,000 active users." in out
    assert "SHORT" not in out
    for item in ("auth", "course", "kong gateway", "generation worker", "redis shards"):
        assert item in out


def test_every_tier_is_planned(inputs, prod):
    plan = build_plan(MILLION, "prod", prod, inputs)
    tiers = {(r.tier, r.item) for r in plan.requirements}
    for expected in [
        ("pods", "auth"),
        ("pods", "course"),
        ("pods", "ai-orchestrator"),
        ("pods", "generation worker"),
        ("pods", "indexer worker"),
        ("pods", "kong gateway"),
        ("nodes", "apps (c7g.2xlarge)"),
        ("nodes", "workers (c7g.xlarge)"),
        ("database", "read replicas"),
        ("cache", "redis shards"),
        ("kafka", "partitions per work topic"),
        ("kafka", "brokers"),
        ("vector store", "qdrant nodes"),
        ("vector store", "qdrant shards"),
    ]:
        assert expected in tiers
    assert plan.monthly_total > 0
    assert not plan.shortfalls


def test_a_lower_course_maximum_fails_naming_the_course_tier(inputs, prod):
    needed = _needed(build_plan(MILLION, "prod", prod, inputs), "course")
    plan = build_plan(MILLION, "prod", _with_course_max(prod, needed - 1), inputs)
    (shortfall,) = plan.shortfalls
    assert (shortfall.tier, shortfall.item) == ("pods", "course")
    assert shortfall.config_key == "eduscale:services.course.maxReplicas"
    assert shortfall.shortfall() == (
        f"pods / course: needs {needed}, the stack allows {needed - 1}; "
        f"raise eduscale:services.course.maxReplicas to at least {needed}"
    )


def test_the_command_exits_non_zero_when_a_stack_file_is_too_small(tmp_path, capsys):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    settings = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    settings["config"]["eduscale:services"]["course"]["maxReplicas"] = 10
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(settings))
    args = ["--users", "1000000", "--bench", str(BENCH), "--project-dir", str(tmp_path)]
    code = main(["capacity", *args])
    out = capsys.readouterr().out
    assert code == 1
    assert "The stack cannot hold the target: 1 shortfall(s):" in out
    assert "pods / course: needs" in out
    assert "the stack allows 10; raise eduscale:services.course.maxReplicas" in out


def test_twice_the_users_need_about_twice_the_pods(inputs, prod):
    one = build_plan(MILLION, "prod", prod, inputs)
    two = build_plan(2 * MILLION, "prod", prod, inputs)
    for item in ("auth", "course", "kong gateway", "generation worker", "indexer worker"):
        ratio = _needed(two, item) / _needed(one, item)
        assert 1.9 <= ratio <= 2.1, (item, _needed(one, item), _needed(two, item))
    assert two.traffic.total == pytest.approx(2 * one.traffic.total)
    assert two.monthly_total > 1.5 * one.monthly_total


def test_more_headroom_needs_more_pods(inputs, prod):
    roomier = inputs.model.model_copy(update={"headroom": inputs.model.headroom * 1.5})
    base = build_plan(MILLION, "prod", prod, inputs)
    more = build_plan(MILLION, "prod", prod, Inputs(roomier, inputs.figures, inputs.prices))
    assert _needed(more, "course") > _needed(base, "course")


def test_a_figure_missing_from_the_benchmark_file_is_named(tmp_path, capsys):
    document = json.loads(BENCH.read_text())
    del document["figures"]["course_get_uncached"]
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps(document))
    code = main(["capacity", "--users", "1000", "--bench", str(bench), "--project-dir", str(ROOT)])
    err = capsys.readouterr().err
    assert code == 2
    assert "lack figure(s) the plan needs: course_get_uncached" in err
    assert str(bench) in err


def test_a_missing_benchmark_file_says_how_to_make_one(tmp_path):
    with pytest.raises(CapacityInputError, match=r"python -m benchmarks --json"):
        load_bench_figures(tmp_path / "baseline.json", {"bare_asgi"})


def test_a_non_positive_figure_is_refused(tmp_path):
    document = json.loads(BENCH.read_text())
    document["figures"]["auth_login"]["value"] = 0
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps(document))
    with pytest.raises(CapacityInputError, match=r"figure auth_login has value 0"):
        load_bench_figures(bench, {"auth_login"})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m: m["endpoints"]["course_read"].update(cache_hit_ratio=1.5),
            "endpoints.course_read.cache_hit_ratio = 1.5: Input should be less than or equal to 1",
        ),
        (
            lambda m: m["endpoints"]["auth_me"].update(service="payments"),
            "endpoints.auth_me.service = 'payments': Input should be 'auth', 'course' or 'ai-orchestrator'",
        ),
        (
            lambda m: m["generation"].update(llm_latency_s=6),
            "generation.llm_latency_s = 6: unknown key (a typo?)",
        ),
        (
            lambda m: m.pop("peak_factor"),
            "peak_factor: required; not set",
        ),
        (
            lambda m: m["endpoints"]["course_list"].update(cache_hit_ratio=0.5),
            "cache_hit_ratio is 0.5 but no cached_figure names the benchmark of a cache hit",
        ),
        (
            lambda m: m["endpoints"]["ai_upload"].pop("enqueues"),
            "none has `enqueues: document`",
        ),
    ],
)
def test_workload_model_errors_name_the_key_the_value_and_the_rule(tmp_path, change, expected):
    model = yaml.safe_load(DEFAULT_MODEL.read_text())
    change(model)
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(CapacityInputError) as raised:
        load_workload_model(path)
    message = str(raised.value)
    assert message.startswith(f"invalid workload model {path}")
    assert expected in message


def test_a_bad_model_file_exits_2_with_the_reason(tmp_path, capsys):
    path = tmp_path / "workload.yaml"
    path.write_text("peak_factor: [")
    code, _, err = _capacity(capsys, "--users", "1000", "--model", str(path))
    assert code == 2
    assert f"workload model {path} is not valid YAML" in err


def test_the_default_model_loads_and_every_number_has_a_source():
    load_workload_model(DEFAULT_MODEL)
    lines = DEFAULT_MODEL.read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.split("#")[0].strip()
        if not stripped.endswith(":") and ":" in stripped and any(c.isdigit() for c in stripped):
            commented = "#" in line or lines[index - 1].strip().startswith("#")
            assert commented, f"workload.yaml line {index + 1} has no source: {line.strip()}"


def test_the_price_table_date_is_shown(tmp_path, capsys):
    prices = yaml.safe_load(DEFAULT_PRICES.read_text())
    _, out, _ = _capacity(capsys, "--users", "1000000")
    assert f"on-demand list prices as of {prices['as_of'].isoformat()}" in out
    prices["as_of"] = "2031-02-03"
    moved = tmp_path / "prices.yaml"
    moved.write_text(yaml.safe_dump(prices))
    _, out, _ = _capacity(capsys, "--users", "1000000", "--prices", str(moved))
    assert "eu-west-1 on-demand list prices as of 2031-02-03" in out


def test_an_instance_type_missing_from_the_price_table_is_named(inputs, prod):
    database = prod.database.model_copy(update={"instance_class": "db.x9.mega"})
    with pytest.raises(CapacityInputError, match=r"no rds entry for 'db.x9.mega' \(known: "):
        build_plan(MILLION, "prod", prod.model_copy(update={"database": database}), inputs)


def test_a_pod_larger_than_its_nodes_is_a_shortfall(inputs, prod):
    store = prod.vector_store.model_copy(update={"memory": "64Gi"})
    plan = build_plan(MILLION, "prod", prod.model_copy(update={"vector_store": store}), inputs)
    items = [r.item for r in plan.shortfalls]
    assert "apps: MiB for one qdrant pod" in items


def test_json_output_for_machines(capsys):
    code, out, _ = _capacity(capsys, "--users", "1000000", "--json")
    document = json.loads(out)
    assert code == 0
    assert document["holds"] is True
    assert document["users"] == MILLION
    assert document["monthly_cost"]["prices_as_of"] == str(
        yaml.safe_load(DEFAULT_PRICES.read_text())["as_of"]
    )
    course = next(r for r in document["requirements"] if r["item"] == "course")
    assert course["config_key"] == "eduscale:services.course.maxReplicas"
    assert course["needed"] <= course["configured"]


def test_dev_cannot_hold_a_million_users(capsys):
    code, out, _ = _capacity(capsys, "--users", "1000000", "--stack", "dev")
    assert code == 1
    assert "pods / course" in out


def test_users_must_be_a_positive_whole_number(capsys):
    with pytest.raises(SystemExit):
        main(["capacity", "--users", "lots"])
    assert "not a whole number: 'lots'" in capsys.readouterr().err


def test_pods_overflow_into_the_next_group_of_their_class(inputs, prod):
    groups = list(prod.cluster.node_groups)
    apps = groups[1]
    groups[1] = apps.model_copy(update={"max_size": 10})
    groups.insert(
        2,
        apps.model_copy(
            update={"name": "apps-more", "min_size": 0, "desired_size": 0, "max_size": 200}
        ),
    )
    cluster = prod.cluster.model_copy(update={"node_groups": tuple(groups)})
    before = build_plan(MILLION, "prod", prod, inputs)
    after = build_plan(MILLION, "prod", prod.model_copy(update={"cluster": cluster}), inputs)
    apps_needed = _needed(before, "apps (c7g.2xlarge)")
    nodes = {r.config_key: r.needed for r in after.requirements if r.tier == "nodes"}
    assert nodes["eduscale:cluster.nodeGroups[1].maxSize"] == 10
    assert nodes["eduscale:cluster.nodeGroups[2].maxSize"] in {apps_needed - 10, apps_needed - 9}
    assert not after.shortfalls
