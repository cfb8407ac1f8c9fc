"""What `eduscale migrate` connects with: the writer, as the RDS-managed master user.

The schema step runs as a Kubernetes Job before any new pod rolls out. Changing the
schema needs the database's owner, and on RDS that is the master user, whose password
RDS generates, keeps in Secrets Manager and rotates: the Job reads it at start through
its own IAM role (IRSA, allowed to read exactly that secret), so the password is never a
Pulumi config value, a Kubernetes Secret or an environment variable. The services
themselves log in as the application user with IAM tokens (`iam_auth`); creating that
user is one of the migrations.

The stacks render the Job's environment with these variable names
(`stacks/schema_migration.py`); a developer runs `eduscale migrate` with DATABASE_URL only.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from psycopg.conninfo import make_conninfo
from pydantic import AfterValidator

from services.runtime.environment import EnvironmentSettings, setting

__all__ = [
    "DATABASE_URL",
    "MASTER_SECRET_ARN",
    "REGION",
    "MasterSecretError",
    "SchemaJobSettings",
    "SchemaTarget",
]

DATABASE_URL = "DATABASE_URL"
"""The writer, as a libpq URL; without a user when the master secret supplies it."""
MASTER_SECRET_ARN = "DATABASE_MASTER_SECRET_ARN"  # noqa: S105 - a name, not a secret
"""The RDS-managed secret (`{"username": ..., "password": ...}`) to log in with."""
REGION = "AWS_REGION"
"""Where the secret is."""


class MasterSecretError(RuntimeError):
    """The master secret could not be read or does not hold credentials."""


def _arn(value: str | None) -> str | None:
    if value is not None and not value.startswith("arn:"):
        message = "use a Secrets Manager ARN (arn:aws:secretsmanager:...)"
        raise ValueError(message)
    return value


class SchemaJobSettings(EnvironmentSettings):
    """The schema-migration Job's environment (`eduscale migrate`)."""

    database_url: str = setting(
        DATABASE_URL,
        description="The writer, as a libpq URL; without a user when the master secret "
        "supplies it (`--database-url` wins).",
        allowed="a libpq URL (or pass --database-url)",
    )
    master_secret_arn: Annotated[str | None, AfterValidator(_arn)] = setting(
        MASTER_SECRET_ARN,
        None,
        description="The RDS-managed secret holding the master user's credentials; unset, "
        "DATABASE_URL carries them.",
        allowed="a Secrets Manager ARN",
    )
    region: str | None = setting(REGION, None, description="Where the master secret is.")


@dataclass(frozen=True)
class SchemaTarget:
    """The database to migrate and, in AWS, the secret holding its owner's credentials."""

    database_url: str
    master_secret_arn: str | None = None
    region: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], database_url: str | None = None
    ) -> "SchemaTarget":
        """Read the Job's variables; `database_url` (from `--database-url`) wins."""
        if database_url:
            environ = {**environ, DATABASE_URL: database_url}
        settings = SchemaJobSettings.from_env(environ)
        return cls(settings.database_url, settings.master_secret_arn, settings.region)

    def conninfo(self) -> str:
        """The connection string: the URL, plus the master credentials when a secret is set."""
        if self.master_secret_arn is None:
            return self.database_url
        user, password = _master_credentials(self.master_secret_arn, self.region)
        return make_conninfo(self.database_url, user=user, password=password)


def _master_credentials(secret_arn: str, region: str | None) -> tuple[str, str]:
    # The AWS SDK loads in ~0.3 s: only the schema Job pays for it, not every command line.
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        client = boto3.client("secretsmanager", region_name=region)
        response = client.get_secret_value(SecretId=secret_arn)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise MasterSecretError(
            f"cannot read the master secret {secret_arn}: {error.get('Code', 'error')}: "
            f"{error.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:  # no credentials, no region, endpoint unreachable
        raise MasterSecretError(f"cannot read the master secret {secret_arn}: {exc}") from None
    try:
        document = json.loads(response["SecretString"])
        return str(document["username"]), str(document["password"])
    except (KeyError, TypeError, ValueError):
        raise MasterSecretError(
            f"the master secret {secret_arn} does not hold a JSON object with username and "
            "password (is it the one RDS manages for the instance?)"
        ) from None
