"""IAM roles for Kubernetes service accounts (IRSA).

A pod gets AWS permissions only through the role bound to its own service account, never
through the node's instance role: the trust policy names the cluster's OIDC issuer, the
namespace and the service account, so no other pod can assume it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags

__all__ = ["service_account_role"]


def service_account_role(
    component: str,
    purpose: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy: pulumi.Input[str] | None = None,
    managed_policy_arns: Sequence[str] = (),
    parent: pulumi.Resource | None,
) -> aws.iam.Role:
    """Declare a role that only `namespace/service_account` of this cluster can assume."""
    role_name = physical_name(component, purpose, max_length=64)
    issuer_host = pulumi.Output.from_input(oidc_issuer).apply(
        lambda url: url.removeprefix("https://")
    )
    trust: pulumi.Output[str] = pulumi.Output.all(oidc_provider_arn, issuer_host).apply(
        lambda values: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": values[0]},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{values[1]}:sub": (
                                    f"system:serviceaccount:{namespace}:{service_account}"
                                ),
                                f"{values[1]}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )
    )
    role = aws.iam.Role(
        f"{component}-{purpose}",
        name=role_name,
        assume_role_policy=trust,
        tags=standard_tags(component, role_name),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    if policy is not None:
        aws.iam.RolePolicy(
            f"{component}-{purpose}",
            role=role.id,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=parent),
        )
    for arn in managed_policy_arns:
        aws.iam.RolePolicyAttachment(
            f"{component}-{purpose}-{arn.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=arn,
            opts=pulumi.ResourceOptions(parent=parent),
        )
    return role
