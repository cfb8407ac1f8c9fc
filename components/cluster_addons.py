"""The add-ons the platform needs on its cluster, with pinned versions and IRSA roles.

- metrics-server: the HPAs read CPU utilisation from it.
- cluster-autoscaler: when HPAs add pods that do not fit, node groups grow (it finds them
  by the tags EKS puts on managed node groups' auto scaling groups).
- AWS Load Balancer Controller: binds the ALB's target group to Kong's pods
  (`TargetGroupBinding`); its IAM permissions are cut down to exactly that, since we
  never let it create load balancers: it registers targets only in this stack's target
  groups (by their tags) and edits only the one security group it must open to the ALB,
  the cluster security group on the pods' interfaces (the one EKS tags
  `kubernetes.io/cluster/<name>`, which is where the controller adds its rules).
- KEDA: scales the Kafka workers on consumer-group lag, reading it over SASL/IAM.
- EBS CSI driver (an EKS add-on) and a default, encrypted gp3 StorageClass whose volumes
  outlive their claims (`Retain`): Qdrant's data must not vanish with a StatefulSet.

Each controller runs on the system node group and gets AWS access only through its own
IRSA role. The charts are Helm releases (`helm.sh/v3:Release`): third-party software we
configure, not objects we design, which is why the policy pack does not look inside them.
"""

import json
from collections.abc import Sequence
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.conventions import name_prefix, standard_tags
from components.helm import chart_release
from components.irsa import service_account_role

__all__ = ["STORAGE_CLASS", "AddonVersionsArgs", "install_addons"]

_SYSTEM_NODES = {"eduscale.io/node-group": "system"}
STORAGE_CLASS = "gp3"
"""The default StorageClass: encrypted gp3 EBS volumes that outlive their claims."""


class AddonVersionsArgs(TypedDict):
    """Pinned versions of each add-on."""

    metrics_server: str
    """Chart version of metrics-server."""
    cluster_autoscaler: str
    """Chart version of cluster-autoscaler."""
    aws_load_balancer_controller: str
    """Chart version of aws-load-balancer-controller."""
    keda: str
    """Chart version of keda."""
    ebs_csi_driver: str
    """EKS add-on version of aws-ebs-csi-driver."""


def install_addons(
    component: str,
    *,
    cluster_name: pulumi.Output[str],
    vpc_id: pulumi.Input[str],
    node_security_group_id: pulumi.Input[str],
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    versions: AddonVersionsArgs,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> None:
    """Install every add-on on the cluster named `cluster_name`.

    `node_security_group_id` is the cluster security group on the nodes' (and so the
    pods') interfaces: the only group the load balancer controller may edit.
    """
    region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=parent)).region
    identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent))
    on_cluster = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on)

    def role(purpose: str, namespace: str, account: str, **kwargs: Any) -> aws.iam.Role:
        return service_account_role(
            component,
            purpose,
            oidc_provider_arn=oidc_provider_arn,
            oidc_issuer=oidc_issuer,
            namespace=namespace,
            service_account=account,
            parent=parent,
            **kwargs,
        )

    def release(  # noqa: PLR0917 (a local helper; its call sites read as a table)
        name: str, chart: str, repo: str, version: str, namespace: str, values: dict[str, Any]
    ) -> None:
        chart_release(
            f"{component}-{name}",
            release=name,
            chart=chart,
            repo=repo,
            version=version,
            namespace=namespace,
            values=values,
            opts=on_cluster,
        )

    ebs_role = role(
        "ebs-csi",
        "kube-system",
        "ebs-csi-controller-sa",
        managed_policy_arns=["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"],
    )
    ebs = aws.eks.Addon(
        f"{component}-ebs-csi",
        cluster_name=cluster_name,
        addon_name="aws-ebs-csi-driver",
        addon_version=versions["ebs_csi_driver"],
        service_account_role_arn=ebs_role.arn,
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        tags=standard_tags(component, "aws-ebs-csi-driver"),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
    )
    k8s.storage.v1.StorageClass(
        f"{component}-gp3",
        metadata={
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        provisioner="ebs.csi.aws.com",
        parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
        volume_binding_mode="WaitForFirstConsumer",
        allow_volume_expansion=True,
        reclaim_policy="Retain",
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[ebs]),
    )

    release(
        "metrics-server",
        "metrics-server",
        "https://kubernetes-sigs.github.io/metrics-server/",
        versions["metrics_server"],
        "kube-system",
        {"replicas": 2, "nodeSelector": _SYSTEM_NODES, "podDisruptionBudget": {"enabled": True}},
    )

    autoscaler_role = role(
        "cluster-autoscaler",
        "kube-system",
        "cluster-autoscaler",
        policy=cluster_name.apply(_autoscaler_policy),
    )
    release(
        "cluster-autoscaler",
        "cluster-autoscaler",
        "https://kubernetes.github.io/autoscaler",
        versions["cluster_autoscaler"],
        "kube-system",
        {
            "autoDiscovery": {"clusterName": cluster_name},
            "awsRegion": region,
            "nodeSelector": _SYSTEM_NODES,
            "rbac": {
                "serviceAccount": {
                    "name": "cluster-autoscaler",
                    "annotations": {"eks.amazonaws.com/role-arn": autoscaler_role.arn},
                }
            },
            "extraArgs": {
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                "skip-nodes-with-local-storage": False,
            },
        },
    )

    controller_role = role(
        "load-balancer-controller",
        "kube-system",
        "aws-load-balancer-controller",
        policy=pulumi.Output.all(
            region, identity.account_id, pulumi.Output.from_input(node_security_group_id)
        ).apply(lambda v: _load_balancer_controller_policy(v[0], v[1], v[2])),
    )
    release(
        "aws-load-balancer-controller",
        "aws-load-balancer-controller",
        "https://aws.github.io/eks-charts",
        versions["aws_load_balancer_controller"],
        "kube-system",
        {
            "clusterName": cluster_name,
            "region": region,
            "vpcId": vpc_id,
            "replicaCount": 2,
            "nodeSelector": _SYSTEM_NODES,
            # We bind target groups only; the controller must not mutate Services.
            "enableServiceMutatorWebhook": False,
            "serviceAccount": {
                "name": "aws-load-balancer-controller",
                "annotations": {"eks.amazonaws.com/role-arn": controller_role.arn},
            },
        },
    )

    keda_role = role(
        "keda",
        "keda",
        "keda-operator",
        policy=pulumi.Output.all(region, identity.account_id).apply(
            lambda values: _keda_policy(values[0], values[1])
        ),
    )
    release(
        "keda",
        "keda",
        "https://kedacore.github.io/charts",
        versions["keda"],
        "keda",
        {
            "nodeSelector": _SYSTEM_NODES,
            "podIdentity": {"aws": {"irsa": {"enabled": True, "roleArn": keda_role.arn}}},
            "serviceAccount": {"operator": {"name": "keda-operator"}},
        },
    )


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _autoscaler_policy(cluster_name: str) -> str:
    return _policy(
        [
            {
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                    }
                },
            },
        ]
    )


def _load_balancer_controller_policy(region: str, account_id: str, security_group_id: str) -> str:
    """Enough to keep a target group's targets in step with pods, and nothing more.

    Describe calls cannot be scoped to resources (AWS evaluates them on `*`); every
    mutation is scoped: targets only in target groups tagged as this stack's, and ingress
    rules only on the one security group the bindings open to the ALB.
    """
    return _policy(
        [
            {
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeInstances",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeTags",
                    "ec2:DescribeVpcs",
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeTags",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                ],
                "Resource": f"arn:aws:elasticloadbalancing:{region}:{account_id}:targetgroup/*/*",
                "Condition": {
                    "StringEquals": {
                        "aws:ResourceTag/project": pulumi.get_project(),
                        "aws:ResourceTag/stack": pulumi.get_stack(),
                    }
                },
            },
            {
                # Opens the pods' security group to the ALB's group, as the bindings need.
                "Effect": "Allow",
                "Action": [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                ],
                "Resource": f"arn:aws:ec2:{region}:{account_id}:security-group/{security_group_id}",
            },
        ]
    )


def _keda_policy(region: str, account_id: str) -> str:
    """Read consumer-group lag on this stack's MSK clusters only."""
    prefix = name_prefix()
    base = f"arn:aws:kafka:{region}:{account_id}"
    return _policy(
        [
            {
                "Effect": "Allow",
                "Action": [
                    "kafka-cluster:Connect",
                    "kafka-cluster:DescribeCluster",
                    "kafka-cluster:DescribeGroup",
                    "kafka-cluster:DescribeTopic",
                ],
                "Resource": [
                    f"{base}:cluster/{prefix}-*/*",
                    f"{base}:topic/{prefix}-*/*",
                    f"{base}:group/{prefix}-*/*",
                ],
            }
        ]
    )
