"""Rules for origin authentication: only our Cloudflare zone can reach the ALB.

Admitting Cloudflare's address ranges (alb-cloudflare-only) admits every Cloudflare
customer: anyone may point a zone at our ALB and skip our WAF and rate limits. What
closes that door is a client certificate only our zone presents (zone-level Authenticated
Origin Pulls with our own certificate) and an HTTPS listener that verifies it (ALB mutual
TLS in verify mode against a trust store holding our CA). Cloudflare's global origin-pull
certificate does not do it: every Cloudflare account presents the same one, so a trust
store holding its CA admits them all.

The rules therefore follow the chain in the graph, through the engine's property
dependencies: listener -> trust store -> CA bundle object -> the CA certificate the stack
generates (`tls` SelfSignedCert); and zone -> uploaded origin-pull certificate -> the
certificate that CA signed (`tls` LocallySignedCert). A bundle that is not linked to a CA
of the stack cannot be shown to admit our zone only, and fails.
"""

from collections.abc import Iterable, Sequence

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

# The edge rules' own resolution of a record's zone and of "names the ALB", reused as is.
from policies.edge import (
    DNS_RECORD,
    LISTENERS,
    _points_at_alb,
    _zone_of,
)
from policies.network import LOAD_BALANCERS, linked
from policies.support import get, is_true, stack_rule

__all__ = ["POLICIES"]

TRUST_STORES = frozenset({"aws:lb/trustStore:TrustStore", "aws:alb/trustStore:TrustStore"})
BUNDLE_OBJECTS = frozenset(
    {"aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketObject:BucketObject"}
)
CA_CERTIFICATE = "tls:index/selfSignedCert:SelfSignedCert"
SIGNED_CERTIFICATE = "tls:index/locallySignedCert:LocallySignedCert"
AOP_CERTIFICATE = (
    "cloudflare:index/authenticatedOriginPullsCertificate:AuthenticatedOriginPullsCertificate"
)
AOP_SETTINGS = "cloudflare:index/authenticatedOriginPullsSettings:AuthenticatedOriginPullsSettings"

Violations = Iterable[tuple[str, str | None]]


def _internet_facing_https(listener: PolicyResource) -> bool:
    if str(get(listener.props, "protocol") or "").upper() != "HTTPS":
        return False
    balancers = linked(listener, "loadBalancerArn", LOAD_BALANCERS)
    return any(
        get(lb.props, "loadBalancerType") in {None, "application"}
        and get(lb.props, "internal") is not True
        for lb in balancers
    )


def _bundle_cas(store: PolicyResource) -> tuple[list[PolicyResource], list[PolicyResource]]:
    """The trust store's bundle objects, and the stack's CA certificates they hold."""
    objects = {
        o.urn: o
        for key in ("caCertificatesBundleS3Key", "caCertificatesBundleS3ObjectVersion")
        for o in linked(store, key, BUNDLE_OBJECTS)
    }
    cas = [ca for o in objects.values() for ca in linked(o, "content", {CA_CERTIFICATE})]
    return list(objects.values()), cas


def trusted_cas(resources: Sequence[PolicyResource]) -> set[str]:
    """URNs of the stack's CAs that some internet-facing HTTPS listener verifies against."""
    found: set[str] = set()
    for listener in resources:
        if listener.resource_type in LISTENERS and _internet_facing_https(listener):
            for store in linked(listener, "mutualAuthentication", TRUST_STORES):
                found.update(ca.urn for ca in _bundle_cas(store)[1])
    return found


def _listener_problems(listener: PolicyResource) -> Iterable[str]:
    mode = get(listener.props, "mutualAuthentication.mode")
    if mode != "verify":
        yield (
            f"the HTTPS listener does not verify client certificates (mutualAuthentication"
            f".mode is {mode or 'absent'}): any Cloudflare account's zone can reach the origin"
        )
        return
    if is_true(listener.props, "mutualAuthentication.ignoreClientCertificateExpiry"):
        yield "the listener accepts expired client certificates (ignoreClientCertificateExpiry)"
    stores = linked(listener, "mutualAuthentication", TRUST_STORES)
    if not stores:
        yield "the listener's trust store is not declared in this stack, so its CA is unknown"
    for store in stores:
        objects, cas = _bundle_cas(store)
        if not objects:
            yield "the trust store's CA bundle is not an S3 object declared in this stack"
        elif not cas:
            yield (
                "the trust store's CA bundle is not a CA this stack generates: Cloudflare's "
                "shared origin-pull CA (or any CA we do not hold) admits other zones too"
            )


def _origin_mutual_tls(args: StackValidationArgs) -> Violations:
    for listener in args.resources:
        if listener.resource_type in LISTENERS and _internet_facing_https(listener):
            for problem in _listener_problems(listener):
                yield problem, listener.urn


def _origin_zones(resources: Sequence[PolicyResource]) -> dict[str, str]:
    """Zone -> URN of a proxied record in it that names the ALB."""
    zones: dict[str, str] = {}
    for record in resources:
        proxied = record.resource_type == DNS_RECORD and is_true(record.props, "proxied")
        if proxied and _points_at_alb(record, resources):
            zones.setdefault(_zone_of(record), record.urn)
    return zones


def _zone_problems(
    zone: str, resources: Sequence[PolicyResource], trusted: set[str]
) -> Iterable[str]:
    in_zone = [r for r in resources if r.resource_type in {AOP_SETTINGS, AOP_CERTIFICATE}]
    in_zone = [r for r in in_zone if _zone_of(r) == zone]
    settings = [r for r in in_zone if r.resource_type == AOP_SETTINGS]
    if not any(is_true(s.props, "enabled") for s in settings):
        yield (
            "zone-level Authenticated Origin Pulls is not enabled: Cloudflare presents no "
            "client certificate of ours to the origin"
        )
    certificates = [r for r in in_zone if r.resource_type == AOP_CERTIFICATE]
    if not certificates:
        yield "no origin-pull client certificate of ours is uploaded to the zone"
    for certificate in certificates:
        issued = linked(certificate, "certificate", {SIGNED_CERTIFICATE})
        issuers = {ca.urn for c in issued for ca in linked(c, "caCertPem", {CA_CERTIFICATE})}
        if not issuers:
            yield "the zone's origin-pull certificate is not issued by a CA of this stack"
        elif not issuers & trusted:
            yield (
                "the ALB's trust store does not hold the CA that issued the zone's origin-pull "
                "certificate: the ALB would refuse every request"
            )


def _zone_origin_pulls(args: StackValidationArgs) -> Violations:
    trusted = trusted_cas(args.resources)
    for zone, anchor in _origin_zones(args.resources).items():
        for problem in _zone_problems(zone, args.resources, trusted):
            yield f"zone {zone}: {problem}", anchor


POLICIES = [
    stack_rule(
        "alb-origin-mutual-tls",
        "The ALB's HTTPS listener admits only clients with a certificate from our own "
        "origin-pull CA (mutual TLS, verify mode): Cloudflare's ranges and its shared "
        "origin-pull certificate serve every Cloudflare account, so without it anyone's zone "
        "reaches the origin around our WAF and rate limits.",
        severity=Severity.CRITICAL, mandatory=True, check=_origin_mutual_tls,
        fix="Set mutualAuthentication = {mode: verify, trustStoreArn} with a trust store whose "
        "bundle is the OriginAuthentication component's CA (the LoadBalancer component does).",
        scanners=["derived"],
    ),
    stack_rule(
        "cf-origin-pull-certificate",
        "A Cloudflare zone proxied to the ALB presents our own client certificate on every "
        "origin connection (zone-level Authenticated Origin Pulls), issued by the CA the "
        "ALB's trust store holds.",
        severity=Severity.HIGH, mandatory=True, check=_zone_origin_pulls,
        fix="Upload a certificate signed by the origin-pull CA to the zone and enable "
        "zone-level Authenticated Origin Pulls (the OriginAuthentication component does).",
        scanners=["derived"],
    ),
]  # fmt: skip
