"""The environment contract between the stacks and the services.

`services/runtime/settings.py` reads these variables; this module is the only place the
infrastructure writes them, so the two sides are checked against each other by a test
(`tests/stacks/test_service_contract.py`). No database password exists: the services log in as
APP_USER with IAM tokens their IRSA role may sign, over TLS verified against the RDS CA
bundle baked into the image. Redis credentials and the token key travel as Kubernetes
Secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_random as random

from components.cache import Cache
from components.database import APP_USER, Database
from stacks.config import StackConfig

__all__ = [
    "DATABASE_NAME",
    "RDS_CA_BUNDLE",
    "ServiceEnvironment",
    "core_environment",
    "database_url",
    "token_key",
]

RDS_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
"""Where the image keeps Amazon RDS's CA bundle (see the Dockerfile)."""
DATABASE_NAME = "eduscale"
"""The platform's database on the writer (and its replicas)."""
_TOKEN_KEY_LENGTH = 64


@dataclass(frozen=True)
class ServiceEnvironment:
    """Variables for a ConfigMap (`plain`) and for a Secret (`secret`)."""

    plain: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    secret: dict[str, pulumi.Input[str]] = field(default_factory=dict)


def token_key(opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The HS256 key Auth signs access tokens with and every service verifies them with.

    Generated once per stack and kept (encrypted) in the stack's state; no human sees it.
    """
    key = random.RandomPassword(
        "access-token-key", length=_TOKEN_KEY_LENGTH, special=False, opts=opts
    )
    return pulumi.Output.secret(key.result)


def database_url(
    host: pulumi.Input[str], port: pulumi.Input[int], *, user: str | None = APP_USER
) -> pulumi.Output[str]:
    """The libpq URL of the platform's database on `host`, TLS verified against the RDS CA.

    `user` None leaves the user out, for a client that adds its credentials itself.
    """
    return pulumi.Output.format(
        "postgresql://{0}{1}:{2}/{3}?sslmode=verify-full&sslrootcert={4}",
        f"{user}@" if user else "",
        host,
        port,
        DATABASE_NAME,
        RDS_CA_BUNDLE,
    )


def core_environment(
    config: StackConfig,
    *,
    database: Database,
    cache: Cache,
    token_secret: pulumi.Input[str],
    reads_replicas: bool,
) -> ServiceEnvironment:
    """What every service needs: the writer, Redis, the token key, CORS and logging.

    `reads_replicas` adds DATABASE_REPLICA_URLS (the replicas-only reader endpoint) for a
    service that serves catalogue reads and reports; others never learn the replicas.
    """
    services = config.services
    plain: dict[str, pulumi.Input[str]] = {
        "APP_ENV": pulumi.get_stack(),
        "DATABASE_URL": database_url(database.writer_endpoint, database.port),
        "DATABASE_IAM_AUTH": "true",
        "AWS_REGION": config.region,
        "REDIS_CLUSTER": "true",
        "JWT_TTL_SECONDS": str(services.jwt_ttl_seconds),
        "CORS_ORIGINS": f"https://{config.edge.domain}",
        "LOG_LEVEL": services.log_level,
    }
    if reads_replicas and config.database.replica_count > 0:
        plain["DATABASE_REPLICA_URLS"] = database_url(database.reader_endpoint, database.port)
    redis_url = pulumi.Output.all(cache.auth_token, cache.configuration_endpoint, cache.port).apply(
        lambda parts: f"rediss://:{quote(str(parts[0]), safe='')}@{parts[1]}:{parts[2]}/0"
    )
    secret: dict[str, pulumi.Input[str]] = {
        "REDIS_URL": pulumi.Output.secret(redis_url),
        "JWT_SECRET": token_secret,
    }
    return ServiceEnvironment(plain=plain, secret=secret)
