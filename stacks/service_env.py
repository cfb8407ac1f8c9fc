"""The values the stacks give the services that are not a component's output.

The database URL (no password exists: the services log in as APP_USER with IAM tokens
their IRSA role may sign, over TLS verified against the RDS CA bundle baked into the
image) and the token key. The pods' environments are rendered from the services'
settings classes in `stacks/workloads/`.
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

from components.database import APP_USER

__all__ = ["DATABASE_NAME", "RDS_CA_BUNDLE", "database_url", "token_key"]

RDS_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
"""Where the image keeps Amazon RDS's CA bundle (see the Dockerfile)."""
DATABASE_NAME = "eduscale"
"""The platform's database on the writer (and its replicas)."""
_TOKEN_KEY_LENGTH = 64


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
