"""Only our Cloudflare zone reaches the ALB: our own origin-pull certificate, verified by mTLS.

Cloudflare's ranges and its global origin-pull certificate are shared by every Cloudflare
account, so the stack runs its own CA: the zone presents a client certificate it signed
(zone-level Authenticated Origin Pulls) and the ALB's HTTPS listener verifies it against a
trust store holding that CA. The rules `alb-origin-mutual-tls` and
`cf-origin-pull-certificate` keep the chain whole.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_program
from policy_harness import policy_cli_on, policy_resource, resources_of, stack_violations
from pulumi_policy import PolicyResource

from components.origin_authentication import OriginAuthentication
from infra.graph import SECRET_MASK, Graph, RecordedResource

ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TRUST_STORE = "aws:lb/trustStore:TrustStore"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
CA = "tls:index/selfSignedCert:SelfSignedCert"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
AOP_CERTIFICATE = (
    "cloudflare:index/authenticatedOriginPullsCertificate:AuthenticatedOriginPullsCertificate"
)
AOP_SETTINGS = "cloudflare:index/authenticatedOriginPullsSettings:AuthenticatedOriginPullsSettings"
RECORD = "cloudflare:index/dnsRecord:DnsRecord"
MTLS = "alb-origin-mutual-tls"
PULLS = "cf-origin-pull-certificate"


def by_urn(graph: Graph, urn: str) -> RecordedResource:
    (found,) = [r for r in graph if r.urn == urn]
    return found


def linked(graph: Graph, resource: RecordedResource, key: str, type_: str) -> RecordedResource:
    (found,) = [
        by_urn(graph, u)
        for u in resource.property_dependencies[key]
        if by_urn(graph, u).type == type_
    ]
    return found


def https_listener(graph: Graph) -> RecordedResource:
    (found,) = [r for r in graph.of_type(LISTENER) if r.inputs["protocol"] == "HTTPS"]
    return found


# --- the shipped stacks -----------------------------------------------------------------


def test_the_https_listener_verifies_client_certificates_against_our_ca(stack_graph: Graph):
    listener = https_listener(stack_graph)
    mutual = listener.inputs["mutualAuthentication"]
    assert mutual["mode"] == "verify"
    assert mutual["ignoreClientCertificateExpiry"] is False
    store = linked(stack_graph, listener, "mutualAuthentication", TRUST_STORE)
    assert f":truststore/{store.inputs['name']}/" in mutual["trustStoreArn"]
    bundle = linked(stack_graph, store, "caCertificatesBundleS3Key", OBJECT)
    assert store.inputs["caCertificatesBundleS3ObjectVersion"]  # a new CA updates the store
    ca = linked(stack_graph, bundle, "content", CA)
    assert ca.inputs["isCaCertificate"] is True
    assert ca.inputs["allowedUses"] == ["cert_signing", "crl_signing"]
    assert bundle.inputs["content"].startswith("-----BEGIN CERTIFICATE-----")
    # The very CA that signs the certificate the zone presents.
    (client,) = stack_graph.of_type(SIGNED)
    assert client.inputs["caCertPem"] == bundle.inputs["content"]
    assert linked(stack_graph, client, "caCertPem", CA).urn == ca.urn


def test_the_zone_presents_a_client_certificate_of_ours_and_its_key_stays_secret(
    stack_graph: Graph,
):
    zone_id = stack_graph.of_type(RECORD)[0].inputs["zoneId"]
    (uploaded,) = stack_graph.of_type(AOP_CERTIFICATE)
    (settings,) = stack_graph.of_type(AOP_SETTINGS)
    assert uploaded.inputs["zoneId"] == settings.inputs["zoneId"] == zone_id
    assert settings.inputs["enabled"] is True
    assert uploaded.inputs["privateKey"] == SECRET_MASK
    client = linked(stack_graph, uploaded, "certificate", SIGNED)
    assert client.inputs["allowedUses"] == ["digital_signature", "key_encipherment", "client_auth"]
    assert client.inputs["caPrivateKeyPem"] == SECRET_MASK
    assert client.inputs["validityPeriodHours"] == 365 * 24
    assert client.inputs["earlyRenewalHours"] == 30 * 24  # renewed by a deploy a month ahead
    assert stack_graph.outputs["originPullCertificateExpiry"] == "2027-01-01T00:00:00Z"


def test_the_alb_demands_certificates_only_once_cloudflare_presents_one(stack_graph: Graph):
    listener = https_listener(stack_graph)
    store = linked(stack_graph, listener, "mutualAuthentication", TRUST_STORE)
    bundle = linked(stack_graph, store, "caCertificatesBundleS3Key", OBJECT)
    waits_for = {by_urn(stack_graph, u).type for u in bundle.property_dependencies["content"]}
    assert {AOP_CERTIFICATE, AOP_SETTINGS} <= waits_for


def test_the_ca_bundle_bucket_is_locked_down_and_logged(stack_graph: Graph):
    store = stack_graph.one(TRUST_STORE)
    name = store.inputs["caCertificatesBundleS3Bucket"]
    (bucket,) = [
        b for b in stack_graph.of_type("aws:s3/bucket:Bucket") if b.inputs["bucket"] == name
    ]

    def setting(type_: str) -> RecordedResource:
        (found,) = [
            r for r in stack_graph.of_type(type_) if bucket.urn in r.property_dependencies["bucket"]
        ]
        return found

    encryption = setting(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert (
        encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        == "aws:kms"
    )
    versioning = setting("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    logging = setting("aws:s3/bucketLogging:BucketLogging")
    assert logging.inputs["targetPrefix"] == "s3/"
    log_bucket = by_urn(stack_graph, logging.property_dependencies["targetBucket"][0])
    (log_policy,) = [
        p
        for p in stack_graph.of_type("aws:s3/bucketPolicy:BucketPolicy")
        if log_bucket.urn in p.property_dependencies["bucket"]
    ]
    statements = json.loads(log_policy.inputs["policy"])["Statement"]
    (delivery,) = [s for s in statements if s["Sid"] == "S3ServerAccessLogDelivery"]
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{name}"


def test_the_component_refuses_a_renewal_window_longer_than_the_certificate():
    with pytest.raises(ValueError, match="renew_days_before_expiry < client_certificate"):
        run_program(
            lambda: OriginAuthentication(
                "origin",
                {
                    "zone_id": "z",
                    "client_certificate_validity_days": 30,
                    "renew_days_before_expiry": 30,
                },
            )
        )


# --- the rules --------------------------------------------------------------------------

ZONE_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::eduscale::{type_}::{name}"


def chain(
    *,
    listener: dict[str, Any] | None = None,
    internal: bool = False,
    bundle_from_our_ca: bool = True,
    store_linked: bool = True,
    settings: dict[str, Any] | None = None,
    uploaded: bool = True,
    signed_by_other_ca: bool = False,
    uploaded_linked: bool = True,
) -> list[PolicyResource]:
    """The whole origin-authentication chain, as a stack rule sees it; each flag breaks it."""
    ca = policy_resource(CA, {"isCaCertificate": True}, urn(CA, "ca"))
    other_ca = policy_resource(CA, {"isCaCertificate": True}, urn(CA, "other-ca"))
    bundle = policy_resource(
        OBJECT,
        {"key": "client-ca.pem", "content": "-----BEGIN CERTIFICATE-----\n..."},
        urn(OBJECT, "bundle"),
        [ca] if bundle_from_our_ca else [],
    )
    store = policy_resource(TRUST_STORE, {"name": "ts"}, urn(TRUST_STORE, "ts"), [bundle])
    alb = policy_resource(
        ALB,
        {"loadBalancerType": "application", "internal": internal, "dnsName": "x.elb.amazonaws.com"},
        urn(ALB, "alb"),
    )
    https = policy_resource(
        LISTENER,
        {
            "protocol": "HTTPS",
            "port": 443,
            "mutualAuthentication": {
                "mode": "verify",
                "trustStoreArn": "arn:ts",
                "ignoreClientCertificateExpiry": False,
            },
            **(listener or {}),
        },
        urn(LISTENER, "https"),
        [alb, store] if store_linked else [alb],
    )
    http = policy_resource(LISTENER, {"protocol": "HTTP", "port": 80}, urn(LISTENER, "http"), [alb])
    record = policy_resource(
        RECORD,
        {
            "zoneId": ZONE_ID,
            "name": "api",
            "type": "CNAME",
            "content": "x.elb.amazonaws.com",
            "proxied": True,
        },
        urn(RECORD, "api"),
        [alb],
    )
    signed = policy_resource(
        SIGNED,
        {"allowedUses": ["client_auth"]},
        urn(SIGNED, "client"),
        [other_ca if signed_by_other_ca else ca],
    )
    resources = [ca, other_ca, bundle, store, alb, https, http, record, signed]
    resources.append(
        policy_resource(
            AOP_SETTINGS,
            {"zoneId": ZONE_ID, "enabled": True, **(settings or {})},
            urn(AOP_SETTINGS, "zone"),
        )
    )
    if uploaded:
        resources.append(
            policy_resource(
                AOP_CERTIFICATE,
                {"zoneId": ZONE_ID, "certificate": "-----BEGIN..."},
                urn(AOP_CERTIFICATE, "cert"),
                [signed] if uploaded_linked else [],
            )
        )
    return resources


@pytest.mark.parametrize("rule", [MTLS, PULLS])
def test_the_whole_chain_passes(rule: str):
    assert stack_violations(rule, chain()) == []


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"listener": {"mutualAuthentication": None}}, "mode is absent"),
        ({"listener": {"mutualAuthentication": {"mode": "off"}}}, "mode is off"),
        (
            {
                "listener": {
                    "mutualAuthentication": {"mode": "passthrough", "trustStoreArn": "arn:ts"}
                }
            },
            "mode is passthrough",
        ),
        (
            {
                "listener": {
                    "mutualAuthentication": {
                        "mode": "verify",
                        "trustStoreArn": "arn:ts",
                        "ignoreClientCertificateExpiry": True,
                    }
                }
            },
            "accepts expired client certificates",
        ),
        ({"store_linked": False}, "trust store is not declared in this stack"),
        ({"bundle_from_our_ca": False}, "not a CA this stack generates"),
    ],
    ids=[
        "no-mtls",
        "off",
        "passthrough",
        "expired-accepted",
        "foreign-trust-store",
        "shared-cloudflare-ca",
    ],
)
def test_a_listener_that_admits_other_zones_fails(broken: dict[str, Any], message: str):
    found = stack_violations(MTLS, chain(**broken))
    assert len(found) == 1, found
    ((text, where),) = found
    assert message in text
    assert where == urn(LISTENER, "https")


def test_an_internal_alb_needs_no_origin_authentication():
    assert (
        stack_violations(MTLS, chain(internal=True, listener={"mutualAuthentication": None})) == []
    )


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"settings": {"enabled": False}}, "zone-level Authenticated Origin Pulls is not enabled"),
        ({"uploaded": False}, "no origin-pull client certificate of ours is uploaded"),
        ({"uploaded_linked": False}, "not issued by a CA of this stack"),
        ({"signed_by_other_ca": True}, "the ALB would refuse every request"),
    ],
    ids=["pulls-off", "no-certificate", "foreign-certificate", "ca-mismatch"],
)
def test_a_zone_that_does_not_present_our_certificate_fails(broken: dict[str, Any], message: str):
    ((text, where),) = stack_violations(PULLS, chain(**broken))
    assert text.startswith(f"zone {ZONE_ID}: ")
    assert message in text
    assert where == urn(RECORD, "api")


def test_a_zone_with_no_record_on_the_alb_needs_no_origin_pulls():
    resources = [r for r in chain(uploaded=False) if r.resource_type != RECORD]
    assert stack_violations(PULLS, resources) == []


def without_mutual_tls(document: dict[str, Any]) -> None:
    for listener in resources_of(document, LISTENER):
        listener["inputs"].pop("mutualAuthentication", None)
        listener["property_dependencies"].pop("mutualAuthentication", None)


def pulls_disabled(document: dict[str, Any]) -> None:
    (settings,) = resources_of(document, AOP_SETTINGS)
    settings["inputs"]["enabled"] = False


def global_ca_bundle(document: dict[str, Any]) -> None:
    """The trust store holds a literal bundle (as Cloudflare's shared CA would be)."""
    (bundle,) = resources_of(document, OBJECT)
    bundle["inputs"]["content"] = "-----BEGIN CERTIFICATE-----\norigin-pull.cloudflare.net\n"
    bundle["property_dependencies"]["content"] = []


@pytest.mark.parametrize(
    ("mutate", "rules"),
    [
        (without_mutual_tls, {MTLS, PULLS}),
        (pulls_disabled, {PULLS}),
        (global_ca_bundle, {MTLS, PULLS}),
    ],
    ids=["listener-without-mtls", "zone-pulls-disabled", "trust-store-with-a-foreign-ca"],
)
def test_a_broken_prod_chain_fails_naming_the_rules(
    prod_graph: Graph, tmp_path: Path, mutate: Any, rules: set[str]
):
    status, broken = policy_cli_on(prod_graph, tmp_path, mutate)
    assert status == 1
    assert broken == rules
