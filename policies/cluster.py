"""Rules for the EKS cluster: API access, secrets encryption, audit logs, node metadata.

The API server holds every credential of the platform, so its endpoint is private (public
only for named ranges), Kubernetes Secrets are envelope-encrypted with our KMS key, and the
control plane's audit trail reaches CloudWatch. On the nodes, IMDSv2 with a hop limit of 1
keeps a compromised pod from stealing the node role's credentials through the metadata
service (pods use IRSA / Pod Identity instead).

AWS's defaults for absent values are the unsafe ones here (public endpoint on and open to
0.0.0.0/0, private endpoint off, IMDSv1 allowed), so absent fails throughout.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies.network import invalid_cidrs, opens_world
from policies.support import config_value, get, is_true, resource_rule

__all__ = ["POLICIES"]

CLUSTER = "aws:eks/cluster:Cluster"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def _private_endpoint(args: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(args.props, "vpcConfig.endpointPrivateAccess"):
        yield "the private endpoint is off: nodes and pods reach the API server over the internet"


def _public_endpoint(args: ResourceValidationArgs) -> Iterable[str]:
    if get(args.props, "vpcConfig.endpointPublicAccess") is False:
        return
    cidrs = [str(c) for c in get(args.props, "vpcConfig.publicAccessCidrs") or []]
    if not cidrs:
        yield "the public endpoint is on with no publicAccessCidrs: EKS opens it to 0.0.0.0/0"
    elif opens_world(cidrs):
        yield "the public endpoint admits the whole internet (publicAccessCidrs)"
    elif bad := invalid_cidrs(cidrs):
        yield f"publicAccessCidrs holds {', '.join(bad)}, which is not a CIDR block"


def _encryption_configs(props: Mapping[str, Any]) -> list[Any]:
    value = get(props, "encryptionConfig")
    if isinstance(value, Mapping):
        return [value]
    return list(value or [])


def _secrets_encryption(args: ResourceValidationArgs) -> Iterable[str]:
    configs = [
        c for c in _encryption_configs(args.props) if "secrets" in (get(c, "resources") or [])
    ]
    if not configs:
        yield "Kubernetes Secrets are not envelope-encrypted (no encryptionConfig for secrets)"
    elif not any(get(c, "provider.keyArn") for c in configs):
        yield "the secrets encryptionConfig names no KMS key (provider.keyArn)"


def _control_plane_logs(args: ResourceValidationArgs) -> Iterable[str]:
    enabled = {str(t) for t in get(args.props, "enabledClusterLogTypes") or []}
    missing = [t for t in LOG_TYPES if t not in enabled]
    if missing:
        yield f"control-plane logs not sent to CloudWatch: {', '.join(missing)}"


def _imds_off(props: Mapping[str, Any]) -> bool:
    return bool(get(props, "metadataOptions.httpEndpoint") == "disabled")


def _imdsv2(args: ResourceValidationArgs) -> Iterable[str]:
    if _imds_off(args.props):
        return
    if get(args.props, "metadataOptions.httpTokens") != "required":
        yield "IMDSv1 is allowed (metadataOptions.httpTokens is not required)"


def _hop_limit(args: ResourceValidationArgs) -> Iterable[str]:
    if _imds_off(args.props):
        return
    maximum = int(config_value(args, "maximum", default=1))
    hops = get(args.props, "metadataOptions.httpPutResponseHopLimit")
    if not isinstance(hops, int):
        yield f"no metadata hop limit (the AMI's default may be 2); at most {maximum} wanted"
    elif hops > maximum:
        yield f"the metadata hop limit is {hops}: pods can reach the node's credentials"


POLICIES = [
    resource_rule(
        "eks-private-endpoint",
        "Nodes and pods must reach the API server inside the VPC, so the public endpoint can "
        "be closed.",
        types=[CLUSTER], severity=Severity.HIGH, mandatory=True, check=_private_endpoint,
        fix="Set vpcConfig.endpointPrivateAccess = true.",
        scanners=["derived"],
    ),
    resource_rule(
        "eks-public-endpoint-restricted",
        "The API server is the key to everything in the cluster: its public endpoint is off, "
        "or open only to named ranges (never 0.0.0.0/0 or ::/0).",
        types=[CLUSTER], severity=Severity.CRITICAL, mandatory=True, check=_public_endpoint,
        fix="Set vpcConfig.endpointPublicAccess = false (or publicAccessCidrs to the "
        "operators' ranges).",
        scanners=["CKV_AWS_38", "CKV_AWS_39", "AWS-0040", "AWS-0041"],
    ),
    resource_rule(
        "eks-secrets-encryption",
        "Kubernetes Secrets (database and Redis credentials, API keys) are envelope-encrypted "
        "with our KMS key, so etcd backups alone do not reveal them.",
        types=[CLUSTER], severity=Severity.HIGH, mandatory=True, check=_secrets_encryption,
        fix="Set encryptionConfig = {resources: [secrets], provider: {keyArn: <cluster key>}}.",
        scanners=["CKV_AWS_58", "AWS-0039"],
    ),
    resource_rule(
        "eks-control-plane-logging",
        "The audit and authenticator logs are the only record of who did what through the "
        "API server; they are a security control (CIS EKS 2.1.1), not just diagnostics.",
        types=[CLUSTER], severity=Severity.MEDIUM, mandatory=True, check=_control_plane_logs,
        fix="Set enabledClusterLogTypes = [api, audit, authenticator, controllerManager, "
        "scheduler].",
        scanners=["CKV_AWS_37", "AWS-0038"],
    ),
    resource_rule(
        "eks-node-imdsv2",
        "IMDSv1 answers any request that reaches it (SSRF, open proxies) with the node role's "
        "credentials; IMDSv2 requires a session token first.",
        types=[LAUNCH_TEMPLATE], severity=Severity.HIGH, mandatory=True, check=_imdsv2,
        fix="Set metadataOptions.httpTokens = required.",
        scanners=["CKV_AWS_79", "AWS-0130"],
    ),
    resource_rule(
        "eks-node-imds-hop-limit",
        "With a hop limit of 1 the metadata token cannot leave the node's own network "
        "namespace, so pods use their own IRSA roles, never the node's.",
        types=[LAUNCH_TEMPLATE], severity=Severity.LOW, mandatory=False, check=_hop_limit,
        fix="Set metadataOptions.httpPutResponseHopLimit = 1.",
        scanners=["CKV_AWS_341"],
        config={"maximum": {"type": "integer", "default": 1, "minimum": 1, "maximum": 64}},
    ),
]  # fmt: skip
