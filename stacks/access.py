"""IAM policies of the workloads: only the topics, database login and documents each needs.

Databases are reached only as the application user, with IAM database authentication.

Uploaded documents: the object actions a job needs, on the `documents/` prefix of the
bucket only (no bucket settings), and the bucket's KMS key for exactly the operations
those actions imply (GenerateDataKey to write, Decrypt to read), only through S3
(`kms:ViaService`). A role that reads may also list the `documents/` prefix: S3 answers a
read of a missing key with 404 NoSuchKey only to a caller that may list the bucket, and
with 403 AccessDenied to any other, so without it the indexer could not tell "the file is
gone" (a permanent failure) from "we may not read it" (our misconfiguration).

MSK IAM authorisation names topics and groups by ARNs derived from the cluster's ARN
(`...:cluster/<name>/<uuid>` -> `...:topic/<name>/<uuid>/<topic>`).
"""

from __future__ import annotations

import json

from contracts.topics import dlq_name

__all__ = [
    "DOCUMENT_READ",
    "DOCUMENT_WRITE",
    "database_login_policy",
    "kafka_client_policy",
    "master_secret_policy",
    "with_database_login",
    "with_document_access",
]

DOCUMENT_READ = ("s3:GetObject",)
"""What a consumer of uploaded documents may do: read a file (the indexer never deletes)."""
DOCUMENT_WRITE = ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")
"""What the service that takes uploads may do: store, read back and delete files."""


def _arn(cluster_arn: str, kind: str, name: str) -> str:
    return cluster_arn.replace(":cluster/", f":{kind}/", 1) + f"/{name}"


def kafka_client_policy(
    cluster_arn: str, *, produce: tuple[str, ...], consume: str | None, group: str
) -> str:
    """Policy for a client that writes the topics `produce` and/or consumes topic `consume`.

    A consumer may also write its topic's dead-letter twin: that is where it parks what it
    cannot process.
    """
    statements: list[dict[str, object]] = [
        {
            "Effect": "Allow",
            "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
            "Resource": cluster_arn,
        }
    ]
    writable = list(produce)
    if consume is not None:
        writable.append(dlq_name(consume))
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                "Resource": _arn(cluster_arn, "topic", consume),
            }
        )
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                "Resource": _arn(cluster_arn, "group", group),
            }
        )
    if writable:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                "Resource": [_arn(cluster_arn, "topic", topic) for topic in writable],
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _login_statement(user_arns: list[str]) -> dict[str, object]:
    return {"Effect": "Allow", "Action": "rds-db:connect", "Resource": user_arns}


def database_login_policy(user_arns: list[str]) -> str:
    """Policy to log in as the application user on the writer and each replica, nothing more."""
    return json.dumps({"Version": "2012-10-17", "Statement": [_login_statement(user_arns)]})


def with_database_login(policy: str, user_arns: list[str]) -> str:
    """`policy` plus the database login statement."""
    document = json.loads(policy)
    document["Statement"].append(_login_statement(user_arns))
    return json.dumps(document)


def with_document_access(
    policy: str,
    *,
    bucket_arn: str,
    key_arn: str,
    prefix: str,
    actions: tuple[str, ...],
    region: str,
) -> str:
    """`policy` plus `actions` on the objects under `prefix`, and the key uses they need.

    A reader also gets `s3:ListBucket` on the bucket, for keys under `prefix` only (see the
    module's docstring for why).
    """
    key_actions = []
    if "s3:PutObject" in actions:
        key_actions.append("kms:GenerateDataKey")
    if {"s3:PutObject", "s3:GetObject"} & set(actions):
        key_actions.append("kms:Decrypt")
    document = json.loads(policy)
    document["Statement"].append(
        {
            "Sid": "DocumentObjects",
            "Effect": "Allow",
            "Action": list(actions),
            "Resource": f"{bucket_arn}/{prefix}*",
        }
    )
    if "s3:GetObject" in actions:
        document["Statement"].append(
            {
                "Sid": "DocumentListing",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": f"{prefix}*"}},
            }
        )
    if key_actions:
        document["Statement"].append(
            {
                "Sid": "DocumentKey",
                "Effect": "Allow",
                "Action": key_actions,
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            }
        )
    return json.dumps(document)


def master_secret_policy(secret_arn: str, key_arn: str, region: str) -> str:
    """Policy to read the database's master secret, and decrypt it through Secrets Manager.

    Only the schema Job holds it: changing the schema needs the database's owner.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "MasterSecret",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": secret_arn,
                },
                {
                    "Sid": "MasterSecretKey",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key_arn,
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
                    },
                },
            ],
        }
    )
