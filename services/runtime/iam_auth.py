"""IAM database authentication: a fresh RDS auth token as each new connection's password.

In AWS the services hold no database password at all. Their pods' IRSA role may
`rds-db:connect` as the application user, and boto3 signs a 15-minute token locally from
the role's credentials (no network call per token). The pool asks for new connection
arguments each time it connects (psycopg_pool >= 3.3 accepts a callable), so tokens never
go stale in a long-lived pool. boto3 is the AWS SDK: it already does the credential chain
(web identity, refresh) and SigV4 presigning that this would otherwise re-implement.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from psycopg.conninfo import conninfo_to_dict

__all__ = ["iam_token_kwargs"]


def iam_token_kwargs(
    conninfo: str, region: str, base: dict[str, Any]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Connection arguments for `conninfo` with a newly signed token as the password."""
    import boto3  # noqa: PLC0415 - only deployments with IAM auth load the SDK

    params = conninfo_to_dict(conninfo)
    host, user = str(params.get("host", "")), str(params.get("user", ""))
    port = int(params.get("port") or 5432)
    client = boto3.client("rds", region_name=region)

    async def kwargs() -> dict[str, Any]:
        token = await anyio.to_thread.run_sync(
            lambda: client.generate_db_auth_token(
                DBHostname=host, Port=port, DBUsername=user, Region=region
            )
        )
        return {**base, "password": token}

    return kwargs
