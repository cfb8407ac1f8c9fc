"""Rules for IAM identity policies: no dangerous mutation on every resource, unconditioned.

A role that may open any security group, pass any role or rewrite any policy is one
compromised pod away from owning the account's network or its permissions. The rule reads
every policy document the stack declares for an identity (inline role, user and group
policies, customer-managed policies, a role's `inlinePolicies`) and reports each Allow
statement that grants one of the actions below on every resource without a condition
that narrows *which* resources (a resource tag, the VPC, the group id, the service a role
is passed to). A condition on something else (TLS, the caller's IP) narrows nothing.

Actions are matched as IAM matches them: case-insensitive, with `*` and `?` wildcards,
so `ec2:*`, `ec2:Authorize*` and `*` all grant `ec2:AuthorizeSecurityGroupIngress`; a
`NotAction` statement grants every action it does not name. A resource is "every
resource" when it is `*`, a `NotResource`, or an ARN whose resource part is wildcards
only (`arn:aws:ec2:*:*:security-group/*`).

Resource policies (bucket, key and queue policies) are not identity policies and are
checked by their own rules; AWS-managed policies attached by ARN are AWS's to scope.
"""

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies.support import get, resource_rule

__all__ = ["DANGEROUS_ACTIONS", "POLICIES", "unscoped_grants"]

POLICY_DOCUMENTS: Mapping[str, str] = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/role:Role": "inlinePolicies",
}
"""Identity-policy type -> the input that holds its document(s)."""

DANGEROUS_ACTIONS = (
    # The network's doors: who can reach what.
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifySecurityGroupRules",
    "ec2:DeleteSecurityGroup",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:CreateNetworkAclEntry",
    "ec2:ReplaceNetworkAclEntry",
    "ec2:DeleteNetworkAclEntry",
    # Permissions: each of these can grant its holder more than it has.
    "iam:PassRole",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    # Who may read the data: key and bucket policies, and the keys themselves.
    "kms:PutKeyPolicy",
    "kms:CreateGrant",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketPublicAccessBlock",
)
"""Mutations that must never be granted on every resource without a scoping condition."""

_SCOPING_KEYS = (
    re.compile(r"^[a-z0-9-]+:resourcetag/", re.IGNORECASE),
    re.compile(r"^ec2:(vpc|securitygroupid)$", re.IGNORECASE),
    re.compile(r"^iam:(passedtoservice|policyarn|permissionsboundary)$", re.IGNORECASE),
    re.compile(r"^kms:(viaservice|grantisforawsresource)$", re.IGNORECASE),
)
"""Condition keys that narrow which resources a statement reaches."""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        return [value]
    return list(value)  # a list, or the SDK's proxy of one


def _every_resource(resource: Any) -> bool:
    text = str(resource).strip()
    if text == "*":
        return True
    parts = text.split(":", 5)
    if len(parts) < 6:  # noqa: PLR2004 - arn:partition:service:region:account:resource
        return False
    segments = [s for s in re.split(r"[/:]", parts[5]) if s]
    # `security-group/*`: a resource type followed by nothing but wildcards.
    return all(s == "*" for s in segments[1:]) if len(segments) > 1 else segments == ["*"]


def _scoped_by_condition(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    keys = [key for clause in condition.values() if isinstance(clause, Mapping) for key in clause]
    return any(pattern.match(str(key)) for key in keys for pattern in _SCOPING_KEYS)


def _granted(statement: Mapping[str, Any]) -> list[str]:
    """The dangerous actions `statement` grants (before looking at resources)."""
    if "NotAction" in statement:
        excluded = [str(a).lower() for a in _as_list(statement["NotAction"])]
        return [
            action for action in DANGEROUS_ACTIONS
            if not any(fnmatch.fnmatchcase(action.lower(), pattern) for pattern in excluded)
        ]  # fmt: skip
    patterns = [str(a).lower() for a in _as_list(statement.get("Action"))]
    return [
        action for action in DANGEROUS_ACTIONS
        if any(fnmatch.fnmatchcase(action.lower(), pattern) for pattern in patterns)
    ]  # fmt: skip


def unscoped_grants(document: Mapping[str, Any]) -> list[str]:
    """The dangerous actions `document` allows on every resource with no scoping condition."""
    found: list[str] = []
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        everywhere = "NotResource" in statement or any(
            _every_resource(r) for r in _as_list(statement.get("Resource"))
        )
        if not everywhere or _scoped_by_condition(statement):
            continue
        found.extend(a for a in _granted(statement) if a not in found)
    return found


def _documents(resource_type: str, props: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    key = POLICY_DOCUMENTS[resource_type]
    if resource_type == "aws:iam/role:Role":
        for index, inline in enumerate(_as_list(get(props, key))):
            label = f"inline policy {get(inline, 'name') or index + 1}"
            yield label, get(inline, "policy")
    else:
        yield "the policy", get(props, key)


def _parse(text: Any) -> Mapping[str, Any] | None:
    if isinstance(text, Mapping):
        return text
    try:
        document = json.loads(str(text))
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, Mapping) else None


def _no_unscoped_mutations(args: ResourceValidationArgs) -> Iterable[str]:
    for label, text in _documents(args.resource_type, args.props):
        if text is None:
            continue
        document = _parse(text)
        if document is None:
            yield f"{label} is not a JSON policy document, so it cannot be checked"
            continue
        actions = unscoped_grants(document)
        if actions:
            yield (
                f"{label} allows {', '.join(actions)} on every resource with no condition "
                "narrowing which: scope Resource to the ARNs it needs, or add a resource-tag "
                "(or VPC / group id) condition"
            )


IDENTITY_POLICIES: Sequence[str] = sorted(POLICY_DOCUMENTS)

POLICIES = [
    resource_rule(
        "iam-no-unscoped-mutations",
        "No identity may open security groups, pass roles, rewrite policies or keys on every "
        "resource without a condition: a compromised controller or pod would own the "
        "network or the account's permissions.",
        types=IDENTITY_POLICIES, severity=Severity.CRITICAL, mandatory=True,
        check=_no_unscoped_mutations,
        fix="Scope the statement's Resource to the ARNs it needs (e.g. the one security "
        "group a controller edits), or add a Condition on aws:ResourceTag/..., ec2:Vpc or "
        "iam:PassedToService.",
        scanners=["CKV_AWS_355", "CKV_AWS_290", "CKV_AWS_286", "CKV_AWS_287", "AWS-0057"],
    ),
]  # fmt: skip
