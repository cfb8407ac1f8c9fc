"""Each workload's IRSA role: exactly the database login, topics and documents its job uses."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.document_store import DOCUMENTS_PREFIX
from components.irsa import service_account_role
from stacks.access import (
    database_login_policy,
    kafka_client_policy,
    with_database_login,
    with_document_access,
)
from stacks.workloads.context import APP_NAMESPACE, WorkloadContext

__all__ = ["workload_role"]


def workload_role(
    context: WorkloadContext,
    name: str,
    *,
    kafka: tuple[tuple[str, ...], str | None] | None,
    documents: tuple[str, ...] | None = None,
    database: bool = True,
) -> aws.iam.Role:
    """An IRSA role for `name`: database login, and topics and documents if its job uses them.

    `kafka` is (topics it writes, topic it consumes): exactly the topics its job needs.
    `documents` is the S3 actions it needs on the objects under `documents/`.
    `database` is False for a pod that never connects to PostgreSQL.
    """
    event_bus, db = context.event_bus, context.database
    if kafka is None:
        policy = db.app_user_arns.apply(database_login_policy)
    elif not database:
        produce, consume = kafka
        policy = event_bus.cluster_arn.apply(
            lambda arn: kafka_client_policy(arn, produce=produce, consume=consume, group=name)
        )
    else:
        produce, consume = kafka
        policy = pulumi.Output.all(event_bus.cluster_arn, db.app_user_arns).apply(
            lambda values: with_database_login(
                kafka_client_policy(values[0], produce=produce, consume=consume, group=name),
                values[1],
            )
        )
    if documents is not None:
        actions, store, region = documents, context.documents, context.config.region
        policy = pulumi.Output.all(policy, store.bucket_arn, store.kms_key_arn).apply(
            lambda values: with_document_access(
                values[0],
                bucket_arn=values[1],
                key_arn=values[2],
                prefix=DOCUMENTS_PREFIX,
                actions=actions,
                region=region,
            )
        )
    return service_account_role(
        name,
        "pods",
        oidc_provider_arn=context.cluster.oidc_provider_arn,
        oidc_issuer=context.cluster.oidc_issuer,
        namespace=APP_NAMESPACE,
        service_account=name,
        policy=policy,
        parent=None,
    )
