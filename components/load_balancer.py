"""The internet-facing ALB in front of Kong, reachable only through our Cloudflare zone.

Its security group admits 443 (and 80, which only redirects to 443) from Cloudflare's
published address ranges and nothing else. Those ranges serve every Cloudflare customer,
so the HTTPS listener also requires mutual TLS in verify mode: a client certificate
signed by our own origin-pull CA (`OriginAuthentication`), which only our zone presents.
A request routed through someone else's zone fails the TLS handshake, so the origin
cannot be reached around our WAF, rate limits and cache rules
(docs/origin-authentication.md). The listener uses an ACM certificate validated
through Cloudflare DNS and a TLS 1.2+ policy (TLS 1.3 preferred). Invalid header fields
are dropped, HTTP desync is mitigated in the strictest mode, and every request is logged
to a private, encrypted S3 bucket whose logs expire. Requests go to Kong over TLS through
an `ip` target group that the AWS Load Balancer Controller keeps in step with Kong's pods
(`TargetGroupBinding`), with health checks on Kong's status endpoint.
"""

import json
from collections.abc import Callable, Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.conventions import physical_name, standard_tags
from components.s3_buckets import access_log_bucket
from components.trust_store import bucket_name as trust_store_bucket_name
from components.trust_store import client_ca_trust_store
from components.type_tokens import LOAD_BALANCER

__all__ = ["TLS_POLICY", "LoadBalancer", "LoadBalancerArgs"]

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
"""TLS 1.3 and 1.2 with forward-secret ciphers only."""
_S3_LOG_PREFIX = "s3/"
"""Where the trust store bucket's server access logs land in the access-log bucket."""


class LoadBalancerArgs(TypedDict):
    """Inputs of `LoadBalancer`."""

    vpc_id: pulumi.Input[str]
    """The VPC."""
    vpc_cidr: pulumi.Input[str]
    """The VPC's range: the only place the ALB forwards to."""
    public_subnet_ids: pulumi.Input[list[str]]
    """Public subnets, one per AZ."""
    cloudflare_ipv4_ranges: list[str]
    """Cloudflare's published IPv4 ranges (https://www.cloudflare.com/ips-v4)."""
    cloudflare_ipv6_ranges: list[str]
    """Cloudflare's published IPv6 ranges (https://www.cloudflare.com/ips-v6)."""
    hostnames: list[str]
    """Public host names the certificate covers (the first is its subject)."""
    cloudflare_zone_id: pulumi.Input[str]
    """Cloudflare zone in which the certificate's DNS validation records are created."""
    target_namespace: pulumi.Input[str]
    """Namespace of the Service the target group binds to (Kong's proxy)."""
    target_service: pulumi.Input[str]
    """Name of that Service."""
    target_port: int
    """Its TLS port."""
    health_check_port: int
    """Its status port."""
    client_ca_certificate_pem: pulumi.Input[str]
    """The CA (PEM) whose client certificates the HTTPS listener accepts: the origin-pull CA
    of `OriginAuthentication`, whose certificate only our Cloudflare zone presents."""
    deletion_protection: NotRequired[bool]
    """Refuse deletion of the ALB (default on)."""
    access_log_retention_days: NotRequired[int]
    """Days access logs are kept (default 90)."""


class LoadBalancer(pulumi.ComponentResource):
    """An internet-facing ALB that only Cloudflare can reach, forwarding to Kong over TLS."""

    dns_name: pulumi.Output[str]
    """The ALB's DNS name: the CDN's origin."""
    arn: pulumi.Output[str]
    """The ALB's ARN."""
    security_group_id: pulumi.Output[str]
    """The ALB's security group."""

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(LOAD_BALANCER.token, name, None, LOAD_BALANCER.options(opts))
        if not args["cloudflare_ipv4_ranges"]:
            raise ValueError("cloudflare_ipv4_ranges is empty: the ALB would admit nobody")
        if not args["hostnames"]:
            raise ValueError("hostnames is empty: the certificate needs at least one name")
        child = pulumi.ResourceOptions(parent=self)
        alb_name = physical_name(name, max_length=32)
        logs, log_delivery = self._access_log_bucket(
            name, args.get("access_log_retention_days", 90)
        )
        trust_store = client_ca_trust_store(
            self,
            name,
            ca_bundle_pem=args["client_ca_certificate_pem"],
            log_bucket=logs,
            log_prefix=_S3_LOG_PREFIX,
            log_delivery=log_delivery,
        )
        security_group = self._security_group(name, args)
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=alb_name,
            load_balancer_type="application",
            internal=False,
            security_groups=[security_group.id],
            subnets=args["public_subnet_ids"],
            drop_invalid_header_fields=True,
            desync_mitigation_mode="strictest",
            enable_deletion_protection=bool(args.get("deletion_protection", True)),
            enable_http2=True,
            idle_timeout=60,
            xff_header_processing_mode="append",
            access_logs={"bucket": logs.bucket, "prefix": "alb", "enabled": True},
            tags=standard_tags(name, alb_name),
            opts=child,
        )
        certificate = self._certificate(name, args)
        target_group = aws.lb.TargetGroup(
            f"{name}-kong",
            name=physical_name(name, "kong", max_length=32),
            target_type="ip",
            protocol="HTTPS",
            port=args["target_port"],
            vpc_id=args["vpc_id"],
            deregistration_delay=30,
            health_check={
                "enabled": True,
                "protocol": "HTTP",
                "port": str(args["health_check_port"]),
                "path": "/status/ready",
                "matcher": "200",
                "interval": 10,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags=standard_tags(name, physical_name(name, "kong")),
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=certificate,
            # Only clients with a certificate from our origin-pull CA finish the handshake.
            mutual_authentication={
                "mode": "verify",
                "trust_store_arn": trust_store.arn,
                "ignore_client_certificate_expiry": False,
            },
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            tags=standard_tags(name, physical_name(name, "https")),
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
                }
            ],
            tags=standard_tags(name, physical_name(name, "http")),
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-kong-binding",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="TargetGroupBinding",
            metadata={"name": f"{name}-kong", "namespace": args["target_namespace"]},
            spec={
                "serviceRef": {"name": args["target_service"], "port": args["target_port"]},
                "targetGroupARN": target_group.arn,
                "targetType": "ip",
                "networking": {
                    "ingress": [
                        {
                            "from": [{"securityGroup": {"groupID": security_group.id}}],
                            "ports": [
                                {"protocol": "TCP", "port": args["target_port"]},
                                {"protocol": "TCP", "port": args["health_check_port"]},
                            ],
                        }
                    ]
                },
            },
            opts=child,
        )
        self.dns_name = alb.dns_name
        self.arn = alb.arn
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "arn": self.arn,
                "security_group_id": self.security_group_id,
            }
        )

    def _security_group(self, name: str, args: LoadBalancerArgs) -> aws.ec2.SecurityGroup:
        group_name = physical_name(name)
        ingress: list[aws.ec2.SecurityGroupIngressArgsDict] = [
            {
                "description": f"Cloudflare to the ALB on {port} ({purpose})",
                "protocol": "tcp",
                "from_port": port,
                "to_port": port,
                "cidr_blocks": args["cloudflare_ipv4_ranges"],
                "ipv6_cidr_blocks": args["cloudflare_ipv6_ranges"],
            }
            for port, purpose in ((443, "HTTPS"), (80, "redirect to HTTPS only"))
        ]
        return aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=group_name,
            description="ALB: reachable from Cloudflare only",
            vpc_id=args["vpc_id"],
            ingress=ingress,
            egress=[
                {
                    "description": "To Kong's TLS and status ports inside the VPC",
                    "protocol": "tcp",
                    "from_port": min(args["target_port"], args["health_check_port"]),
                    "to_port": max(args["target_port"], args["health_check_port"]),
                    "cidr_blocks": [args["vpc_cidr"]],
                }
            ],
            tags=standard_tags(name, group_name),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _certificate(self, name: str, args: LoadBalancerArgs) -> pulumi.Output[str]:
        """Issue and DNS-validate the certificate; returns the ARN once it is valid."""
        # Imported here: the Cloudflare SDK takes seconds to load, and only this step needs it.
        import pulumi_cloudflare as cloudflare  # noqa: PLC0415

        hostnames = args["hostnames"]
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=hostnames[0],
            subject_alternative_names=hostnames[1:],
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            tags=standard_tags(name, hostnames[0]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        records = [
            cloudflare.DnsRecord(
                f"{name}-validation-{index + 1}",
                zone_id=args["cloudflare_zone_id"],
                name=certificate.domain_validation_options.apply(_option(host, "name")),
                type="CNAME",
                content=certificate.domain_validation_options.apply(_option(host, "value")),
                ttl=60,
                # Validation records must resolve to ACM, not to Cloudflare's proxy.
                proxied=False,
                comment="ACM certificate validation",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for index, host in enumerate(hostnames)
        ]
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.name for record in records],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return validation.certificate_arn

    def _access_log_bucket(
        self, name: str, retention_days: int
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        """The log bucket, and the policy that lets the ALB and S3 deliver logs into it."""
        child = pulumi.ResourceOptions(parent=self)
        bucket = access_log_bucket(self, name, retention_days)
        elb_account = aws.elb.get_service_account_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        )
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        trust_store_bucket = trust_store_bucket_name(name)
        policy = aws.s3.BucketPolicy(
            f"{name}-access-logs",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, elb_account.arn, identity.account_id).apply(
                lambda v: _log_bucket_policy(v[0], v[1], v[2], trust_store_bucket)
            ),
            opts=child,
        )
        return bucket, policy


def _option(
    hostname: str, field: str
) -> Callable[[Sequence[aws.acm.outputs.CertificateDomainValidationOption]], str]:
    def pick(options: Sequence[aws.acm.outputs.CertificateDomainValidationOption]) -> str:
        for option in options:
            if option.domain_name == hostname:
                value = (
                    option.resource_record_name if field == "name" else option.resource_record_value
                )
                return (value or "").rstrip(".")
        raise ValueError(f"ACM returned no validation record for {hostname}")

    return pick


def _log_bucket_policy(
    bucket_arn: str, elb_account_arn: str, account_id: str, trust_store_bucket: str
) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AlbLogDelivery",
                    "Effect": "Allow",
                    "Principal": {"AWS": elb_account_arn},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/alb/AWSLogs/{account_id}/*",
                },
                {
                    "Sid": "S3ServerAccessLogDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{_S3_LOG_PREFIX}*",
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{trust_store_bucket}"},
                        "StringEquals": {"aws:SourceAccount": account_id},
                    },
                },
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )
