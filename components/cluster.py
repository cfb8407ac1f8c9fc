"""EKS: the control plane, managed node groups, IRSA, and the provider for everything on it.

Secure defaults, after terraform-aws-modules/eks: the API endpoint is private (public only
when asked, and then only for named CIDRs); Kubernetes secrets are envelope-encrypted
with a rotating customer key; every control-plane log type goes to an encrypted log
group with a retention; authentication is by EKS access entries (no aws-auth ConfigMap
to drift); nodes require IMDSv2 with a hop limit of 1, so pods cannot borrow the node's
role and get AWS access only through IRSA; node root volumes are encrypted.

Every Kubernetes object of the stack is created through `provider`, built from this
cluster's kubeconfig, never through whatever kubeconfig happens to be on the deploying
machine. The add-ons the platform depends on are installed by `install_addons`.
"""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster_addons import AddonVersionsArgs, install_addons
from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.log_groups import encrypted_log_group
from components.type_tokens import CLUSTER

__all__ = ["NODE_GROUP_LABEL", "Cluster", "ClusterArgs", "NodeGroupArgs"]

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
NODE_GROUP_LABEL = "eduscale.io/node-group"
"""Node label naming the node group; the add-ons select the system group by it."""
_NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)


class NodeGroupArgs(TypedDict):
    """One managed node group; nodes span every subnet (AZ) of the cluster."""

    name: str
    """Short name, unique in the cluster."""
    instance_types: list[str]
    """EC2 instance types, e.g. `["c7g.xlarge"]`."""
    min_size: int
    """Fewest nodes."""
    desired_size: int
    """Nodes at creation; afterwards the cluster autoscaler owns this number."""
    max_size: int
    """Most nodes the autoscaler may add."""
    capacity_type: NotRequired[str]
    """`ON_DEMAND` (default) or `SPOT`."""
    ami_type: NotRequired[str]
    """EKS AMI type (default `AL2023_ARM_64_STANDARD`, for Graviton instances)."""
    disk_size_gb: NotRequired[int]
    """Root volume size (default 50 GiB)."""
    system: NotRequired[bool]
    """Runs the cluster add-ons."""
    labels: NotRequired[dict[str, str]]
    """Extra node labels."""


class ClusterArgs(TypedDict):
    """Inputs of `Cluster`."""

    vpc_id: pulumi.Input[str]
    """The VPC."""
    subnet_ids: pulumi.Input[list[str]]
    """Private subnets, one per AZ, for the control plane's interfaces and the nodes."""
    kubernetes_version: str
    """Kubernetes minor version, e.g. `1.33`."""
    node_groups: list[NodeGroupArgs]
    """Managed node groups; one must be an on-demand `system` group."""
    addon_versions: AddonVersionsArgs
    """Pinned versions of the add-ons."""
    node_security_group_ids: NotRequired[pulumi.Input[list[str]]]
    """Extra security groups for every node (e.g. the one data stores admit)."""
    endpoint_public_access: NotRequired[bool]
    """Expose the API endpoint publicly (default off)."""
    public_access_cidrs: NotRequired[list[str]]
    """The only ranges the public endpoint answers (required when it is on)."""
    admin_principal_arns: NotRequired[list[str]]
    """IAM roles or users granted cluster admin, besides the deploying identity."""
    log_retention_days: NotRequired[int]
    """Control-plane log retention (default 90 days)."""


class Cluster(pulumi.ComponentResource):
    """An EKS cluster with managed node groups, IRSA and the platform's add-ons."""

    name: pulumi.Output[str]
    """The EKS cluster name."""
    endpoint: pulumi.Output[str]
    """The API server endpoint."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig (JSON) that authenticates with `aws eks get-token`; secret."""
    node_security_group_id: pulumi.Output[str]
    """The cluster security group, attached to the control plane and every node."""
    oidc_provider_arn: pulumi.Output[str]
    """The IAM OIDC provider for IRSA roles."""
    oidc_issuer: pulumi.Output[str]
    """The cluster's OIDC issuer URL (IRSA trust policies name it)."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(CLUSTER.token, name, None, CLUSTER.options(opts))
        _validate(args)
        cluster_name = physical_name(name, max_length=100)
        key = customer_managed_key(name, "secrets", parent=self, for_log_groups=True)
        log_group = encrypted_log_group(
            name,
            "control-plane",
            retention_days=args.get("log_retention_days", 90),
            key=key,
            parent=self,
            name=f"/aws/eks/{cluster_name}/cluster",
        )
        role = self._role(name, "control-plane", "eks.amazonaws.com",
                          ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"])  # fmt: skip
        public = bool(args.get("endpoint_public_access", False))
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            version=args["kubernetes_version"],
            role_arn=role.arn,
            vpc_config={
                "subnet_ids": args["subnet_ids"],
                "endpoint_private_access": True,
                "endpoint_public_access": public,
                "public_access_cidrs": list(args.get("public_access_cidrs", []))
                if public
                else None,
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            access_config={
                "authentication_mode": "API",
                # The deploying identity must reach the API to create this stack's
                # Kubernetes objects; everyone else is named in admin_principal_arns.
                "bootstrap_cluster_creator_admin_permissions": True,
            },
            upgrade_policy={"support_type": "STANDARD"},
            tags=standard_tags(name, cluster_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, role]),
        )
        oidc_issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer or "")  # type: ignore[index]
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=oidc_issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=standard_tags(name, physical_name(name, "oidc")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for index, arn in enumerate(args.get("admin_principal_arns", [])):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{index + 1}",
                cluster_name=cluster.name,
                principal_arn=arn,
                type="STANDARD",
                tags=standard_tags(name),
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index + 1}",
                cluster_name=cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                access_scope={"type": "cluster"},
                opts=pulumi.ResourceOptions(parent=self),
            )

        cluster_sg = cluster.vpc_config.apply(lambda v: v.cluster_security_group_id or "")
        node_groups = self._node_groups(name, args, cluster, cluster_sg)
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.data, region
            ).apply(lambda v: _kubeconfig(v[0], v[1], v[2] or "", v[3]))
        )
        # Not a schema output: a provider is a resource, usable from Python directly.
        self.provider: k8s.Provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_groups),
        )
        install_addons(
            name,
            cluster_name=cluster.name,
            vpc_id=args["vpc_id"],
            node_security_group_id=cluster_sg,
            oidc_provider_arn=oidc.arn,
            oidc_issuer=oidc_issuer,
            versions=args["addon_versions"],
            provider=self.provider,
            parent=self,
            depends_on=node_groups,
        )

        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.node_security_group_id = cluster_sg
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = oidc_issuer
        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "kubeconfig": self.kubeconfig,
                "node_security_group_id": self.node_security_group_id,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
            }
        )

    def _role(self, name: str, purpose: str, service: str, policies: list[str]) -> aws.iam.Role:
        role_name = physical_name(name, purpose, max_length=64)
        role = aws.iam.Role(
            f"{name}-{purpose}",
            name=role_name,
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": service},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                        }
                    ],
                }
            ),
            tags=standard_tags(name, role_name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for arn in policies:
            aws.iam.RolePolicyAttachment(
                f"{name}-{purpose}-{arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return role

    def _node_groups(
        self,
        name: str,
        args: ClusterArgs,
        cluster: aws.eks.Cluster,
        cluster_sg: pulumi.Output[str],
    ) -> list[pulumi.Resource]:
        role = self._role(name, "nodes", "ec2.amazonaws.com", list(_NODE_POLICIES))
        access = aws.eks.AccessEntry(
            f"{name}-nodes",
            cluster_name=cluster.name,
            principal_arn=role.arn,
            type="EC2_LINUX",
            tags=standard_tags(name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        security_groups = pulumi.Output.all(
            cluster_sg, pulumi.Output.from_input(args.get("node_security_group_ids", []))
        ).apply(lambda values: [values[0], *values[1]])
        groups: list[pulumi.Resource] = []
        for group in args["node_groups"]:
            group_name = physical_name(name, group["name"], max_length=63)
            template = aws.ec2.LaunchTemplate(
                f"{name}-{group['name']}",
                name=group_name,
                description=f"{group_name}: IMDSv2 only, encrypted root volume",
                update_default_version=True,
                vpc_security_group_ids=security_groups,
                metadata_options={
                    "http_endpoint": "enabled",
                    "http_tokens": "required",
                    "http_put_response_hop_limit": 1,
                    "instance_metadata_tags": "disabled",
                },
                block_device_mappings=[
                    {
                        "device_name": "/dev/xvda",
                        "ebs": {
                            "volume_size": group.get("disk_size_gb", 50),
                            "volume_type": "gp3",
                            "encrypted": "true",
                            "delete_on_termination": "true",
                        },
                    }
                ],
                tag_specifications=[
                    {"resource_type": kind, "tags": standard_tags(name, group_name)}
                    for kind in ("instance", "volume", "network-interface")
                ],
                tags=standard_tags(name, group_name),
                opts=pulumi.ResourceOptions(parent=self),
            )
            groups.append(
                aws.eks.NodeGroup(
                    f"{name}-{group['name']}",
                    cluster_name=cluster.name,
                    node_group_name=group_name,
                    node_role_arn=role.arn,
                    subnet_ids=args["subnet_ids"],
                    instance_types=group["instance_types"],
                    capacity_type=group.get("capacity_type", "ON_DEMAND"),
                    ami_type=group.get("ami_type", "AL2023_ARM_64_STANDARD"),
                    scaling_config={
                        "min_size": group["min_size"],
                        "desired_size": group["desired_size"],
                        "max_size": group["max_size"],
                    },
                    update_config={"max_unavailable_percentage": 33},
                    launch_template={
                        "id": template.id,
                        "version": template.latest_version.apply(str),
                    },
                    labels={**group.get("labels", {}), NODE_GROUP_LABEL: group["name"]},
                    tags=standard_tags(name, group_name),
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        depends_on=[access],
                        # The cluster autoscaler moves desiredSize; a deploy must not undo it.
                        ignore_changes=["scalingConfig.desiredSize"],
                    ),
                )
            )
        return groups


def _validate(args: ClusterArgs) -> None:
    groups = args["node_groups"]
    if not any(g.get("system") and g.get("capacity_type", "ON_DEMAND") == "ON_DEMAND"
               for g in groups):  # fmt: skip
        raise ValueError("node_groups needs an on-demand group with system=True for add-ons")
    for group in groups:
        if not group["min_size"] <= group["desired_size"] <= group["max_size"]:
            raise ValueError(
                f"node group {group['name']}: need min_size <= desired_size <= max_size"
            )
    if args.get("endpoint_public_access") and not args.get("public_access_cidrs"):
        raise ValueError("endpoint_public_access needs public_access_cidrs")
    if any(c in ("0.0.0.0/0", "::/0") for c in args.get("public_access_cidrs", [])):
        raise ValueError("public_access_cidrs must not include the whole internet")


def _get_token_args(cluster_name: str, region: str) -> list[str]:
    return ["eks", "get-token", "--cluster-name", cluster_name, "--region", region]


def _kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig whose credentials come from `aws eks get-token`, never stored."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": _get_token_args(cluster_name, region),
                        }
                    },
                }
            ],
        }
    )
