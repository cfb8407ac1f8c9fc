"""`workerConcurrency` of the AI workers: validated, and rendered into their pods' env."""

from typing import Any

import pytest
from test_config import VALID, issues_for
from test_workloads import config_of

from infra.graph import Graph
from stacks.config import parse_stack_config

AI_WORKERS = ("generation-worker", "indexer-worker")


@pytest.mark.parametrize("name", AI_WORKERS)
def test_each_ai_worker_pod_gets_its_configured_concurrency(stack_graph: Graph, name: str):
    settings = getattr(config_of(stack_graph.stack).services, name.replace("-", "_"))
    maps = {
        c.inputs["metadata"]["labels"]["app.kubernetes.io/name"]: c.inputs.get("data", {})
        for c in stack_graph.of_type("kubernetes:core/v1:ConfigMap")
    }
    assert maps[name]["WORKER_CONCURRENCY"] == str(settings.worker_concurrency)
    assert "WORKER_CONCURRENCY" not in maps["analytics-sink"]  # it writes batches instead


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"eduscale__services": {"generationWorker": {"workerConcurrency": 0}}},
         "eduscale:services.generationWorker.workerConcurrency = 0"),
        ({"eduscale__services": {"indexerWorker": {"workerConcurrency": 5000}}},
         "eduscale:services.indexerWorker.workerConcurrency = 5000"),
        ({"eduscale__services": {"analyticsSink": {"workerConcurrency": 8}}},
         "eduscale:services.analyticsSink.workerConcurrency = 8: unknown field"),
    ],
)  # fmt: skip
def test_worker_concurrency_is_validated(changes: dict[str, Any], expected: str):
    issues = issues_for(**changes)
    assert len(issues) == 1, issues
    assert expected in issues[0]


def test_a_configured_concurrency_is_read():
    values = {**VALID, "eduscale:services": {"generationWorker": {"workerConcurrency": 64}}}
    assert parse_stack_config(values).services.generation_worker.worker_concurrency == 64
