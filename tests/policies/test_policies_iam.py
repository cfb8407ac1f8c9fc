"""IAM identity policies: no dangerous mutation on every resource without a scoping condition."""

import json
from pathlib import Path
from typing import Any

import pytest
from policy_harness import policy_cli_on, resource_violations, resources_of
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from infra.graph import Graph
from infra.mocks import ACCOUNT_ID

RULE = "iam-no-unscoped-mutations"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SG_ARN = f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:security-group/sg-0123456789abcdef0"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


SCOPED_CONTROLLER = document(
    allow(["ec2:DescribeSecurityGroups", "elasticloadbalancing:DescribeTargetGroups"]),
    allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"], SG_ARN),
)


def violations(policy: str, resource_type: str = ROLE_POLICY) -> list[str]:
    return resource_violations(RULE, resource_type, {"role": "r", "policy": policy})


def test_a_controller_scoped_to_its_one_security_group_passes():
    assert violations(SCOPED_CONTROLLER) == []


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        (allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]), "ec2:AuthorizeSecurityGroupIngress, ec2:RevokeSecurityGroupIngress"),
        (allow("ec2:Authorize*"), "ec2:AuthorizeSecurityGroupIngress, ec2:AuthorizeSecurityGroupEgress"),
        (allow("EC2:authorizesecuritygroupingress"), "ec2:AuthorizeSecurityGroupIngress"),
        (allow("ec2:*"), "ec2:ModifySecurityGroupRules"),
        (allow("*"), "iam:PassRole"),
        (allow("iam:PassRole"), "iam:PassRole"),
        (allow("ec2:AuthorizeSecurityGroupIngress", ["arn:aws:s3:::b", "*"]), "ec2:AuthorizeSecurityGroupIngress"),
        (allow("ec2:AuthorizeSecurityGroupIngress", "arn:aws:ec2:*:*:security-group/*"), "ec2:AuthorizeSecurityGroupIngress"),
        ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, "ec2:AuthorizeSecurityGroupIngress"),
        ({"Effect": "Allow", "Action": "ec2:RevokeSecurityGroupIngress", "NotResource": SG_ARN}, "ec2:RevokeSecurityGroupIngress"),
    ],
    ids=["the-old-controller", "prefix-wildcard", "case", "service-wildcard", "star",
         "pass-role", "star-in-a-list", "every-group-arn", "not-action", "not-resource"],
)  # fmt: skip
def test_a_dangerous_mutation_on_every_resource_fails(statement: dict[str, Any], named: str):
    (found,) = violations(document(allow("ec2:DescribeVpcs"), statement))
    assert named in found
    assert "on every resource" in found


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/c": "owned"}},
        {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:eu-west-1:1:vpc/vpc-1"}},
        {"StringEquals": {"ec2:ResourceTag/stack": "prod"}},
    ],
)
def test_a_condition_that_narrows_which_resources_passes(condition: dict[str, Any]):
    statement = allow("ec2:AuthorizeSecurityGroupIngress", Condition=condition)
    assert violations(document(statement)) == []


def test_a_condition_that_narrows_nothing_about_the_resource_still_fails():
    statement = allow(
        "ec2:AuthorizeSecurityGroupIngress",
        Condition={"Bool": {"aws:SecureTransport": "true"}},
    )
    assert violations(document(statement))


def test_pass_role_limited_to_one_service_passes():
    statement = allow(
        "iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    )
    assert violations(document(statement)) == []


def test_deny_statements_and_reads_on_every_resource_pass():
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    reads = allow(["ec2:Describe*", "elasticloadbalancing:Describe*", "autoscaling:Describe*"])
    assert violations(document(deny, reads)) == []


def test_a_single_statement_object_is_read_like_a_list():
    one = json.dumps({"Version": "2012-10-17", "Statement": allow("ec2:*")})
    assert violations(one)


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("aws:iam/policy:Policy", {"policy": document(allow("iam:PutRolePolicy"))}),
        ("aws:iam/userPolicy:UserPolicy", {"policy": document(allow("iam:CreateAccessKey"))}),
        ("aws:iam/groupPolicy:GroupPolicy", {"policy": document(allow("kms:PutKeyPolicy"))}),
        (
            "aws:iam/role:Role",
            {
                "inlinePolicies": [
                    {"name": "inline", "policy": document(allow("s3:PutBucketPolicy"))}
                ]
            },
        ),
    ],
)
def test_every_kind_of_identity_policy_is_read(resource_type: str, props: dict[str, Any]):
    assert resource_violations(RULE, resource_type, props)


def test_a_policy_that_is_not_json_is_reported_not_passed():
    (found,) = violations("{not json")
    assert "cannot be checked" in found


def test_resource_policies_are_not_identity_policies():
    bucket_policy = {"policy": document(allow("s3:PutBucketPolicy"))}
    assert resource_violations(RULE, "aws:s3/bucketPolicy:BucketPolicy", bucket_policy) == []


def test_an_unknown_policy_during_preview_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        violations(UNKNOWN_STRING_VALUE)


# --- the shipped stacks -----------------------------------------------------------------


def controller_policy(document_: dict[str, Any]) -> dict[str, Any]:
    (found,) = [
        r
        for r in resources_of(document_, ROLE_POLICY)
        if r["name"] == "cluster-load-balancer-controller"
    ]
    return found


def test_the_load_balancer_controller_edits_only_the_cluster_security_group(
    stack_graph: Graph,
):
    (policy,) = [
        r for r in stack_graph.of_type(ROLE_POLICY) if r.name == "cluster-load-balancer-controller"
    ]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    (ingress,) = [s for s in statements if "ec2:AuthorizeSecurityGroupIngress" in s["Action"]]
    # The cluster security group is the first group of every node's launch template.
    templates = stack_graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    (group,) = {t.inputs["vpcSecurityGroupIds"][0] for t in templates}
    assert ingress["Resource"] == f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:security-group/{group}"
    (targets,) = [s for s in statements if "elasticloadbalancing:RegisterTargets" in s["Action"]]
    assert targets["Condition"]["StringEquals"] == {
        "aws:ResourceTag/project": "eduscale",
        "aws:ResourceTag/stack": stack_graph.stack,
    }


def test_the_target_group_carries_the_tags_the_controller_is_scoped_by(stack_graph: Graph):
    group = stack_graph.one("aws:lb/targetGroup:TargetGroup")
    assert group.inputs["tags"]["project"] == "eduscale"
    assert group.inputs["tags"]["stack"] == stack_graph.stack


def test_a_controller_policy_opened_to_every_group_fails_the_prod_graph(
    prod_graph: Graph, tmp_path: Path
):
    def widen(document_: dict[str, Any]) -> None:
        policy = controller_policy(document_)
        parsed = json.loads(policy["inputs"]["policy"])
        for statement in parsed["Statement"]:
            if "ec2:AuthorizeSecurityGroupIngress" in statement["Action"]:
                statement["Resource"] = "*"
        policy["inputs"]["policy"] = json.dumps(parsed)

    status, broken = policy_cli_on(prod_graph, tmp_path, widen)
    assert status == 1
    assert broken == {RULE}
