"""`eduscale capacity`: the plan for N users, and its verdict on a stack.

The plan reads the figures measured on this machine (benchmarks/baseline.json), as the
command does by default: prod must hold a million users with them. Re-running the
benchmarks may move pod counts; a shortfall then names the config key to raise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest
import yaml
from conftest import PROJECT_DIR

from infra.capacity.bench import load_bench_figures
from infra.capacity.errors import CapacityInputError
from infra.capacity.paths import DEFAULT_LLM_PRICES, DEFAULT_MODEL, DEFAULT_PRICES
from infra.capacity.plan import Inputs, Plan, build_plan, load_inputs, load_stack_config
from infra.capacity.pods import cpu_cores
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
        ("analytics", "clickhouse GB per replica"),
    ]:
        assert expected in tiers
    assert plan.monthly_total > 0
    assert plan.llm.monthly_total > 0
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

    # What the plan sizes from the traffic (nodes, cache shards) about doubles; the rest is
    # what the stack fixes (control plane, NAT, system nodes, three brokers, the database
    # class and the ClickHouse volumes it configures, flagged SHORT when too small).
    def sized(plan: Plan) -> float:
        scaled = ("nodes: apps", "nodes: workers", "ElastiCache nodes")
        return sum(c.monthly for c in plan.costs if c.item.startswith(scaled))

    assert 1.7 <= sized(two) / sized(one) <= 2.1
    assert two.monthly_total > one.monthly_total
    assert two.llm.monthly_total == pytest.approx(2 * one.llm.monthly_total)


def test_more_headroom_needs_more_pods(inputs, prod):
    roomier = inputs.model.model_copy(update={"headroom": inputs.model.headroom * 1.5})
    base = build_plan(MILLION, "prod", prod, inputs)
    more = build_plan(MILLION, "prod", prod, dataclasses.replace(inputs, model=roomier))
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


# --- issue 18: logins and refreshes, worker concurrency, partitions, ClickHouse, LLM ----------


def _with_worker_concurrency(config: StackConfig, generation: int, indexer: int) -> StackConfig:
    services = config.services.model_copy(
        update={
            "generation_worker": config.services.generation_worker.model_copy(
                update={"worker_concurrency": generation}
            ),
            "indexer_worker": config.services.indexer_worker.model_copy(
                update={"worker_concurrency": indexer}
            ),
        }
    )
    return config.model_copy(update={"services": services})


def _with_model(inputs: Inputs, **sections: dict[str, object]) -> Inputs:
    """`inputs` with some keys of the model's sections changed."""
    model = inputs.model
    for section, changes in sections.items():
        current = getattr(model, section)
        model = model.model_copy(update={section: current.model_copy(update=changes)})
    return dataclasses.replace(inputs, model=model)


def _basis(plan: Plan, item: str) -> str:
    (requirement,) = [r for r in plan.requirements if r.item == item]
    return requirement.basis


def test_password_logins_and_refreshes_are_planned_apart(inputs, prod):
    plan = build_plan(MILLION, "prod", prod, inputs)
    rates = plan.traffic.per_endpoint
    assert 0 < rates["auth_login"] < rates["auth_refresh"]
    # Were every refresh a password login (no refresh tokens), auth would need far more pods.
    endpoints = dict(inputs.model.endpoints)
    login, refresh = endpoints["auth_login"], endpoints["auth_refresh"]
    endpoints["auth_login"] = login.model_copy(
        update={"per_user_per_minute": login.per_user_per_minute + refresh.per_user_per_minute}
    )
    endpoints["auth_refresh"] = refresh.model_copy(update={"per_user_per_minute": 0})
    typed = dataclasses.replace(
        inputs, model=inputs.model.model_copy(update={"endpoints": endpoints})
    )
    without = build_plan(MILLION, "prod", prod, typed)
    assert _needed(without, "auth") > 3 * _needed(plan, "auth")


def test_refreshes_are_costed_from_their_own_measured_figure(tmp_path, inputs, prod):
    """`auth_refresh` (a real rotation per request, benchmarks/http_endpoints.py) prices the
    refresh endpoint; the proxy it replaced, `generation_accepted`, no longer moves auth."""
    measured = json.loads(BENCH.read_text())["figures"]["auth_refresh"]
    assert (measured["unit"], measured["reference"]) == ("req/s", "auth_login")
    assert (measured["extra"]["non_200"], measured["extra"]["families_revoked"]) == (0, 0)
    assert inputs.model.endpoints["auth_refresh"].uncached_figure == "auth_refresh"

    def auth_pods_with(key: str, factor: float) -> int:
        document = json.loads(BENCH.read_text())
        document["figures"][key]["value"] *= factor
        bench = tmp_path / f"{key}.json"
        bench.write_text(json.dumps(document))
        changed = load_inputs(DEFAULT_MODEL, bench, DEFAULT_PRICES)
        return _needed(build_plan(MILLION, "prod", prod, changed), "auth")

    plan = build_plan(MILLION, "prod", prod, inputs)
    auth = prod.services.auth
    per_pod = cpu_cores(auth.cpu_request) * auth.cpu_target_percent / 100
    # Rotations 20x slower: each refresh costs 19/value core-s more.
    extra_cores = plan.traffic.per_endpoint["auth_refresh"] * 19 / measured["value"]
    expected = extra_cores * inputs.model.headroom / inputs.model.core_speed / per_pod
    grown = auth_pods_with("auth_refresh", 1 / 20) - _needed(plan, "auth")
    assert abs(grown - expected) <= 1
    assert auth_pods_with("generation_accepted", 1 / 20) == _needed(plan, "auth")


def test_workers_are_sized_by_the_stacks_worker_concurrency(inputs, prod):
    one = build_plan(MILLION, "prod", _with_worker_concurrency(prod, 1, 1), inputs)
    four = build_plan(MILLION, "prod", _with_worker_concurrency(prod, 4, 5), inputs)
    assert _needed(four, "generation worker") == math.ceil(_needed(one, "generation worker") / 4)
    assert _needed(four, "indexer worker") == math.ceil(_needed(one, "indexer worker") / 5)
    assert "/ 4 per pod (workerConcurrency" in _basis(four, "generation worker")
    # Fewer consumer pods need fewer partitions: one each, not one per job in flight.
    assert _needed(four, "partitions per work topic") == _needed(four, "generation worker")
    assert _needed(four, "workers (c7g.xlarge)") < _needed(one, "workers (c7g.xlarge)")


def test_prod_workers_keep_several_jobs_in_flight_up_to_the_cpu_floor(inputs, prod):
    generation = prod.services.generation_worker.worker_concurrency
    indexer = prod.services.indexer_worker.worker_concurrency
    assert generation > 1
    assert indexer > 1
    plan = build_plan(MILLION, "prod", prod, inputs)
    serial = build_plan(MILLION, "prod", _with_worker_concurrency(prod, 1, 1), inputs)
    # Prod's generation pods are bound by CPU, not by jobs in flight: more concurrency per
    # pod would not save a pod, less would add some.
    floor = int(_basis(plan, "generation worker").rsplit("CPU floor ", 1)[1].rstrip(")"))
    assert _needed(plan, "generation worker") == floor
    assert math.ceil(_needed(serial, "generation worker") / generation) <= floor
    assert _needed(plan, "indexer worker") == math.ceil(_needed(serial, "indexer worker") / indexer)
    # Partitions and brokers follow the consumer pods: a few dozen partitions, not hundreds.
    consumers = max(_needed(plan, "generation worker"), _needed(plan, "indexer worker"))
    assert _needed(plan, "partitions per work topic") == consumers  # the largest group
    assert prod.kafka.partitions >= prod.services.generation_worker.max_replicas
    assert _needed(serial, "partitions per work topic") > prod.kafka.partitions
    assert _needed(plan, "workers (c7g.xlarge)") * 5 < _needed(serial, "workers (c7g.xlarge)")


def test_many_jobs_per_pod_stop_at_the_cpu_floor(inputs, prod):
    plan = build_plan(MILLION, "prod", _with_worker_concurrency(prod, 1000, 1000), inputs)
    basis = _basis(plan, "generation worker")
    floor = int(basis.rsplit("CPU floor ", 1)[1].rstrip(")"))
    assert _needed(plan, "generation worker") == floor > 1
    assert _needed(plan, "indexer worker") == 1


def _with_figure(tmp_path, inputs: Inputs, key: str, value: float) -> Inputs:
    """`inputs` read from a copy of the committed figures with one value changed."""
    document = json.loads(BENCH.read_text())
    document["figures"][key]["value"] = value
    bench = tmp_path / f"results-{key}.json"
    bench.write_text(json.dumps(document))
    return dataclasses.replace(inputs, figures=load_bench_figures(bench, {key}))


def test_partitions_follow_throughput_when_it_needs_more_than_the_consumers(tmp_path, inputs, prod):
    config = _with_worker_concurrency(prod, 1000, 1000)
    heavy = _with_figure(tmp_path, inputs, "analytics_event_wire_bytes", 10_240)
    plan = build_plan(MILLION, "prod", config, heavy)
    events_mb = plan.traffic.events * 10.0 / 1024
    by_rate = math.ceil(events_mb * inputs.model.headroom / 10)  # 10 MB/s per partition
    assert by_rate > _needed(plan, "generation worker")
    assert _needed(plan, "partitions per work topic") == by_rate
    assert "analytics" in _basis(plan, "partitions per work topic")


def test_brokers_are_sized_by_the_event_bytes_measured_on_the_wire(tmp_path, inputs, prod):
    measured = inputs.figures.value("analytics_event_wire_bytes")
    uncompressed = inputs.figures.value("analytics_event_wire_bytes_uncompressed")
    assert measured < uncompressed / 2  # the emitters' compressed batches
    as_sent = build_plan(MILLION, "prod", prod, inputs)
    plain = build_plan(
        MILLION,
        "prod",
        prod,
        _with_figure(tmp_path, inputs, "analytics_event_wire_bytes", uncompressed),
    )

    def replicated_mb(plan: Plan) -> float:
        return float(_basis(plan, "brokers").split(" MB/s replicated")[0].rsplit(" ", 1)[1])

    assert replicated_mb(as_sent) < replicated_mb(plain) / 2
    assert _needed(as_sent, "brokers") <= _needed(plain, "brokers")


def test_read_replicas_follow_the_measured_read_cost(tmp_path, inputs, prod):
    measured = inputs.figures.value("database_reads")
    plan = build_plan(MILLION, "prod", prod, inputs)
    tenfold = build_plan(
        MILLION,
        "prod",
        prod,
        _with_figure(tmp_path, inputs, "database_reads", measured / 10),
    )
    assert prod.database.replica_class == "db.r7g.2xlarge"  # 8 vCPUs, the writer's 16
    assert f"{measured * 8 * 0.7:,.0f} per db.r7g.2xlarge replica" in _basis(plan, "read replicas")
    assert _needed(tenfold, "read replicas") > _needed(plan, "read replicas") >= 2
    assert tenfold.monthly_total > plan.monthly_total


def _with_replica_class(config: StackConfig, replica_class: str | None) -> StackConfig:
    database = config.database.model_copy(update={"replica_instance_class": replica_class})
    return config.model_copy(update={"database": database})


def _cost(plan: Plan, item: str) -> tuple[str, float]:
    (line,) = [c for c in plan.costs if c.item == item]
    return line.quantity, line.monthly


def test_replicas_are_sized_and_priced_at_their_own_class(inputs, prod):
    """Each replica serves the measured reads per vCPU of its own class, at its own price;
    the primary is sized and priced at the writer's class whatever the replicas'."""
    hours = inputs.prices.hours_per_month
    database = inputs.model.database
    per_vcpu = inputs.figures.value("database_reads") * database.cpu_utilisation
    shared = build_plan(MILLION, "prod", _with_replica_class(prod, None), inputs)
    reads = shared.traffic.database_reads * inputs.model.headroom
    for replica_class, vcpu in (("db.r7g.2xlarge", 8), ("db.r7g.xlarge", 4), ("db.r7g.large", 2)):
        plan = build_plan(MILLION, "prod", _with_replica_class(prod, replica_class), inputs)
        needed = _needed(plan, "read replicas")
        assert needed == math.ceil(reads / (per_vcpu * vcpu)) + database.spare_replicas
        assert f"/ {per_vcpu * vcpu:,.0f} per {replica_class} replica" in _basis(
            plan, "read replicas"
        )
        quantity, monthly = _cost(plan, "RDS read replicas")
        assert quantity == f"{needed} x {replica_class}"
        assert monthly == pytest.approx(
            needed * inputs.prices.database(replica_class).hourly * hours
        )
        assert _cost(plan, "RDS primary (Multi-AZ)") == _cost(shared, "RDS primary (Multi-AZ)")
        assert _basis(plan, "primary vCPUs") == _basis(shared, "primary vCPUs")
        requirement = [r for r in plan.requirements if r.item == "primary vCPUs"]
        assert requirement[0].configured == 16  # the writer's db.r7g.4xlarge
    smallest = build_plan(MILLION, "prod", _with_replica_class(prod, "db.r7g.large"), inputs)
    assert _needed(smallest, "read replicas") > _needed(shared, "read replicas")


def test_without_a_replica_class_the_replicas_are_planned_at_the_writers(inputs, prod):
    shared = build_plan(MILLION, "prod", _with_replica_class(prod, None), inputs)
    same = build_plan(MILLION, "prod", _with_replica_class(prod, "db.r7g.4xlarge"), inputs)
    assert "per db.r7g.4xlarge replica" in _basis(shared, "read replicas")
    assert _cost(shared, "RDS read replicas") == _cost(same, "RDS read replicas")
    assert _cost(shared, "RDS read replicas")[0] == "2 x db.r7g.4xlarge"
    assert shared.costs == same.costs


def test_prods_smaller_replicas_save_half_their_price(inputs, prod):
    """Prod's replicas at db.r7g.2xlarge: as many as at the writer's class (the reads fit
    one of either, + the spare), at half the price: USD 21,336 -> 19,806 a month."""
    own = build_plan(MILLION, "prod", prod, inputs)
    shared = build_plan(MILLION, "prod", _with_replica_class(prod, None), inputs)
    assert _needed(own, "read replicas") == _needed(shared, "read replicas") == 2
    assert _cost(own, "RDS read replicas")[0] == "2 x db.r7g.2xlarge"
    saved = _cost(shared, "RDS read replicas")[1] - _cost(own, "RDS read replicas")[1]
    assert saved == pytest.approx(_cost(own, "RDS read replicas")[1])
    assert shared.monthly_total - own.monthly_total == pytest.approx(saved)
    assert round(own.monthly_total) == 19_806
    assert own.shortfalls == []


def test_a_replica_class_missing_from_the_price_table_is_named(inputs, prod):
    with pytest.raises(CapacityInputError, match=r"no rds entry for 'db.x9.tiny' \(known: "):
        build_plan(MILLION, "prod", _with_replica_class(prod, "db.x9.tiny"), inputs)


@pytest.mark.parametrize(
    ("endpoint", "work"), [("ai_generate", "generation"), ("ai_upload", "document")]
)
def test_the_primary_counts_a_job_and_its_outbox_row_as_one_transaction(
    inputs, prod, endpoint, work
):
    """`writes_per_vcpu` is in transactions (pgbench tpcb-like), so the job's INSERTs and
    its outbox row, committed together (services/ai/jobs.py, services/ai/documents.py),
    count once: with only this endpoint writing, the primary's rate is its request rate."""
    model = inputs.model
    assert model.endpoints[endpoint].db_transactions_per_request == 1
    alone = {
        name: e if name == endpoint else e.model_copy(update={"db_transactions_per_request": 0})
        for name, e in model.endpoints.items()
    }
    only = dataclasses.replace(inputs, model=model.model_copy(update={"endpoints": alone}))
    plan = build_plan(MILLION, "prod", prod, only)
    peak = MILLION * model.endpoints[endpoint].per_user_per_minute / 60 * model.peak_factor
    assert plan.traffic.database_transactions == pytest.approx(peak)
    assert plan.traffic.database_transactions == pytest.approx(plan.traffic.enqueued(work))
    assert _basis(plan, "primary vCPUs").startswith(f"{peak:,.0f} write transactions/s x ")
    per_vcpu = model.database.writes_per_vcpu * model.database.cpu_utilisation
    assert _needed(plan, "primary vCPUs") == math.ceil(peak * model.headroom / per_vcpu)


def test_a_model_with_the_old_writes_key_is_told_the_new_one(tmp_path, capsys):
    """`--model FILE` users with `db_writes_per_request` learn what to write instead."""
    model = yaml.safe_load(DEFAULT_MODEL.read_text())
    for name in ("ai_generate", "course_write"):
        endpoint = model["endpoints"][name]
        endpoint["db_writes_per_request"] = endpoint.pop("db_transactions_per_request")
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump(model))
    code, _, err = _capacity(capsys, "--users", "1000", "--model", str(path))
    assert code == 2
    assert f"invalid workload model {path} (2 problem(s))" in err
    for name in ("ai_generate", "course_write"):
        assert (
            f"endpoints.{name}.db_writes_per_request = 1: renamed db_transactions_per_request "
            "(write transactions, each counted once whatever rows it writes" in err
        )
    assert "unknown key" not in err


def test_the_clickhouse_tier_is_placed_and_billed(inputs, prod):
    plan = build_plan(MILLION, "prod", prod, inputs)
    analytics = prod.analytics
    assert "clickhouse, clickhouse keeper" in _basis(plan, "apps (c7g.2xlarge)")
    costs = {c.item: c for c in plan.costs}
    servers = analytics.shards * analytics.replicas_per_shard
    volume = costs["clickhouse volumes (gp3)"]
    assert volume.quantity == f"{servers} x {analytics.storage_gb} GB"
    assert volume.monthly == pytest.approx(
        servers * analytics.storage_gb * plan.prices.ebs_gb_month
    )
    keeper = costs["clickhouse keeper volumes (gp3)"]
    assert keeper.quantity == f"{analytics.keeper_nodes} x {analytics.keeper_storage_gb} GB"


def test_clickhouse_storage_follows_the_retention_and_names_the_key(inputs, prod):
    needed = _needed(build_plan(MILLION, "prod", prod, inputs), "clickhouse GB per replica")
    half = prod.analytics.model_copy(update={"raw_events_ttl_days": 90})
    shorter = build_plan(MILLION, "prod", prod.model_copy(update={"analytics": half}), inputs)
    assert _needed(shorter, "clickhouse GB per replica") == pytest.approx(needed / 2, abs=1)
    small = prod.analytics.model_copy(update={"storage_gb": needed - 1})
    plan = build_plan(MILLION, "prod", prod.model_copy(update={"analytics": small}), inputs)
    (shortfall,) = plan.shortfalls
    assert shortfall.config_key == "eduscale:analytics.storageGb"
    assert f"raise eduscale:analytics.storageGb to at least {needed}" in shortfall.shortfall()


def test_clickhouse_pods_larger_than_the_nodes_are_a_shortfall(inputs, prod):
    bigger = prod.analytics.model_copy(update={"memory": "16Gi"})
    plan = build_plan(MILLION, "prod", prod.model_copy(update={"analytics": bigger}), inputs)
    assert [r.item for r in plan.shortfalls] == ["apps: MiB for one clickhouse pod"]


def test_the_llm_bill_counts_tokens_at_the_dated_prices(inputs, prod):
    plan = build_plan(MILLION, "prod", prod, inputs)
    llm, model = plan.llm, inputs.model
    prices = yaml.safe_load(DEFAULT_LLM_PRICES.read_text())
    chat = prices["models"][prod.ai.openai_model]
    avoided = inputs.figures.value("semantic_cache_chat_calls_avoided") / 100
    assert llm.avoided_share == pytest.approx(avoided)
    assert llm.chat_calls == pytest.approx(llm.jobs * (1 - avoided))
    kinds = model.llm.generation_kinds.values()
    tokens_in = llm.chat_calls * sum(k.share * k.chat_input_tokens for k in kinds)
    lines = {line.item: line for line in llm.lines}
    chat_in = lines[f"chat input ({prod.ai.openai_model})"]
    assert chat_in.monthly == pytest.approx(tokens_in / 1e6 * chat["input_per_million"])
    # A month: the busy-hour average (peak / peak factor) over the busy hours of the days.
    usage = model.usage
    hours = usage.busy_hours_per_day * usage.active_days_per_month
    generations = plan.traffic.enqueued("generation") / model.peak_factor
    assert llm.jobs == pytest.approx(generations * 3600 * hours)
    assert llm.monthly_total == pytest.approx(sum(line.monthly for line in llm.lines))


def test_the_semantic_cache_saves_its_measured_share_of_chat_calls(tmp_path, inputs, prod):
    document = json.loads(BENCH.read_text())
    document["figures"]["semantic_cache_chat_calls_avoided"]["value"] = 0.001
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps(document))
    uncached = dataclasses.replace(
        inputs, figures=load_bench_figures(bench, {"semantic_cache_chat_calls_avoided"})
    )
    with_cache = build_plan(MILLION, "prod", prod, inputs)
    without = build_plan(MILLION, "prod", prod, uncached)
    avoided = with_cache.llm.avoided_share
    assert avoided > 0.3  # measured on the benchmark's replayed stream
    ratio = with_cache.llm.chat_calls / without.llm.chat_calls
    assert ratio == pytest.approx(1 - avoided, rel=1e-3)
    assert _needed(without, "generation worker") > _needed(with_cache, "generation worker")


def test_a_chat_model_missing_from_the_llm_prices_is_named(inputs, prod):
    ai = prod.ai.model_copy(update={"openai_model": "gpt-9-ultra"})
    with pytest.raises(CapacityInputError, match=r"no entry for model 'gpt-9-ultra' \(known: "):
        build_plan(MILLION, "prod", prod.model_copy(update={"ai": ai}), inputs)


def test_infrastructure_and_llm_totals_are_printed_apart(capsys):
    code, out, _ = _capacity(capsys, "--users", "1000000")
    assert code == 0, out
    infra_total = out.split("infrastructure total", 1)[1].split()[0]
    llm_total = out.split("LLM total", 1)[1].split()[0]
    assert f"Monthly totals (USD): infrastructure {infra_total}; LLM {llm_total}" in out
    prices = yaml.safe_load(DEFAULT_LLM_PRICES.read_text())
    assert f"per-token list prices as of {prices['as_of'].isoformat()}" in out
    assert prices["source"] in out

    code, out, _ = _capacity(capsys, "--users", "1000000", "--json")
    document = json.loads(out)
    totals = document["monthly_totals"]
    infra_lines = document["monthly_cost"]["lines"]
    llm_lines = document["llm_monthly_cost"]["lines"]
    assert totals["infrastructure"] == pytest.approx(sum(line["monthly"] for line in infra_lines))
    assert totals["llm"] == pytest.approx(sum(line["monthly"] for line in llm_lines), abs=0.05)
    assert document["monthly_cost"]["total"] == totals["infrastructure"]  # LLM fees not in it
    assert f"{totals['infrastructure']:,.0f}" == infra_total
    assert f"{totals['llm']:,.0f}" == llm_total
    assert document["llm_monthly_cost"]["prices_as_of"] == prices["as_of"].isoformat()


def test_a_benchmark_file_without_the_semantic_cache_figure_is_refused(tmp_path, capsys):
    document = json.loads(BENCH.read_text())
    del document["figures"]["semantic_cache_chat_calls_avoided"]
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps(document))
    code = main(["capacity", "--users", "1000", "--bench", str(bench), "--project-dir", str(ROOT)])
    assert code == 2
    assert "semantic_cache_chat_calls_avoided" in capsys.readouterr().err


def test_a_bad_llm_price_table_exits_2_naming_the_key(tmp_path, capsys):
    prices = yaml.safe_load(DEFAULT_LLM_PRICES.read_text())
    prices["models"]["gpt-4o-mini"]["input_per_million"] = -1
    path = tmp_path / "llm_prices.yaml"
    path.write_text(yaml.safe_dump(prices))
    code, _, err = _capacity(capsys, "--users", "1000", "--llm-prices", str(path))
    assert code == 2
    assert "models.gpt-4o-mini.input_per_million = -1" in err


def test_generation_kind_shares_must_add_up_to_one(tmp_path):
    model = yaml.safe_load(DEFAULT_MODEL.read_text())
    model["llm"]["generation_kinds"]["quiz"]["share"] = 0.5
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(CapacityInputError, match=r"the shares add up to 1\.16, not 1"):
        load_workload_model(path)


def _with_cache_node(inputs: Inputs, prod: StackConfig, node_type: str) -> Plan:
    cache = prod.cache.model_copy(update={"node_type": node_type, "shards": 100})
    return build_plan(MILLION, "prod", prod.model_copy(update={"cache": cache}), inputs)


def test_redis_shards_get_redis_71s_full_rate_only_from_8_vcpus(inputs, prod):
    large, small = (
        _with_cache_node(inputs, prod, "cache.r7g.2xlarge"),
        _with_cache_node(inputs, prod, "cache.r7g.xlarge"),
    )
    model = inputs.model.cache
    ops = large.traffic.redis_ops * inputs.model.headroom
    full = model.ops_per_vcpu * model.cpu_utilisation
    assert _needed(large, "redis shards") == math.ceil(ops / (8 * full))
    assert _needed(small, "redis shards") == math.ceil(
        ops / (4 * full * model.below_full_rate_factor)
    )
    assert "(4 vCPUs x 15,625 at 0.7)" in _basis(small, "redis shards")
    # Half the vCPUs, each at half the rate: the smaller nodes cost more for the same ops.
    costs = [{c.item: c.monthly for c in plan.costs} for plan in (large, small)]
    assert costs[0]["ElastiCache nodes"] < costs[1]["ElastiCache nodes"]


def test_the_plan_says_when_the_figures_it_reads_were_measured(tmp_path):
    document = json.loads(BENCH.read_text())
    for figure in document["figures"].values():
        figure["extra"] = {"measured_at": "2026-01-01T00:00:00+00:00"}
    document["figures"]["auth_login"]["extra"]["measured_at"] = "2026-02-01T00:00:00+00:00"
    document["figures"]["pulumi_sdk_import"]["extra"]["measured_at"] = "2020-01-01T00:00:00+00:00"
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps(document))
    figures = load_bench_figures(bench, {"auth_login", "course_get_cached"})
    # Only the figures the plan reads count: the SDK import time is not one of them.
    assert figures.measured_at == "2026-01-01T00:00:00+00:00 to 2026-02-01T00:00:00+00:00"
