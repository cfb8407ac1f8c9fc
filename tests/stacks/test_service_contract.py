"""The stacks and the services agree: what the pods are given is what the services read.

The recorded graph holds each workload's ConfigMap (with a `<NAME>_FILE` path per secret)
and Secret; the Secret's values are masked, so stand-ins of the right shape are written to
files that the `_FILE` variables point at, as the mounted volume would hold them. Then
the services' own settings parser must accept the result, exactly as it would at
start-up in the pod.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import pytest

from components.document_store import DOCUMENTS_PREFIX
from contracts.secret_files import FILE_SUFFIX, secret_file
from infra.graph import Graph, RecordedResource
from scripts.environment_reference import WORKLOADS
from services.ai.document_files import storage_key
from services.ai.settings import AISettings
from services.analytics.settings import AnalyticsSettings
from services.auth.settings import AuthSettings
from services.generation_worker.settings import GenerationWorkerSettings
from services.generation_worker.worker import worker_settings
from services.indexer_worker.settings import IndexerWorkerSettings
from services.runtime.environment import WorkloadSettings
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import LoggingSettings, ServiceSettings
from stacks.sections import AiConfig
from stacks.service_env import RDS_CA_BUNDLE
from stacks.workloads.pod_env import SecretRef, section_env, workload_env

HTTP_SERVICES = ["auth", "course", "ai-orchestrator"]
STAND_INS = {
    "REDIS_URL": "rediss://:token@cache.internal:6379/0",
    "JWT_SECRET": "k" * 64,
}


def _named(graph: Graph, type_: str) -> dict[str, RecordedResource]:
    return {
        r.inputs["metadata"]["labels"]["app.kubernetes.io/name"]: r
        for r in graph.of_type(type_)
        if "labels" in r.inputs.get("metadata", {})
    }


_SECRET_FILES = Path(tempfile.mkdtemp(prefix="eduscale-secrets-"))
"""Stand-ins for the mounted secret files (the graph masks the values)."""


def environment_of(graph: Graph, name: str) -> dict[str, str]:
    """The pod's environment, its secret files faked at paths of their own."""
    plain = dict(_named(graph, "kubernetes:core/v1:ConfigMap")[name].inputs["data"])
    for variable, path in list(plain.items()):
        if variable.endswith(FILE_SUFFIX):
            secret = variable.removesuffix(FILE_SUFFIX)
            assert path == secret_file(secret)  # where the volume mounts it
            fake = _SECRET_FILES / f"{graph.stack}-{name}-{secret}"
            fake.write_text(STAND_INS.get(secret, "stand-in") + "\n")
            plain[variable] = str(fake)
    return plain


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_every_http_service_starts_from_what_the_stack_gives_it(stack_graph: Graph, name: str):
    settings = ServiceSettings.from_env(environment_of(stack_graph, name))
    assert settings.database_iam_auth
    assert settings.aws_region == "eu-west-1"
    assert settings.redis_cluster
    assert settings.cors_origins == (stack_graph.outputs["webUrl"],)
    assert f"sslrootcert={RDS_CA_BUNDLE}" in settings.database_url


@pytest.mark.parametrize("name", ["ai-orchestrator", "generation-worker", "indexer-worker"])
def test_the_ai_tier_reads_kafka_and_provider_settings_from_the_stack(
    stack_graph: Graph, name: str
):
    environ = environment_of(stack_graph, name)
    kafka = KafkaSettings.from_env(environ)
    assert kafka.security_protocol == "SASL_SSL"
    assert kafka.aws_region == "eu-west-1"
    ai = AISettings.from_env(environ)
    assert ai.qdrant_url is not None
    assert ai.qdrant_url.startswith("http")
    assert ai.openai_base_url == "https://api.openai.com/v1"
    # The chat model comes from `eduscale:ai.openaiModel`, not the services' own default.
    assert environ["OPENAI_MODEL"] == ai.openai_model == "gpt-4o-mini"


def test_the_stacks_default_chat_model_is_the_services_default():
    assert AiConfig().openai_model == AISettings().openai_model


@pytest.mark.parametrize("name", ["ai-orchestrator", "indexer-worker"])
def test_the_document_users_read_the_stacks_bucket_and_upload_limit(stack_graph: Graph, name: str):
    ai = AISettings.from_env(environment_of(stack_graph, name))
    assert ai.documents_bucket == stack_graph.outputs["documentsBucket"]
    assert ai.document_max_bytes == 20 * 1024 * 1024


def test_the_generation_worker_keeps_no_documents(stack_graph: Graph):
    assert (
        AISettings.from_env(environment_of(stack_graph, "generation-worker")).documents_bucket
        is None
    )


def test_documents_are_stored_where_the_roles_may_reach_them():
    assert storage_key(uuid.uuid4(), uuid.uuid4()).startswith(DOCUMENTS_PREFIX)


def test_the_generation_worker_starts_from_what_the_stack_gives_it(stack_graph: Graph):
    service, ai, kafka = worker_settings(environment_of(stack_graph, "generation-worker"))
    assert service.database_iam_auth
    assert not hasattr(service, "jwt_secret")  # it serves no clients: it holds no token key
    assert kafka.security_protocol == "SASL_SSL"
    assert ai.openai_model


def test_every_ai_workload_sees_the_same_course_collection(stack_graph: Graph):
    settings = {
        name: AISettings.from_env(environment_of(stack_graph, name))
        for name in ("ai-orchestrator", "generation-worker", "indexer-worker")
    }
    # Read from the stack (not the embedded default), and one collection for all three.
    assert all(s.course_layout is not None for s in settings.values())
    layouts = [s.layout for s in settings.values()]
    assert layouts[0] == layouts[1] == layouts[2]


@pytest.mark.parametrize("name", [*HTTP_SERVICES, "generation-worker", "indexer-worker"])
def test_credentials_travel_only_in_secrets(stack_graph: Graph, name: str):
    plain = _named(stack_graph, "kubernetes:core/v1:ConfigMap")[name].inputs["data"]
    secret = _named(stack_graph, "kubernetes:core/v1:Secret")[name].inputs["stringData"]
    assert "REDIS_URL" in secret
    assert not {"REDIS_URL", "JWT_SECRET", "QDRANT_API_KEY", "OPENAI_API_KEY"} & set(plain)
    assert ":" not in plain["DATABASE_URL"].split("@")[0].removeprefix(
        "postgresql://"
    )  # no password


def test_only_services_that_verify_tokens_hold_the_token_key(stack_graph: Graph):
    secrets = _named(stack_graph, "kubernetes:core/v1:Secret")
    holders = {
        name for name, secret in secrets.items() if "JWT_SECRET" in secret.inputs["stringData"]
    }
    assert holders == set(HTTP_SERVICES)


@pytest.mark.parametrize("name", [*HTTP_SERVICES, "generation-worker", "indexer-worker"])
def test_each_workload_may_log_in_only_as_the_app_user(stack_graph: Graph, name: str):
    roles = [
        r
        for r in stack_graph.of_type("aws:iam/role:Role")
        if f"-{name}-pods" in r.inputs.get("name", "")
    ]
    assert len(roles) == 1, [r.inputs.get("name") for r in stack_graph.of_type("aws:iam/role:Role")]
    policies = [
        json.loads(p.inputs["policy"])
        for p in stack_graph.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name == f"{name}-pods"
    ]
    logins = [s for p in policies for s in p["Statement"] if s["Action"] == "rds-db:connect"]
    (login,) = logins
    instances = stack_graph.of_type("aws:rds/instance:Instance")
    assert len(login["Resource"]) == len(instances)  # the writer and each replica
    assert all(arn.endswith("/eduscale_app") and ":dbuser:db-" in arn for arn in login["Resource"])


STACK_WORKLOADS = [name for name in WORKLOADS if name not in {"gateway", "schema-migration"}]
SET_BY_THE_WORKER_COMPONENT = {"KAFKA_TOPIC"}
"""The Worker component names the topic for operators; no process reads it."""


@pytest.mark.parametrize("name", STACK_WORKLOADS)
def test_every_rendered_env_validates_against_its_settings_class(stack_graph: Graph, name: str):
    settings_class = WORKLOADS[name][1]
    environ = environment_of(stack_graph, name)
    settings = settings_class.from_env(environ)  # what the process does at start
    assert settings is not None
    declared = {v.name for v in settings_class.variables()}
    secrets = {v.name for v in settings_class.variables() if v.secret}
    given = {
        variable.removesuffix(FILE_SUFFIX) if variable.endswith(FILE_SUFFIX) else variable
        for variable in environ
    }
    assert given - declared == SET_BY_THE_WORKER_COMPONENT & set(environ)
    # Every secret the pod holds comes as a file; none as a value.
    assert {v for v in environ if v.endswith(FILE_SUFFIX)} == {
        f"{s}{FILE_SUFFIX}" for s in secrets & given
    }
    assert not secrets & set(environ)


def test_the_stacks_refuse_a_variable_the_workload_does_not_read():
    with pytest.raises(TypeError, match="AuthSettings reads no ANALYTICS_URL"):
        workload_env(AuthSettings, section_env(AnalyticsSettings, url="http://ch:8123/db"))
    with pytest.raises(TypeError, match="ServiceSettings has no field redis"):
        section_env(ServiceSettings, redis="rediss://cache:6379/0")
    with pytest.raises(TypeError, match="LOG_LEVEL is not a secret"):
        section_env(LoggingSettings, log_level=SecretRef("analytics", "password"))


def test_values_are_rendered_as_the_services_parse_them():
    rendered = section_env(
        ServiceSettings,
        database_iam_auth=True,
        cors_origins=("https://a.example", "https://b.example"),
        jwt_ttl_seconds=900,
        read_your_writes_seconds=2.5,
        database_replica_urls=None,
    )
    assert rendered.plain == {
        "DATABASE_IAM_AUTH": "true",
        "CORS_ORIGINS": "https://a.example,https://b.example",
        "JWT_TTL_SECONDS": "900",
        "READ_YOUR_WRITES_SECONDS": "2.5",
    }


@pytest.mark.parametrize("workload", [GenerationWorkerSettings, IndexerWorkerSettings])
def test_a_worker_reads_nothing_of_serving_clients(workload: type[WorkloadSettings]):
    read = {variable.name for variable in workload.variables()}
    assert {"DATABASE_URL", "REDIS_URL", "DATABASE_POOL_MAX_SIZE", "LOG_LEVEL"} <= read
    assert read.isdisjoint({"JWT_SECRET", "CORS_ORIGINS", "MAX_BODY_BYTES", "LOGIN_MAX_FAILURES"})
