"""Our components built from another language: the plugin over gRPC, against a mock engine.

The plugin is started exactly as `pulumi` starts it for a TypeScript or YAML stack
(`PulumiPlugin.yaml`: this repository's `.venv` runs `__main__.py`), asked for its schema
and then for components. Inputs arrive as a protobuf `Struct`, where every number is a
double; what is checked is what the components then registered with the engine: the
values KEDA, the HPA controller, Qdrant and RDS will read, which must be integers
written as integers (`"50"`, not `"50.0"`), and enums as their values.
"""

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from component_host import Construction, MockEngine, PluginProcess
from pulumi.runtime import rpc

from infra.component_provider import PACKAGE_NAME, published_schema

pytestmark = pytest.mark.server  # the component plugin runs as a process (a gRPC server)

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROJECT, STACK = "lms-typescript", "staging"
IMAGE = "registry.example/app:1.0@sha256:" + "c" * 64
RESOURCES = {
    "cpuRequest": "100m",
    "cpuLimit": "1",
    "memoryRequest": "128Mi",
    "memoryLimit": "256Mi",
}
COLLECTION = {
    "name": "course_material", "vectorSize": 1536, "distance": "Cosine", "shardNumber": 6,
    "replicationFactor": 2, "hnswM": 16, "hnswEfConstruct": 128, "hnswPayloadM": 16,
    "partitionKey": "course_id",
}  # fmt: skip


def secret(value: Any) -> dict[str, Any]:
    """A secret on the wire, as the engine sends a value the caller marked secret."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


@pytest.fixture(scope="module")
def engine() -> Iterator[MockEngine]:
    engine = MockEngine(project=PROJECT, stack=STACK)
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def plugin(engine: MockEngine) -> Iterator[PluginProcess]:
    with tempfile.TemporaryFile() as log:
        process = PluginProcess(PROJECT_DIR, engine, log)
        yield process
        process.stop()


def token(name: str) -> str:
    return f"{PACKAGE_NAME}:index:{name}"


def worker(plugin: PluginProcess, name: str, **changes: Any) -> Construction:
    inputs = {
        "namespace": "lms", "image": IMAGE, "minReplicas": 1, "maxReplicas": 8,
        "resources": RESOURCES, "topic": "grading", "consumerGroup": "graders",
        "bootstrapServers": "b-1.msk:9098", "awsRegion": "eu-west-1",
        "egressTo": [{"cidr": "10.0.0.0/16", "ports": [9098, 5432]}],
        **changes,
    }  # fmt: skip
    return plugin.construct(token("Worker"), name, inputs)


@pytest.fixture(scope="module")
def grader(plugin: PluginProcess) -> Construction:
    return worker(plugin, "grader", lagThreshold=50, cpuTargetPercent=65)


@pytest.fixture(scope="module")
def api(plugin: PluginProcess) -> Construction:
    return plugin.construct(
        token("Microservice"),
        "lms-api",
        {
            "namespace": "lms", "image": IMAGE, "port": 8080, "minReplicas": 2,
            "maxReplicas": 10, "resources": RESOURCES,
            "ingressFrom": [{"namespace": "edge", "labels": {"app": "kong"}}],
            "queueDepthMetric": "inflight_requests", "queueDepthTarget": 20,
        },
    )  # fmt: skip


@pytest.fixture(scope="module")
def qdrant(plugin: PluginProcess) -> Construction:
    return plugin.construct(
        token("VectorStore"),
        "lms-vectors",
        {
            "namespace": "lms", "image": "qdrant/qdrant:v1.15.4-unprivileged", "replicas": 3,
            "storageGb": 50, "cpu": "2", "memory": "8Gi", "apiKey": secret("k" * 32),
            "collection": COLLECTION,
            "allowedClients": [{"namespace": "lms", "labels": {"app": "search"}}],
        },
    )  # fmt: skip


@pytest.fixture(scope="module")
def database(plugin: PluginProcess) -> Construction:
    return plugin.construct(
        token("Database"),
        "lms-db",
        {
            "vpcId": "vpc-0abc", "subnetIds": ["subnet-a", "subnet-b"],
            "availabilityZones": ["eu-west-1a", "eu-west-1b"],
            "allowedSecurityGroupIds": ["sg-0app"], "engineVersion": "17.4",
            "instanceClass": "db.t4g.medium", "replicaCount": 1, "slowStatementMs": 250,
            "backupRetentionDays": 7,
        },
    )  # fmt: skip


def test_the_plugin_serves_the_schema_the_package_publishes(plugin: PluginProcess):
    assert plugin.schema() == published_schema()
    assert plugin.version() == published_schema()["version"]


def test_keda_reads_the_lag_threshold_as_the_integer_it_was_given(grader: Construction):
    scaler = grader.one("kubernetes:keda.sh/v1alpha1:ScaledObject").inputs["spec"]
    kafka, cpu = scaler["triggers"]
    assert kafka["metadata"]["lagThreshold"] == "50"
    assert cpu["metadata"]["value"] == "65"


def test_a_list_of_args_with_lists_inside_reaches_the_network_policy(grader: Construction):
    # On the wire a port is a double whatever its type was (test_published_provider.py
    # checks the component receives ints); here: nothing nested is lost on the way.
    policy = grader.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]
    (vpc,) = [r for r in policy["egress"] if {"ipBlock": {"cidr": "10.0.0.0/16"}} in r["to"]]
    assert sorted(p["port"] for p in vpc["ports"]) == [5432, 9098]


def test_the_hpa_aims_for_the_queue_depth_as_an_integer_quantity(api: Construction):
    hpa = api.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]
    pods = next(m for m in hpa["metrics"] if m["type"] == "Pods")
    assert pods["pods"]["target"] == {"type": "AverageValue", "averageValue": "20"}


def test_qdrant_is_configured_with_integer_hnsw_settings(qdrant: Construction):
    config_map = qdrant.one("kubernetes:core/v1:ConfigMap", "lms-vectors-config")
    config = json.loads(config_map.inputs["data"]["production.yaml"])
    hnsw = config["storage"]["hnsw_index"]
    assert (hnsw["m"], hnsw["ef_construct"]) == (16, 128)
    assert type(hnsw["m"]) is int
    assert config["storage"]["collection"]["replication_factor"] == 2


def test_the_collection_layout_comes_back_with_its_distance_as_a_value(qdrant: Construction):
    layout = qdrant.state["collection"]
    assert layout["distance"] == "Cosine"
    assert layout["hnswM"] == 16
    assert set(layout) == set(COLLECTION)


def test_rds_logs_statements_slower_than_the_integer_given(database: Construction):
    group = database.one("aws:rds/parameterGroup:ParameterGroup").inputs
    values = {p["name"]: p["value"] for p in group["parameters"]}
    assert values["log_min_duration_statement"] == "250"


def test_each_component_registers_the_published_token_with_an_alias_from_the_old_one(
    grader: Construction, api: Construction, qdrant: Construction, database: Construction
):
    for construction, former in [
        (grader, "eduscale:compute:Worker"),
        (api, "eduscale:compute:Microservice"),
        (qdrant, "eduscale:compute:VectorStore"),
        (database, "eduscale:data:Database"),
    ]:
        component = construction.component()
        assert component.type == token(former.rsplit(":", 1)[1])
        assert component.alias_types == [former]
        assert component.urn.startswith(f"urn:pulumi:{STACK}::{PROJECT}::{component.type}::")


def test_an_integer_input_with_a_fraction_is_refused_naming_the_input(plugin: PluginProcess):
    with pytest.raises(grpc.RpcError) as error:
        worker(plugin, "half", lagThreshold=2.5)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = _property_errors(error.value)
    assert details == [("lagThreshold", "expected an integer, got 2.5")]


def test_an_unknown_enum_value_is_refused_naming_the_nested_input(plugin: PluginProcess):
    with pytest.raises(grpc.RpcError) as error:
        plugin.construct(
            token("VectorStore"),
            "bad-distance",
            {
                "namespace": "lms", "image": "qdrant/qdrant:v1.15.4-unprivileged",
                "replicas": 3, "storageGb": 50, "cpu": "2", "memory": "8Gi", "apiKey": "k",
                "collection": {**COLLECTION, "distance": "Manhattan"}, "allowedClients": [],
            },
        )  # fmt: skip
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    ((path, reason),) = _property_errors(error.value)
    assert path == "collection.distance"
    assert "'Manhattan' is not one of 'Cosine', 'Dot', 'Euclid'" in reason


def _property_errors(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (property path, reason) pairs an `InputPropertiesError` status carries."""
    from pulumi.runtime.proto import errors_pb2, status_pb2  # noqa: PLC0415

    metadata = dict(error.trailing_metadata() or ())
    status = status_pb2.Status.FromString(metadata["grpc-status-details-bin"])
    found: list[tuple[str, str]] = []
    for detail in status.details:
        errors = errors_pb2.InputPropertiesError()
        detail.Unpack(errors)
        found.extend((e.property_path, e.reason) for e in errors.errors)
    return found
