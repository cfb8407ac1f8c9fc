"""IAM policies of the workloads: only the Kafka topics and database login each job needs.

Databases are reached only as the application user, with IAM database authentication.

MSK IAM authorisation names topics and groups by ARNs derived from the cluster's ARN
(`...:cluster/<name>/<uuid>` -> `...:topic/<name>/<uuid>/<topic>`).
"""

from __future__ import annotations

import json

from services.topics import WORK_TOPICS, dlq_name

__all__ = ["database_login_policy", "kafka_client_policy", "with_database_login"]


def _arn(cluster_arn: str, kind: str, name: str) -> str:
    return cluster_arn.replace(":cluster/", f":{kind}/", 1) + f"/{name}"


def kafka_client_policy(cluster_arn: str, *, produce: bool, consume: str | None, group: str) -> str:
    """Policy for a client that produces work (`produce`) and/or consumes topic `consume`.

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
    writable = [t.name for t in WORK_TOPICS] if produce else []
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
