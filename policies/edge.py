"""Rules for the edge: the ALB, its listeners and target group, and Cloudflare in front.

Traffic takes one path: client -> Cloudflare (TLS, WAF, rate limits) -> ALB (TLS) -> Kong.
The rules keep that path the only one: the ALB's security group admits Cloudflare's ranges
only, the DNS records that name the ALB are proxied (an unproxied record publishes the
origin), Cloudflare validates the origin's certificate and refuses old TLS, and the ALB
serves HTTPS only, with a TLS 1.2+ policy.

Rules for load balancers apply to application load balancers only (`loadBalancerType`
absent or "application"); network and gateway load balancers have no HTTP layer.
"""

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from policies.network import (
    LOAD_BALANCERS,
    SECURITY_GROUPS,
    IpNetwork,
    ingress_rules,
    linked,
    parse_cidr,
)
from policies.support import config_value, get, is_true, resource_rule, stack_rule
from stacks.cloudflare_ranges import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

__all__ = ["POLICIES"]

LISTENERS = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
LISTENER_RULES = frozenset(
    {"aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule"}
)
TARGET_GROUPS = frozenset({"aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"})
ZONE = "cloudflare:index/zone:Zone"
ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
ELB_SUFFIXES = (".elb.amazonaws.com", ".elb.amazonaws.com.cn")
TLS_POLICIES = [
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
]
"""TLS 1.2+ with forward-secret AEAD ciphers only (the `Ext` and plain TLS-1-2 policies add
CBC/SHA-1 suites; AWS's default for an absent `sslPolicy`, 2016-08, allows TLS 1.0)."""
STRICT_SSL = frozenset({"strict", "full_strict", "origin_pull"})
"""Cloudflare SSL modes that validate the origin's certificate ("origin_pull" is Strict
with SSL-only origin pulls)."""
CLEAR_PROTOCOLS = frozenset({"HTTP"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})


def _application(props: Mapping[str, Any]) -> bool:
    return get(props, "loadBalancerType") in {None, "application"}


def _drop_invalid_headers(args: ResourceValidationArgs) -> Iterable[str]:
    if _application(args.props) and not is_true(args.props, "dropInvalidHeaderFields"):
        yield "headers with invalid names are passed to Kong (dropInvalidHeaderFields is not true)"


def _access_logs(args: ResourceValidationArgs) -> Iterable[str]:
    if not _application(args.props):
        return
    if not is_true(args.props, "accessLogs.enabled"):
        yield "access logs are off (accessLogs.enabled is not true)"
    elif not get(args.props, "accessLogs.bucket"):
        yield "access logs have no bucket (accessLogs.bucket)"


def _deletion_protection(args: ResourceValidationArgs) -> Iterable[str]:
    if not _application(args.props) or not config_value(args, "required", default=True):
        return
    if not is_true(args.props, "enableDeletionProtection"):
        yield "deletion protection is off: one mistaken delete takes the whole platform offline"


def _desync(args: ResourceValidationArgs) -> Iterable[str]:
    if _application(args.props) and get(args.props, "desyncMitigationMode") == "monitor":
        yield "desync mitigation only monitors: ambiguous requests (request smuggling) reach Kong"


def _redirects_to_https(actions: Any) -> bool:
    actions = list(actions or [])
    return len(actions) == 1 and (
        get(actions[0], "type") == "redirect"
        and str(get(actions[0], "redirect.protocol") or "").upper() == "HTTPS"
    )


def _https_only(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    clear: set[str] = set()
    for listener in (r for r in args.resources if r.resource_type in LISTENERS):
        if not all(
            _application(lb.props) for lb in linked(listener, "loadBalancerArn", LOAD_BALANCERS)
        ):
            continue  # a network load balancer's TCP listener may pass TLS through
        protocol = str(get(listener.props, "protocol") or "HTTP").upper()
        if protocol in TLS_PROTOCOLS:
            continue
        if protocol not in CLEAR_PROTOCOLS:
            yield f"the listener speaks {protocol}: traffic is not encrypted", listener.urn
            continue
        clear.add(listener.urn)
        if not _redirects_to_https(get(listener.props, "defaultActions")):
            yield "the HTTP listener does more than redirect to HTTPS", listener.urn
    for rule in (r for r in args.resources if r.resource_type in LISTENER_RULES):
        on_clear = any(r.urn in clear for r in linked(rule, "listenerArn", LISTENERS))
        if on_clear and not _redirects_to_https(get(rule.props, "actions")):
            yield "a rule of the HTTP listener does more than redirect to HTTPS", rule.urn


def _tls_policy(args: ResourceValidationArgs) -> Iterable[str]:
    if str(get(args.props, "protocol") or "HTTP").upper() not in TLS_PROTOCOLS:
        return
    allowed = config_value(args, "allowedPolicies", default=TLS_POLICIES)
    policy = get(args.props, "sslPolicy")
    if policy is None:
        yield "no sslPolicy: AWS's default (ELBSecurityPolicy-2016-08) accepts TLS 1.0"
    elif policy not in allowed:
        yield f"sslPolicy {policy} is not a TLS 1.2+ forward-secret policy"


def _health_check(args: ResourceValidationArgs) -> Iterable[str]:
    if get(args.props, "healthCheck.enabled") is False:
        yield "health checks are off: the ALB keeps sending requests to dead targets"
        return
    protocol = get(args.props, "healthCheck.protocol") or get(args.props, "protocol") or "HTTP"
    if str(protocol).upper() in {"HTTP", "HTTPS"} and not get(args.props, "healthCheck.path"):
        yield "the health check has no path: AWS probes '/', which says nothing about readiness"


def _cloudflare_only(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    ranges = [
        *config_value(args, "ipv4Ranges", default=list(CLOUDFLARE_IPV4)),
        *config_value(args, "ipv6Ranges", default=list(CLOUDFLARE_IPV6)),
    ]
    allowed = [n for n in map(parse_cidr, ranges) if n is not None]
    for lb in args.resources:
        if lb.resource_type not in LOAD_BALANCERS or not _application(lb.props):
            continue
        if get(lb.props, "internal") is True:
            continue
        groups = linked(lb, "securityGroups", SECURITY_GROUPS)
        if not groups:
            yield "the ALB has no security group declared in this stack to check", lb.urn
        for group in groups:
            for rule in ingress_rules(group, args.resources):
                outside = [c for c in rule.cidrs() if not _within(parse_cidr(c), allowed)]
                outside += ["a prefix list"] if rule.prefix_lists() else []
                if outside:
                    message = (
                        f"{rule.label} of the ALB's security group admits {', '.join(outside)}, "
                        "outside Cloudflare's ranges: clients can reach the origin around the CDN"
                    )
                    yield message, rule.owner.urn


def _within(network: IpNetwork | None, allowed: Sequence[IpNetwork]) -> bool:
    if isinstance(network, ipaddress.IPv4Network):
        return any(isinstance(a, ipaddress.IPv4Network) and network.subnet_of(a) for a in allowed)
    if isinstance(network, ipaddress.IPv6Network):
        return any(isinstance(a, ipaddress.IPv6Network) and network.subnet_of(a) for a in allowed)
    return False


def _zone_of(resource: PolicyResource) -> str:
    zones = linked(resource, "zoneId", {ZONE})
    return zones[0].urn if zones else str(get(resource.props, "zoneId"))


def _tls_version(value: Any) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(value).split("."))
    except ValueError:
        return ()


def _setting_ok(setting: str, value: Any, minimum: tuple[int, ...]) -> bool:
    if setting == "ssl":
        return value in STRICT_SSL
    if setting == "min_tls_version":
        return _tls_version(value) >= minimum
    return bool(value == "on")


def _zone_tls(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    minimum_text = str(config_value(args, "minimumTlsVersion", default="1.2"))
    minimum = _tls_version(minimum_text)
    wanted = {
        "ssl": "strict (validates the origin certificate)",
        "min_tls_version": f"{minimum_text} or later",
        "always_use_https": "on",
    }
    zones: dict[str, str] = {}
    settings: dict[tuple[str, Any], tuple[Any, str]] = {}
    for resource in args.resources:
        if resource.resource_type == ZONE:
            zones.setdefault(resource.urn, resource.urn)
        elif resource.resource_type in {ZONE_SETTING, DNS_RECORD}:
            zone = _zone_of(resource)
            zones.setdefault(zone, resource.urn)
            if resource.resource_type == ZONE_SETTING:
                setting = get(resource.props, "settingId")
                settings[zone, setting] = (get(resource.props, "value"), resource.urn)
    for zone, anchor in zones.items():
        for setting, want in wanted.items():
            if (zone, setting) not in settings:
                yield f"zone {zone} does not set {setting} (wanted: {want})", anchor
                continue
            value, urn = settings[zone, setting]
            if not _setting_ok(setting, value, minimum):
                yield f"zone {zone} sets {setting} to {value!r} (wanted: {want})", urn


def _alb_dns_names(resources: Sequence[PolicyResource]) -> set[str]:
    names: set[str] = set()
    for lb in (r for r in resources if r.resource_type in LOAD_BALANCERS):
        try:
            name = get(lb.props, "dnsName")
        except UnknownValueError:
            # Not yet known, so no record can hold it as a literal: a record that names this
            # ALB does so through a dependency, which `_points_at_alb` follows first.
            continue
        if name:
            names.add(str(name).rstrip(".").lower())
    return names


def _points_at_alb(record: PolicyResource, resources: Sequence[PolicyResource]) -> bool:
    if linked(record, "content", LOAD_BALANCERS):
        return True
    content = str(get(record.props, "content") or "").rstrip(".").lower()
    return content.endswith(ELB_SUFFIXES) or content in _alb_dns_names(resources)


def _records_proxied(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    for record in (r for r in args.resources if r.resource_type == DNS_RECORD):
        if _points_at_alb(record, args.resources) and not is_true(record.props, "proxied"):
            message = "the record names the ALB but is not proxied: it publishes the origin"
            yield message, record.urn


ALB = sorted(LOAD_BALANCERS)
STRINGS = {"type": "array", "items": {"type": "string"}}

POLICIES = [
    resource_rule(
        "alb-drop-invalid-headers",
        "Headers with invalid names are a request-smuggling and header-injection vector; "
        "the ALB drops them before Kong and the services parse them.",
        types=ALB, severity=Severity.MEDIUM, mandatory=True, check=_drop_invalid_headers,
        fix="Set dropInvalidHeaderFields = true.",
        scanners=["CKV_AWS_131", "AWS-0052"],
    ),
    resource_rule(
        "alb-access-logs",
        "Access logs are the origin-side record of every request, for abuse and incident "
        "analysis (Cloudflare's logs do not show what reached the origin).",
        types=ALB, severity=Severity.MEDIUM, mandatory=False, check=_access_logs,
        fix="Set accessLogs = {enabled: true, bucket: <the access-log bucket>}.",
        scanners=["CKV_AWS_91"],
    ),
    resource_rule(
        "alb-deletion-protection",
        "The ALB is the only way in; deleting it by mistake takes the platform offline and "
        "changes its DNS name.",
        types=ALB, severity=Severity.MEDIUM, mandatory=True, check=_deletion_protection,
        fix="Set enableDeletionProtection = true (eduscale:edge.albDeletionProtection).",
        scanners=["CKV_AWS_150"],
        config={"required": {"type": "boolean", "default": True}},
    ),
    resource_rule(
        "alb-desync-mitigation",
        "In monitor mode the ALB forwards requests that front and back ends may parse "
        "differently (HTTP desync / request smuggling).",
        types=ALB, severity=Severity.MEDIUM, mandatory=True, check=_desync,
        fix="Set desyncMitigationMode to defensive (AWS's default) or strictest.",
        scanners=["CKV_AWS_328"],
    ),
    stack_rule(
        "alb-listener-https-only",
        "Requests and session cookies must never cross the internet in clear text: every "
        "listener is HTTPS, or HTTP that does nothing but redirect to HTTPS.",
        severity=Severity.HIGH, mandatory=True, check=_https_only,
        fix="Use protocol HTTPS, or make the HTTP listener's only default action (and every "
        "listener rule on it) a redirect with protocol HTTPS.",
        scanners=["CKV_AWS_2", "CKV2_AWS_20", "AWS-0054"],
    ),
    resource_rule(
        "alb-listener-tls-policy",
        "TLS 1.0/1.1 and non-forward-secret ciphers are broken or deprecated; the listener "
        "offers TLS 1.2+ with forward secrecy only.",
        types=sorted(LISTENERS), severity=Severity.HIGH, mandatory=True, check=_tls_policy,
        fix="Set sslPolicy = ELBSecurityPolicy-TLS13-1-2-2021-06.",
        scanners=["CKV_AWS_103", "CKV2_AWS_74", "AWS-0047"],
        config={"allowedPolicies": {**STRINGS, "default": TLS_POLICIES}},
    ),
    resource_rule(
        "alb-target-health-check",
        "The ALB must take a Kong pod out of rotation when it stops being ready; '/' or no "
        "check keeps sending it traffic.",
        types=sorted(TARGET_GROUPS), severity=Severity.MEDIUM, mandatory=True,
        check=_health_check,
        fix="Set healthCheck = {enabled: true, path: <the readiness endpoint>}.",
        scanners=["CKV_AWS_261"],
    ),
    stack_rule(
        "alb-cloudflare-only",
        "The ALB admits Cloudflare's ranges only; anything wider lets clients reach the origin "
        "around the CDN's TLS, WAF and rate limits.",
        severity=Severity.CRITICAL, mandatory=True, check=_cloudflare_only,
        fix="Limit the ALB security group's ingress to Cloudflare's ranges "
        "(eduscale:edge.cloudflareIpv4Ranges / cloudflareIpv6Ranges).",
        scanners=["derived"],
        config={"ipv4Ranges": {**STRINGS, "default": list(CLOUDFLARE_IPV4)},
                "ipv6Ranges": {**STRINGS, "default": list(CLOUDFLARE_IPV6)}},
    ),
    stack_rule(
        "cf-zone-tls",
        "Cloudflare must validate the origin's certificate (ssl strict), refuse TLS below "
        "1.2 and redirect HTTP to HTTPS, or the CDN weakens the TLS the ALB enforces.",
        severity=Severity.HIGH, mandatory=True, check=_zone_tls,
        fix="Add zoneSetting resources: ssl = strict, min_tls_version = 1.2, "
        "always_use_https = on (the Cdn component does).",
        scanners=["derived"],
        config={"minimumTlsVersion": {"type": "string", "default": "1.2"}},
    ),
    stack_rule(
        "cf-alb-records-proxied",
        "A DNS record that names the ALB must be proxied; an unproxied one publishes the "
        "origin's address and bypasses the CDN.",
        severity=Severity.HIGH, mandatory=True, check=_records_proxied,
        fix="Set proxied = true on the record.",
        scanners=["derived"],
    ),
]  # fmt: skip
