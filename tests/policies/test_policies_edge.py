"""Edge rules: the ALB and its listeners and target group, and Cloudflare in front of it."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from policy_harness import (
    mutated_graph_file,
    policy_resource,
    resource_violations,
    resources_of,
    stack_violations,
)
from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError

from infra.cli import main
from infra.graph import Graph
from policies.catalogue import ALL_POLICIES
from stacks.cloudflare_ranges import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
SG = "aws:ec2/securityGroup:SecurityGroup"
SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
RECORD = "cloudflare:index/dnsRecord:DnsRecord"
ZONE_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

LOAD_BALANCER: dict[str, Any] = {
    "loadBalancerType": "application",
    "internal": False,
    "dropInvalidHeaderFields": True,
    "accessLogs": {"enabled": True, "bucket": "logs", "prefix": "alb"},
    "enableDeletionProtection": True,
    "desyncMitigationMode": "strictest",
}

CASES = [
    (
        "alb-drop-invalid-headers",
        "dropInvalidHeaderFields",
        False,
        "dropInvalidHeaderFields is not true",
    ),
    ("alb-access-logs", "accessLogs", {"enabled": False, "bucket": "logs"}, "access logs are off"),
    ("alb-access-logs", "accessLogs", {"enabled": True}, "no bucket"),
    ("alb-deletion-protection", "enableDeletionProtection", False, "deletion protection is off"),
    ("alb-desync-mitigation", "desyncMitigationMode", "monitor", "only monitors"),
]
AWS_DEFAULT_SAFE = {"desyncMitigationMode"}
"""Absent desyncMitigationMode is "defensive"."""


def without(props: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != key}


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES}))
def test_a_compliant_alb_passes(name: str):
    assert resource_violations(name, ALB, LOAD_BALANCER) == []


@pytest.mark.parametrize(("name", "key", "bad", "message"), CASES)
def test_a_bad_alb_value_fails(name: str, key: str, bad: object, message: str):
    (found,) = resource_violations(name, ALB, {**LOAD_BALANCER, key: bad})
    assert message in found


@pytest.mark.parametrize(
    ("name", "key"), sorted({(c[0], c[1]) for c in CASES if c[1] not in AWS_DEFAULT_SAFE})
)
def test_an_absent_alb_value_fails(name: str, key: str):
    assert resource_violations(name, ALB, without(LOAD_BALANCER, key))


def test_absent_desync_mode_is_awss_defensive_default():
    assert (
        resource_violations(
            "alb-desync-mitigation", ALB, without(LOAD_BALANCER, "desyncMitigationMode")
        )
        == []
    )


def test_deletion_protection_follows_the_config():
    off = {**LOAD_BALANCER, "enableDeletionProtection": False}
    assert resource_violations("alb-deletion-protection", ALB, off, {"required": False}) == []


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES}))
def test_network_load_balancers_and_other_types_are_ignored(name: str):
    nlb = {"loadBalancerType": "network", "desyncMitigationMode": "monitor"}
    assert resource_violations(name, ALB, nlb) == []
    assert (
        resource_violations(name, "aws:ec2/instance:Instance", {"desyncMitigationMode": "monitor"})
        == []
    )


def test_an_unknown_alb_value_during_preview_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        resource_violations(
            "alb-drop-invalid-headers",
            ALB,
            {**LOAD_BALANCER, "dropInvalidHeaderFields": UNKNOWN_BOOLEAN_VALUE},
        )


HTTPS: dict[str, Any] = {
    "protocol": "HTTPS",
    "port": 443,
    "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "defaultActions": [{"type": "forward", "targetGroupArn": "arn:tg"}],
}
REDIRECT = [
    {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
]
HTTP: dict[str, Any] = {"protocol": "HTTP", "port": 80, "defaultActions": REDIRECT}


def test_a_tls13_policy_passes():
    assert resource_violations("alb-listener-tls-policy", LISTENER, HTTPS) == []


@pytest.mark.parametrize(
    "policy",
    [
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    ],
)
def test_an_old_or_weak_tls_policy_fails(policy: str):
    (found,) = resource_violations(
        "alb-listener-tls-policy", LISTENER, {**HTTPS, "sslPolicy": policy}
    )
    assert f"sslPolicy {policy} is not a TLS 1.2+" in found


def test_an_absent_tls_policy_is_awss_tls10_default():
    (found,) = resource_violations("alb-listener-tls-policy", LISTENER, without(HTTPS, "sslPolicy"))
    assert "accepts TLS 1.0" in found


def test_the_tls_policies_follow_the_config():
    custom = {**HTTPS, "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09"}
    assert (
        resource_violations(
            "alb-listener-tls-policy", LISTENER, custom, {"allowedPolicies": [custom["sslPolicy"]]}
        )
        == []
    )


def test_a_plain_http_listener_has_no_tls_policy_to_check():
    assert resource_violations("alb-listener-tls-policy", LISTENER, HTTP) == []


def listeners(*props: dict[str, Any]) -> list[PolicyResource]:
    return [policy_resource(LISTENER, p, f"urn:test::listener-{i}") for i, p in enumerate(props)]


def test_https_and_a_redirecting_http_listener_pass():
    assert stack_violations("alb-listener-https-only", listeners(HTTPS, HTTP)) == []


@pytest.mark.parametrize(
    "actions",
    [
        [{"type": "forward", "targetGroupArn": "arn:tg"}],
        [{"type": "redirect", "redirect": {"protocol": "HTTP", "port": "8080"}}],
        [{"type": "redirect", "redirect": {"protocol": "#{protocol}"}}],
        [*REDIRECT, {"type": "forward", "targetGroupArn": "arn:tg"}],
        [],
        None,
    ],
    ids=[
        "forward",
        "redirect-to-http",
        "redirect-keeping-protocol",
        "two-actions",
        "none",
        "absent",
    ],
)
def test_an_http_listener_that_does_more_than_redirect_fails(actions: Any):
    ((message, urn),) = stack_violations(
        "alb-listener-https-only", listeners({**HTTP, "defaultActions": actions})
    )
    assert urn == "urn:test::listener-0"
    assert "does more than redirect to HTTPS" in message


def test_an_absent_protocol_is_http():
    assert stack_violations(
        "alb-listener-https-only", listeners({"port": 80, "defaultActions": [{"type": "forward"}]})
    )


def test_a_tcp_listener_is_not_encrypted():
    ((message, _),) = stack_violations(
        "alb-listener-https-only", listeners({"protocol": "TCP", "port": 5432})
    )
    assert "speaks TCP" in message


def test_a_network_load_balancers_tcp_listener_may_pass_tls_through():
    nlb = policy_resource(ALB, {"loadBalancerType": "network"}, "urn:test::nlb")
    tcp = policy_resource(LISTENER, {"protocol": "TCP", "port": 443}, "urn:test::tcp", [nlb])
    assert stack_violations("alb-listener-https-only", [nlb, tcp]) == []


def test_a_listener_rule_on_the_http_listener_must_redirect_too():
    http, https = listeners(HTTP, HTTPS)
    forward = {"actions": [{"type": "forward", "targetGroupArn": "arn:tg"}], "priority": 1}
    on_http = policy_resource(LISTENER_RULE, forward, "urn:test::on-http", [http])
    on_https = policy_resource(LISTENER_RULE, forward, "urn:test::on-https", [https])
    redirecting = policy_resource(
        LISTENER_RULE, {"actions": REDIRECT}, "urn:test::redirecting", [http]
    )
    found = stack_violations(
        "alb-listener-https-only", [http, https, on_http, on_https, redirecting]
    )
    assert [urn for _, urn in found] == ["urn:test::on-http"]


TARGETS: dict[str, Any] = {
    "protocol": "HTTPS",
    "port": 8443,
    "targetType": "ip",
    "healthCheck": {"enabled": True, "path": "/status/ready", "protocol": "HTTP", "port": "8100"},
}


def test_a_target_group_with_a_readiness_check_passes():
    assert resource_violations("alb-target-health-check", TARGET_GROUP, TARGETS) == []


@pytest.mark.parametrize(
    ("health_check", "message"),
    [
        ({"enabled": False, "path": "/status/ready"}, "health checks are off"),
        ({"enabled": True}, "no path"),
        ({"enabled": True, "path": ""}, "no path"),
        (None, "no path"),
    ],
)
def test_a_target_group_without_a_real_check_fails(health_check: Any, message: str):
    (found,) = resource_violations(
        "alb-target-health-check", TARGET_GROUP, {**TARGETS, "healthCheck": health_check}
    )
    assert message in found


def test_absent_enabled_is_awss_default_on():
    assert (
        resource_violations(
            "alb-target-health-check", TARGET_GROUP, {**TARGETS, "healthCheck": {"path": "/ready"}}
        )
        == []
    )


def test_a_tcp_health_check_needs_no_path():
    tcp = {"protocol": "TCP", "port": 5432, "healthCheck": {"enabled": True, "protocol": "TCP"}}
    assert resource_violations("alb-target-health-check", TARGET_GROUP, tcp) == []


def edge(
    ingress: list[dict[str, Any]],
    *,
    internal: bool = False,
    extra: list[PolicyResource] | None = None,
) -> list[PolicyResource]:
    group = policy_resource(SG, {"description": "alb", "ingress": ingress}, "urn:test::alb-sg")
    alb = policy_resource(ALB, {**LOAD_BALANCER, "internal": internal}, "urn:test::alb", [group])
    return [group, alb, *(extra or [])]


CLOUDFLARE_ONLY = [
    {
        "protocol": "tcp",
        "fromPort": 443,
        "toPort": 443,
        "cidrBlocks": list(CLOUDFLARE_IPV4),
        "ipv6CidrBlocks": list(CLOUDFLARE_IPV6),
    },
    {"protocol": "tcp", "fromPort": 80, "toPort": 80, "cidrBlocks": list(CLOUDFLARE_IPV4)},
]


def test_the_rules_default_ranges_are_the_stacks():
    (rule,) = [p for p in ALL_POLICIES if p.name == "alb-cloudflare-only"]
    assert rule.config_schema is not None
    assert rule.config_schema.properties["ipv4Ranges"]["default"] == list(CLOUDFLARE_IPV4)
    assert rule.config_schema.properties["ipv6Ranges"]["default"] == list(CLOUDFLARE_IPV6)


def test_cloudflares_ranges_and_parts_of_them_pass():
    narrower = [
        {
            "protocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
            "cidrBlocks": ["104.16.1.0/24"],
            "securityGroups": ["sg-x"],
        }
    ]
    assert stack_violations("alb-cloudflare-only", edge(CLOUDFLARE_ONLY)) == []
    assert stack_violations("alb-cloudflare-only", edge(narrower)) == []


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ({"cidrBlocks": ["0.0.0.0/0"]}, "0.0.0.0/0"),
        ({"cidrBlocks": [*CLOUDFLARE_IPV4, "203.0.113.0/24"]}, "203.0.113.0/24"),
        ({"cidrBlocks": ["104.0.0.0/8"]}, "104.0.0.0/8"),
        ({"ipv6CidrBlocks": ["::/0"]}, "::/0"),
        ({"prefixListIds": ["pl-1"]}, "a prefix list"),
    ],
)
def test_anything_beyond_cloudflare_fails(source: dict[str, Any], shown: str):
    ((message, urn),) = stack_violations(
        "alb-cloudflare-only", edge([{"protocol": "tcp", "fromPort": 443, "toPort": 443, **source}])
    )
    assert urn == "urn:test::alb-sg"
    assert (
        f"ingress rule 1 of the ALB's security group admits {shown}, outside Cloudflare's ranges"
        in message
    )


def test_a_standalone_rule_on_the_albs_group_is_checked():
    resources = edge(CLOUDFLARE_ONLY)
    props = {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "198.51.100.0/24"}
    resources.append(
        policy_resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            props,
            "urn:test::extra",
            [resources[0]],
        )
    )
    ((_, urn),) = stack_violations("alb-cloudflare-only", resources)
    assert urn == "urn:test::extra"


def test_an_internal_alb_is_not_behind_cloudflare():
    assert (
        stack_violations(
            "alb-cloudflare-only", edge([{"cidrBlocks": ["10.0.0.0/8"]}], internal=True)
        )
        == []
    )


def test_an_alb_without_a_declared_group_cannot_be_shown_safe():
    alb = policy_resource(ALB, LOAD_BALANCER, "urn:test::alb")
    ((message, urn),) = stack_violations("alb-cloudflare-only", [alb])
    assert urn == "urn:test::alb"
    assert "no security group" in message


def test_the_ranges_follow_the_config():
    found = stack_violations(
        "alb-cloudflare-only",
        edge(CLOUDFLARE_ONLY),
        {"ipv4Ranges": ["203.0.113.0/24"], "ipv6Ranges": []},
    )
    assert len(found) == 2


def zone(settings: dict[str, Any], zone_id: str = ZONE_ID) -> list[PolicyResource]:
    return [
        policy_resource(
            SETTING,
            {"zoneId": zone_id, "settingId": key, "value": value},
            f"urn:test::{zone_id[:4]}-{key}",
        )
        for key, value in settings.items()
    ]


SAFE = {"ssl": "strict", "min_tls_version": "1.2", "always_use_https": "on", "tls_1_3": "on"}


@pytest.mark.parametrize(("key", "value"), [("ssl", "full_strict"), ("min_tls_version", "1.3")])
def test_a_strict_zone_passes(key: str, value: str):
    assert stack_violations("cf-zone-tls", zone(SAFE)) == []
    assert stack_violations("cf-zone-tls", zone({**SAFE, key: value})) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ssl", "full"),
        ("ssl", "flexible"),
        ("ssl", "off"),
        ("min_tls_version", "1.0"),
        ("min_tls_version", "1.1"),
        ("min_tls_version", "x"),
        ("always_use_https", "off"),
    ],
)
def test_a_weak_setting_fails_on_the_setting(key: str, value: str):
    ((message, urn),) = stack_violations("cf-zone-tls", zone({**SAFE, key: value}))
    assert urn == f"urn:test::a1b2-{key}"
    assert f"sets {key} to {value!r}" in message


@pytest.mark.parametrize("key", ["ssl", "min_tls_version", "always_use_https"])
def test_a_missing_setting_fails(key: str):
    ((message, _),) = stack_violations("cf-zone-tls", zone(without(SAFE, key)))
    assert f"zone {ZONE_ID} does not set {key}" in message


def test_a_zone_with_only_a_record_has_none_of_the_settings():
    other = "0" * 32
    record = policy_resource(
        RECORD, {"zoneId": other, "name": "x", "proxied": True}, "urn:test::record"
    )
    found = stack_violations("cf-zone-tls", [*zone(SAFE), record])
    assert {urn for _, urn in found} == {"urn:test::record"}
    assert len(found) == 3


def test_the_minimum_tls_version_follows_the_config():
    assert stack_violations("cf-zone-tls", zone(SAFE), {"minimumTlsVersion": "1.3"})


def test_a_zone_resource_in_the_stack_links_its_settings_by_dependency():
    zone_resource = policy_resource(
        "cloudflare:index/zone:Zone", {"name": "eduscale.example"}, "urn:test::zone"
    )
    settings = [
        policy_resource(
            SETTING,
            {"zoneId": UNKNOWN_STRING_VALUE, "settingId": k, "value": v},
            f"urn:test::{k}",
            [zone_resource],
        )
        for k, v in SAFE.items()
    ]
    assert stack_violations("cf-zone-tls", [zone_resource, *settings]) == []
    assert len(stack_violations("cf-zone-tls", [zone_resource])) == 3


def alb_record(*, proxied: Any, **props: Any) -> list[PolicyResource]:
    alb = policy_resource(ALB, LOAD_BALANCER, "urn:test::alb")
    record = {"zoneId": ZONE_ID, "type": "CNAME", "name": "api", "content": "alb.example", **props}
    if proxied is not None:
        record["proxied"] = proxied
    return [alb, policy_resource(RECORD, record, "urn:test::record", [alb])]


def test_a_proxied_record_for_the_alb_passes():
    assert stack_violations("cf-alb-records-proxied", alb_record(proxied=True)) == []


@pytest.mark.parametrize("proxied", [False, None])
def test_an_unproxied_record_for_the_alb_fails(proxied: Any):
    ((message, urn),) = stack_violations("cf-alb-records-proxied", alb_record(proxied=proxied))
    assert urn == "urn:test::record"
    assert "publishes the origin" in message


def test_a_record_naming_an_elb_by_value_fails():
    record = {
        "zoneId": ZONE_ID,
        "content": "other-123.eu-west-1.elb.amazonaws.com.",
        "proxied": False,
    }
    assert stack_violations(
        "cf-alb-records-proxied", [policy_resource(RECORD, record, "urn:test::r")]
    )


def test_a_record_equal_to_the_albs_dns_name_fails():
    alb = policy_resource(ALB, {**LOAD_BALANCER, "dnsName": "origin.example.com"}, "urn:test::alb")
    record = policy_resource(
        RECORD, {"content": "Origin.example.com", "proxied": False}, "urn:test::r"
    )
    assert stack_violations("cf-alb-records-proxied", [alb, record])


def test_other_records_may_be_unproxied():
    validation = {
        "zoneId": ZONE_ID,
        "type": "CNAME",
        "content": "_abc.acm-validations.aws",
        "proxied": False,
    }
    assert (
        stack_violations(
            "cf-alb-records-proxied", [policy_resource(RECORD, validation, "urn:test::r")]
        )
        == []
    )


def test_an_alb_whose_dns_name_is_not_known_yet_is_followed_by_dependency():
    alb = policy_resource(ALB, {**LOAD_BALANCER, "dnsName": UNKNOWN_STRING_VALUE}, "urn:test::alb")
    linked = policy_resource(
        RECORD, {"content": UNKNOWN_STRING_VALUE, "proxied": False}, "urn:test::linked", [alb]
    )
    other = policy_resource(
        RECORD, {"content": "_x.acm-validations.aws", "proxied": False}, "urn:test::other"
    )
    assert [urn for _, urn in stack_violations("cf-alb-records-proxied", [alb, linked, other])] == [
        "urn:test::linked"
    ]


def test_an_unknown_proxied_flag_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        stack_violations("cf-alb-records-proxied", alb_record(proxied=UNKNOWN_BOOLEAN_VALUE))


def broken_rules(graph: Graph, path: Path, mutate: Callable[[dict[str, Any]], None]) -> set[str]:
    """The mandatory rules `eduscale policy` reports for `graph` after `mutate`."""
    report = path / "violations.json"
    assert (
        main(
            [
                "policy",
                "--graph",
                str(mutated_graph_file(graph, path / "graph.json", mutate)),
                "--json",
                str(report),
            ]
        )
        == 1
    )
    return {v["rule"] for v in json.loads(report.read_text()) if v["mandatory"]}


def named(document: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(r for r in resources_of(document, kind) if r["name"] == name)


def open_the_alb_to_the_world(document: dict[str, Any]) -> None:
    https = named(document, SG, "alb-sg")["inputs"]["ingress"][0]
    assert https["fromPort"] == 443
    https["cidrBlocks"] = ["0.0.0.0/0"]


def forward_plain_http(document: dict[str, Any]) -> None:
    named(document, LISTENER, "alb-http")["inputs"]["defaultActions"] = [
        {"type": "forward", "targetGroupArn": "arn:tg"}
    ]


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (open_the_alb_to_the_world, "alb-cloudflare-only"),
        (forward_plain_http, "alb-listener-https-only"),
    ],
    ids=["alb-open-to-the-world", "http-forwards"],
)
def test_the_cli_fails_a_broken_prod_edge(
    prod_graph: Graph,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutate: Callable[[dict[str, Any]], None],
    rule: str,
):
    assert broken_rules(prod_graph, tmp_path, mutate) == {rule}
    assert f"[mandatory] {rule}" in capsys.readouterr().out
