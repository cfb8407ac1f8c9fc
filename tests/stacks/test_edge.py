"""The edge as both stacks declare it: Cloudflare, the ALB, Kong, and the diagram."""

import ipaddress
import json
from typing import Any

import pytest
from conftest import PROJECT_DIR

from contracts.routes import ROUTES
from infra.diagram import architecture_edges, render_mermaid
from infra.graph import Graph, RecordedResource
from infra.stack_files import load_stack
from stacks.config import StackConfig, parse_stack_config

SG = "aws:ec2/securityGroup:SecurityGroup"
LISTENER = "aws:lb/listener:Listener"


def config_of(stack: str) -> StackConfig:
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config)


def alb_group(graph: Graph) -> RecordedResource:
    alb = graph.one("aws:lb/loadBalancer:LoadBalancer")
    (group,) = [graph.by_urn(u) for u in alb.dependencies if graph.by_urn(u).type == SG]
    return group


def kong_config(graph: Graph) -> dict[str, Any]:
    (config_map,) = [
        c for c in graph.of_type("kubernetes:core/v1:ConfigMap") if "kong.json" in c.inputs["data"]
    ]
    parsed: dict[str, Any] = json.loads(config_map.inputs["data"]["kong.json"])
    return parsed


# -- The chain --------------------------------------------------------------------------

DESIGN = [
    ("client", "cdn"),
    ("cdn", "alb"),
    ("alb", "api_gateway"),
    ("api_gateway", "auth"),
    ("api_gateway", "course"),
    ("api_gateway", "ai_orchestrator"),
    ("auth", "cache"),
    ("auth", "database_writer"),
    ("course", "database_replicas"),
    ("ai_orchestrator", "event_bus"),
    ("event_bus", "generation_worker"),
    ("event_bus", "indexer_worker"),
    ("generation_worker", "openai"),
    ("indexer_worker", "qdrant"),
]


@pytest.mark.parametrize(("source", "target"), DESIGN)
def test_the_designs_chain_exists_as_real_dependencies(
    stack_graph: Graph, source: str, target: str
):
    _, edges = architecture_edges(stack_graph)
    assert (source, target) in edges


def test_auth_never_reads_replicas_and_workers_do_not_call_the_gateway(stack_graph: Graph):
    _, edges = architecture_edges(stack_graph)
    assert ("auth", "database_replicas") not in edges
    assert not {(w, "api_gateway") for w in ("generation_worker", "indexer_worker")} & edges
    assert ("client", "alb") not in edges


def test_the_diagram_is_mermaid_with_labelled_tiers(prod_graph: Graph):
    diagram = render_mermaid(prod_graph)
    assert diagram.startswith("flowchart LR\n")
    assert '    database_writer["Postgres writer"]' in diagram
    assert "    client([Client])" in diagram
    assert "    cdn --> alb" in diagram


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_readme_and_the_docs_home_show_the_diagram_of_the_prod_stack(
    prod_graph: Graph, page: str
):
    assert render_mermaid(prod_graph).strip() in (PROJECT_DIR / page).read_text()


# -- The origin is reachable only through Cloudflare ----------------------------------


def test_the_alb_admits_only_cloudflares_ranges(stack_graph: Graph):
    edge = config_of(stack_graph.stack).edge
    rules = alb_group(stack_graph).inputs["ingress"]
    assert sorted(r["fromPort"] for r in rules) == [80, 443]
    for rule in rules:
        assert set(rule["cidrBlocks"]) == set(edge.cloudflare_ipv4_ranges)
        assert set(rule["ipv6CidrBlocks"]) == set(edge.cloudflare_ipv6_ranges)
        for cidr in rule["cidrBlocks"] + rule["ipv6CidrBlocks"]:
            assert ipaddress.ip_network(cidr).prefixlen >= 12, cidr


def test_the_alb_forwards_only_into_the_vpc(stack_graph: Graph):
    (egress,) = alb_group(stack_graph).inputs["egress"]
    assert egress["cidrBlocks"] == [config_of(stack_graph.stack).network.cidr]


# -- HTTPS everywhere --------------------------------------------------------------------


def test_the_https_listener_uses_a_tls12_plus_policy_and_the_validated_certificate(
    stack_graph: Graph,
):
    listeners = {r.inputs["port"]: r.inputs for r in stack_graph.of_type(LISTENER)}
    https = listeners[443]
    assert https["protocol"] == "HTTPS"
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    validation = stack_graph.one("aws:acm/certificateValidation:CertificateValidation")
    assert https["certificateArn"].startswith("arn:aws:acm:")
    listener = next(r for r in stack_graph.of_type(LISTENER) if r.inputs["port"] == 443)
    assert validation.urn in listener.dependencies


def test_http_only_redirects_to_https(stack_graph: Graph):
    http = next(r.inputs for r in stack_graph.of_type(LISTENER) if r.inputs["port"] == 80)
    (action,) = http["defaultActions"]
    assert action["type"] == "redirect"
    assert action["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}


def test_the_alb_drops_bad_headers_logs_and_encrypts_to_kong(stack_graph: Graph):
    alb = stack_graph.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["desyncMitigationMode"] == "strictest"
    assert alb["internal"] is False
    assert alb["accessLogs"]["enabled"] is True
    assert (
        alb["enableDeletionProtection"] is config_of(stack_graph.stack).edge.alb_deletion_protection
    )
    target = stack_graph.one("aws:lb/targetGroup:TargetGroup").inputs
    assert (target["protocol"], target["targetType"], target["port"]) == ("HTTPS", "ip", 8443)
    assert target["healthCheck"]["path"] == "/status/ready"


def test_prod_alb_is_protected_from_deletion(prod_graph: Graph):
    assert (
        prod_graph.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"]
        is True
    )


def alb_log_bucket_setting(graph: Graph, type_token: str) -> RecordedResource:
    """The ALB access-log bucket's setting of `type_token` (other buckets have theirs)."""
    (found,) = [r for r in graph.of_type(type_token) if r.name == "alb-access-logs"]
    return found


def test_access_logs_bucket_is_private_encrypted_and_expiring(stack_graph: Graph):
    block = alb_log_bucket_setting(
        stack_graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    ).inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    encryption = alb_log_bucket_setting(
        stack_graph,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    assert (
        encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        == "AES256"
    )
    lifecycle = alb_log_bucket_setting(
        stack_graph, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    assert (
        lifecycle.inputs["rules"][0]["expiration"]["days"]
        == config_of(stack_graph.stack).edge.access_log_retention_days
    )
    policy = json.loads(
        alb_log_bucket_setting(stack_graph, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    )
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_kong_is_bound_to_the_target_group(stack_graph: Graph):
    binding = stack_graph.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding").inputs
    assert binding["spec"]["serviceRef"] == {"name": "api-gateway-proxy", "port": 8443}
    assert binding["metadata"]["namespace"] == "gateway"


def test_cloudflare_is_strict_tls_https_only_with_hsts(stack_graph: Graph):
    settings = {
        s.inputs["settingId"]: s.inputs["value"]
        for s in stack_graph.of_type("cloudflare:index/zoneSetting:ZoneSetting")
    }
    assert settings["ssl"] == "strict"
    assert settings["always_use_https"] == "on"
    assert settings["min_tls_version"] == "1.2"
    assert settings["tls_1_3"] == "on"
    # The setting's value is free-form JSON: Cloudflare's own snake_case names.
    assert settings["security_header"]["strict_transport_security"]["enabled"] is True


def test_both_hosts_are_proxied_to_the_alb(stack_graph: Graph):
    edge = config_of(stack_graph.stack).edge
    records = {
        r.inputs["name"]: r.inputs
        for r in stack_graph.of_type("cloudflare:index/dnsRecord:DnsRecord")
        if r.inputs["proxied"]
    }
    assert set(records) == {edge.api_hostname, edge.domain}
    for record in records.values():
        assert record["content"] == stack_graph.outputs["loadBalancerDnsName"]
    assert stack_graph.outputs["apiUrl"] == f"https://{edge.api_hostname}"


def test_certificate_validation_records_are_not_proxied(stack_graph: Graph):
    validation = [
        r.inputs
        for r in stack_graph.of_type("cloudflare:index/dnsRecord:DnsRecord")
        if not r.inputs["proxied"]
    ]
    assert len(validation) == 2
    assert all(r["content"].endswith("acm-validations.aws") for r in validation)


def rules(graph: Graph, phase: str) -> list[dict[str, Any]]:
    (ruleset,) = [
        r for r in graph.of_type("cloudflare:index/ruleset:Ruleset") if r.inputs["phase"] == phase
    ]
    found: list[dict[str, Any]] = ruleset.inputs["rules"]
    return found


def test_cache_rules_cache_assets_long_api_gets_as_the_origin_says_and_never_private(
    stack_graph: Graph,
):
    static, api, private = rules(stack_graph, "http_request_cache_settings")
    assert static["actionParameters"]["edgeTtl"] == {"mode": "override_origin", "default": 2592000}
    assert api["actionParameters"]["edgeTtl"] == {"mode": "respect_origin"}
    assert 'http.request.method in {"GET" "HEAD"}' in api["expression"]
    # The bypass comes last, so it wins over both.
    assert private["actionParameters"] == {"cache": False}
    assert "authorization" in private["expression"]
    assert 'not http.request.method in {"GET" "HEAD"}' in private["expression"]


def test_the_auth_endpoints_are_rate_limited_at_the_edge(stack_graph: Graph):
    (rule,) = rules(stack_graph, "http_ratelimit")
    assert '"/auth"' in rule["expression"]
    assert rule["action"] == "block"
    assert (
        rule["ratelimit"]["requestsPerPeriod"]
        == config_of(stack_graph.stack).edge.auth_requests_per_minute
    )
    assert "ip.src" in rule["ratelimit"]["characteristics"]


# -- Kong ------------------------------------------------------------------------------


def test_every_route_reaches_a_service_that_exists(stack_graph: Graph):
    services = {
        s.inputs["metadata"]["name"] for s in stack_graph.of_type("kubernetes:core/v1:Service")
    }
    config = kong_config(stack_graph)
    routed = {path: s for s in config["services"] for r in s["routes"] for path in r["paths"]}
    assert set(routed) == {p for route in ROUTES for p in route.paths}
    for path, service in routed.items():
        name, namespace = service["host"].split(".")[:2]
        assert name in services, path
        assert namespace == "eduscale"
        assert service["port"] == 8000


def test_routes_go_where_the_design_says(stack_graph: Graph):
    config = kong_config(stack_graph)
    by_path = {
        path: s["name"] for s in config["services"] for r in s["routes"] for path in r["paths"]
    }
    assert by_path == {
        "/auth": "auth",
        "/courses": "course",
        "/quizzes": "course",
        "/ai": "ai-orchestrator",
    }


def test_rate_limits_count_in_redis_and_auth_is_stricter(stack_graph: Graph):
    gateway = config_of(stack_graph.stack).gateway
    config = kong_config(stack_graph)
    limits = {}
    for service in config["services"]:
        for route in service["routes"]:
            (plugin,) = route["plugins"]
            assert plugin["name"] == "rate-limiting"
            redis = plugin["config"]["redis"]
            assert plugin["config"]["policy"] == "redis"
            assert redis["cluster_nodes"][0]["ip"] == stack_graph.outputs["cacheEndpoint"]
            assert redis["ssl"] is True
            assert redis["ssl_verify"] is True
            assert redis["password"].startswith("{vault://env/")
            limits[route["name"]] = plugin["config"]["minute"]
    assert limits["auth"] == gateway.strict_requests_per_minute
    assert limits["courses"] == gateway.requests_per_minute
    assert limits["auth"] < limits["courses"]


def test_kong_applies_cors_size_limits_correlation_ids_and_metrics(stack_graph: Graph):
    plugins = {p["name"]: p["config"] for p in kong_config(stack_graph)["plugins"]}
    assert plugins["cors"]["origins"] == [f"https://{config_of(stack_graph.stack).edge.domain}"]
    assert (
        plugins["request-size-limiting"]["allowed_payload_size"]
        == config_of(stack_graph.stack).gateway.max_body_mb
    )
    assert plugins["correlation-id"]["header_name"] == "X-Request-ID"
    assert "prometheus" in plugins
    assert kong_config(stack_graph)["_format_version"] == "3.0"


def test_kong_keeps_its_admin_api_closed_and_its_secrets_in_a_secret(stack_graph: Graph):
    deployment = next(
        d
        for d in stack_graph.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["name"] == "api-gateway"
    )
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KONG_ADMIN_LISTEN"] == "off"
    assert env["KONG_DATABASE"] == "off"
    assert "ssl" in env["KONG_PROXY_LISTEN"]
    assert container["image"] == config_of(stack_graph.stack).gateway.image
    assert "KONG_REDIS_PASSWORD" not in env
    text = json.dumps(kong_config(stack_graph))
    assert text.count('"password"') == text.count('"password": "{vault://env/kong-redis-password}"')


def test_kong_scales_with_an_hpa_and_a_budget(stack_graph: Graph):
    hpas = {
        h.inputs["metadata"]["name"]: h.inputs["spec"]
        for h in stack_graph.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    }
    gateway = config_of(stack_graph.stack).gateway
    assert (hpas["api-gateway"]["minReplicas"], hpas["api-gateway"]["maxReplicas"]) == (
        gateway.min_replicas,
        gateway.max_replicas,
    )
    budgets = {
        b.inputs["metadata"]["name"]
        for b in stack_graph.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    }
    assert "api-gateway" in budgets
