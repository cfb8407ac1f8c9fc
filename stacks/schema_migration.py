"""The platform's schema step: `eduscale migrate` as a Job every database client waits for.

`migration_environment` is the one place the Job's environment is written, rendered by the
class `eduscale migrate` reads (`services.runtime.schema_job.SchemaJobSettings`), and a test
runs the migrator with exactly this environment against a real PostgreSQL.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi

from components.database import Database
from components.irsa import service_account_role
from components.schema_migration import SchemaMigration
from components.workload import EgressRuleArgs
from services.runtime.migrations import MIGRATIONS_DIR, load_migrations
from services.runtime.schema_job import SchemaJobSettings
from stacks.access import master_secret_policy
from stacks.service_env import database_url
from stacks.workloads.pod_env import section_env

__all__ = ["MIGRATE_ARGS", "build_schema_migration", "migration_environment", "migrations_revision"]

MIGRATE_ARGS = ("migrate",)
"""The image's command line for the schema step: `eduscale migrate`."""
_HTTPS_OUT: EgressRuleArgs = {"cidr": "0.0.0.0/0", "ports": [443]}
"""STS (for IRSA) and Secrets Manager, through NAT."""


def migrations_revision(directory: Path = MIGRATIONS_DIR) -> str:
    """SHA-256 over the migration files (name and content): new migrations, new Job."""
    digest = hashlib.sha256()
    for migration in load_migrations(directory):
        digest.update(f"{migration.version:04d}_{migration.name}:{migration.checksum}\n".encode())
    return digest.hexdigest()


def migration_environment(
    *,
    database_url: pulumi.Input[str],
    master_secret_arn: pulumi.Input[str],
    region: str,
) -> dict[str, pulumi.Input[str]]:
    """The migrator's variables: the writer (no user in the URL), the secret, the region."""
    return section_env(
        SchemaJobSettings,
        database_url=database_url,
        master_secret_arn=master_secret_arn,
        region=region,
    ).plain


def build_schema_migration(
    *,
    database: Database,
    image: pulumi.Input[str],
    namespace: pulumi.Input[str],
    service_account_namespace: str,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    vpc_cidr: str,
    region: str,
    deadline_seconds: int,
    ttl_seconds_after_finished: int,
    opts: pulumi.ResourceOptions,
) -> SchemaMigration:
    """Declare the Job (and its IRSA role) that migrates `database` with `image`."""
    name = "schema-migration"
    policy = pulumi.Output.all(
        database.master_secret_arn, database.master_secret_kms_key_arn
    ).apply(lambda values: master_secret_policy(values[0], values[1], region))
    role = service_account_role(
        name,
        "pods",
        oidc_provider_arn=oidc_provider_arn,
        oidc_issuer=oidc_issuer,
        namespace=service_account_namespace,
        service_account=name,
        policy=policy,
        parent=None,
    )
    return SchemaMigration(
        name,
        {
            "namespace": namespace,
            "image": image,
            "args": list(MIGRATE_ARGS),
            "env": migration_environment(
                database_url=database_url(database.writer_endpoint, database.port, user=None),
                master_secret_arn=database.master_secret_arn,
                region=region,
            ),
            "revision": migrations_revision(),
            "service_account_role_arn": role.arn,
            "egress_to": [{"cidr": vpc_cidr, "ports": [5432]}, _HTTPS_OUT],
            "deadline_seconds": deadline_seconds,
            "ttl_seconds_after_finished": ttl_seconds_after_finished,
        },
        opts=opts,
    )
