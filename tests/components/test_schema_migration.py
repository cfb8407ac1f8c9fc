"""The schema step: a Job that runs `eduscale migrate` before any database client rolls out."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg
import pytest
from conftest import run_program
from moto.server import ThreadedMotoServer
from service_harness import POSTGRES_URL

from components.schema_migration import SchemaMigration, SchemaMigrationArgs
from components.workload import SCHEMA_ANNOTATION
from infra.graph import Graph, RecordedResource
from services.runtime.migrations import MIGRATIONS_DIR, load_migrations
from stacks.schema_migration import MIGRATE_ARGS, migration_environment, migrations_revision

DATABASE_CLIENTS = ("auth", "course", "ai-orchestrator", "generation-worker", "indexer-worker")
JOB = "kubernetes:batch/v1:Job"
IMAGE = "registry.example/eduscale:v1@sha256:" + "d" * 64
REGION = "eu-west-1"


def migration(**changes: Any) -> Graph:
    args: SchemaMigrationArgs = {
        "namespace": "team",
        "image": IMAGE,
        "args": ["migrate"],
        "env": {"DATABASE_URL": "postgresql://writer:5432/app", "AWS_REGION": REGION},
        "revision": "0123456789abcdef0123",
        "service_account_role_arn": "arn:aws:iam::123456789012:role/migrator",
        "egress_to": [{"cidr": "10.0.0.0/16", "ports": [5432]}],
    }
    args.update(changes)  # type: ignore[typeddict-item]
    return run_program(lambda: SchemaMigration("schema", args))


def job_of(graph: Graph) -> dict[str, Any]:
    return graph.one(JOB).inputs


def test_the_job_is_named_after_the_migrations_and_runs_once_then_expires():
    job = job_of(migration(deadline_seconds=600, ttl_seconds_after_finished=3600))
    assert job["metadata"]["name"] == "schema-0123456789ab"
    spec = job["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == 3600
    # Pulumi waits on the Job longer than the cluster lets it run: the deadline decides.
    assert int(job["metadata"]["annotations"]["pulumi.com/timeoutSeconds"]) > 600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"] == ["migrate"]
    assert container["image"] == IMAGE
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "DATABASE_URL": "postgresql://writer:5432/app",
        "AWS_REGION": REGION,
    }


def test_the_job_pod_is_restricted_and_fenced():
    graph = migration()
    pod = job_of(graph)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = pod["containers"][0]["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    account = graph.one("kubernetes:core/v1:ServiceAccount").inputs
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/migrator"
    }
    policy = graph.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == []  # nothing connects to a migrator
    reachable = [rule["to"][0].get("ipBlock", {}).get("cidr") for rule in policy["egress"]]
    assert reachable == [None, "10.0.0.0/16"]  # DNS, then the database only


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"revision": "abc"}, "revision must be a hash"),
        ({"revision": "0123456789ab-cdef"}, "revision must be a hash"),
        ({"deadline_seconds": 5}, "deadline_seconds must be between 60 and 86400"),
        ({"backoff_limit": -1}, "must not be negative"),
        ({"image": "registry.example/eduscale:v1"}, "must be pinned by digest"),
    ],
)
def test_bad_args_are_refused(changes: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        migration(**changes)


def test_a_new_migration_makes_a_new_revision_and_the_same_files_the_same(tmp_path: Path):
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    assert migrations_revision(copy) == migrations_revision()
    next_version = len(load_migrations(copy)) + 1
    (copy / f"{next_version:04d}_more.sql").write_text("SELECT 1;\n")
    assert migrations_revision(copy) != migrations_revision()


# --- in the stacks ----------------------------------------------------------------------


def deployment(graph: Graph, name: str) -> RecordedResource:
    (found,) = [
        d
        for d in graph.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["name"] == name
    ]
    return found


def test_every_database_client_waits_for_the_schema_job(stack_graph: Graph):
    job = stack_graph.one(JOB)
    name = job.inputs["metadata"]["name"]
    assert name == f"schema-migration-{migrations_revision()[:12]}"
    assert stack_graph.outputs["schemaMigrationJob"] == name
    for client in DATABASE_CLIENTS:
        found = deployment(stack_graph, client)
        assert job.urn in found.dependencies, client
        template = found.inputs["spec"]["template"]
        assert template["metadata"]["annotations"] == {SCHEMA_ANNOTATION: name}
    # The analytics sink never connects to PostgreSQL: it does not wait for the schema.
    assert job.urn not in deployment(stack_graph, "analytics-sink").dependencies


def test_the_job_runs_the_services_image_as_the_tested_command(stack_graph: Graph):
    (container,) = stack_graph.one(JOB).inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == stack_graph.outputs["servicesImage"]
    assert container["args"] == list(MIGRATE_ARGS)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == migration_environment(
        database_url=env["DATABASE_URL"],
        master_secret_arn=stack_graph.outputs["databaseMasterSecretArn"],
        region=REGION,
    )
    # The writer, verified TLS, no user: the credentials come from the secret.
    assert re.fullmatch(
        r"postgresql://[a-z0-9.-]+\.rds\.amazonaws\.com:5432/eduscale"
        r"\?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle\.pem",
        env["DATABASE_URL"],
    )


def role_policies(graph: Graph) -> dict[str, dict[str, Any]]:
    return {
        policy.name: json.loads(policy.inputs["policy"])
        for policy in graph.of_type("aws:iam/rolePolicy:RolePolicy")
    }


def test_only_the_schema_job_may_read_the_master_secret_and_nothing_else(stack_graph: Graph):
    secret = stack_graph.outputs["databaseMasterSecretArn"]
    policies = role_policies(stack_graph)
    readers = [name for name, doc in policies.items() if secret in json.dumps(doc)]
    assert readers == ["schema-migration-pods"]
    statements = policies["schema-migration-pods"]["Statement"]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("secretsmanager:GetSecretValue", secret),
        ("kms:Decrypt", statements[1]["Resource"]),
    ]
    assert statements[1]["Resource"].startswith("arn:aws:kms:")
    assert statements[1]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}
    }


# --- the command, run as the Job runs it --------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def secrets_manager() -> Iterator[str]:
    """A Secrets Manager on loopback (moto's server speaks the AWS API over HTTP)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def put_secret(endpoint: str, value: str) -> str:
    client = boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return str(
        client.create_secret(Name=f"rds!db-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]
    )


@pytest.fixture
def owned_database() -> Iterator[tuple[str, str]]:
    """An empty database owned by a role of its own: (URL without a user, the owner)."""
    owner = f"owner_{uuid.uuid4().hex[:8]}"
    name = f"eduscale_job_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{owner}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    parts = urlsplit(POSTGRES_URL)
    host = parts.netloc.rpartition("@")[2]
    try:
        yield urlunsplit(parts._replace(netloc=host, path=f"/{name}")), owner
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{owner}"')


def run_job(
    env: dict[str, str], endpoint: str, args: list[str]
) -> subprocess.CompletedProcess[str]:
    """`eduscale <args>` in a process whose environment is only the Job's (plus AWS's)."""
    eduscale = Path(sys.executable).parent / "eduscale"
    return subprocess.run(
        [str(eduscale), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={
            "PATH": os.environ["PATH"],
            **AWS_TEST_CREDENTIALS,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            **env,
        },
    )


def job_env(url: str, secret_arn: str) -> dict[str, str]:
    env = migration_environment(database_url=url, master_secret_arn=secret_arn, region=REGION)
    return {key: str(value) for key, value in env.items()}


@pytest.mark.server  # PostgreSQL and moto's server
def test_the_job_migrates_as_the_master_user_read_from_its_secret(
    secrets_manager: str, owned_database: tuple[str, str], prod_graph: Graph
):
    url, owner = owned_database
    arn = put_secret(secrets_manager, json.dumps({"username": owner, "password": "unused"}))
    (container,) = prod_graph.one(JOB).inputs["spec"]["template"]["spec"]["containers"]
    result = run_job(job_env(url, arn), secrets_manager, container["args"])
    assert result.returncode == 0, result.stderr
    assert f"{len(load_migrations())} migration(s) applied" in result.stderr
    with psycopg.connect(url, user=owner) as conn:
        versions = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        table_owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'users'"
        ).fetchone()
    assert versions == (len(load_migrations()),)
    assert table_owner == (owner,)  # the secret's user did the work, not the URL's
    again = run_job(job_env(url, arn), secrets_manager, container["args"])
    assert again.returncode == 0, again.stderr
    assert "The schema is up to date" in again.stderr


@pytest.mark.server  # PostgreSQL and moto's server
def test_a_secret_it_cannot_read_fails_the_job_with_one_line(
    secrets_manager: str, owned_database: tuple[str, str]
):
    url, _ = owned_database
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:rds!db-gone"
    result = run_job(job_env(url, missing), secrets_manager, list(MIGRATE_ARGS))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()[1:]
    assert line.startswith(f"eduscale: cannot read the master secret {missing}: ")
    assert "ResourceNotFoundException" in line


@pytest.mark.server  # PostgreSQL and moto's server
def test_a_secret_without_credentials_fails_the_job_without_echoing_it(
    secrets_manager: str, owned_database: tuple[str, str]
):
    url, _ = owned_database
    arn = put_secret(secrets_manager, json.dumps({"token": "s3cr3t-value"}))
    result = run_job(job_env(url, arn), secrets_manager, list(MIGRATE_ARGS))
    assert result.returncode == 1
    assert "does not hold a JSON object with username and password" in result.stderr
    assert "s3cr3t-value" not in result.stderr


@pytest.mark.server  # PostgreSQL and moto's server
def test_a_failing_migration_fails_the_job(secrets_manager: str, owned_database: tuple[str, str]):
    url, owner = owned_database
    arn = put_secret(secrets_manager, json.dumps({"username": owner, "password": "unused"}))
    with psycopg.connect(url, user=owner, autocommit=True) as conn:
        # A table the first migration wants to create is in the way: it cannot apply.
        conn.execute("CREATE TABLE users (unrelated integer)")
    result = run_job(job_env(url, arn), secrets_manager, list(MIGRATE_ARGS))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "eduscale: migration 0001_users failed, and none of it was applied: "
        'DuplicateTable: relation "users" already exists'
    )
    with psycopg.connect(url, user=owner) as conn:
        applied = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()
        rows = (
            conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
            if applied == (1,)
            else (0,)
        )
    assert rows == (0,)  # nothing half-applied: the pods keep the old schema
