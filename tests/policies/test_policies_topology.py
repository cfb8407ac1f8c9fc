"""Topology rules: a small but complete request path passes; each broken link fails on the
resource that breaks it; readers must name replica records; tags; and the prod graph, broken
through the CLI, fails naming the rule."""

import json
from typing import Any

import pytest
from conftest import STANDARD_TAG_KEYS, aws_resources, is_taggable
from policy_harness import (
    Mutation,
    MutationCheck,
    policy_resource,
    resources_of,
    stack_violations,
)
from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from infra.graph import Graph
from infra.policy_check import check_graph
from policies import topology

ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
RDS = "aws:rds/instance:Instance"
RECORD = "aws:route53/record:Record"
ZONE = "aws:route53/zone:Zone"
TG_ARN = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/kong/1"
GATEWAY = {"app.kubernetes.io/name": "api-gateway"}
AUTH = {"app.kubernetes.io/name": "auth"}
WRITER_HOST = "db-writer.abc.eu-west-1.rds.amazonaws.com"
READER_HOST = "reader.db.internal"


def kong(*hosts: str, **extra: Any) -> dict[str, Any]:
    services = [{"name": f"svc-{i}", "host": h, "port": 8000} for i, h in enumerate(hosts)]
    return {"_format_version": "3.0", "services": services, **extra}


def k8s(name: str | None, namespace: str, **rest: Any) -> dict[str, Any]:
    metadata = {"namespace": namespace, **({"name": name} if name else {})}
    return {"metadata": metadata, **rest}


def workload(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return k8s(name, namespace, spec={"template": {"metadata": {"labels": labels}, "spec": {}}})


def graph(
    *,
    dns_to_alb: bool = True,
    binding: dict[str, Any] | None = None,
    binding_depends: bool = True,
    proxy_selector: dict[str, str] = GATEWAY,
    kong_json: str | None = None,
    internal: bool = False,
) -> list[PolicyResource]:
    """Cloudflare -> ALB -> listener -> target group -> binding -> proxy Service -> Kong -> auth."""
    alb = policy_resource(ALB, {"internal": internal, "tags": {}}, "urn:alb")
    group = policy_resource(TARGET_GROUP, {"port": 8443}, "urn:tg")
    listener = policy_resource(
        LISTENER,
        {"defaultActions": [{"type": "forward", "targetGroupArn": TG_ARN}]},
        "urn:listener",
        [alb, group],
    )
    dns = policy_resource(
        DNS,
        {"content": "alb.elb.amazonaws.com", "proxied": True},
        "urn:dns",
        [alb] if dns_to_alb else [],
    )
    proxy = policy_resource(
        SERVICE, k8s("api-gateway-proxy", "gateway", spec={"selector": proxy_selector}), "urn:proxy"
    )
    bind = binding or k8s(
        "kong",
        "gateway",
        spec={"targetGroupARN": TG_ARN, "serviceRef": {"name": "api-gateway-proxy", "port": 8443}},
    )
    tgb = policy_resource(
        BINDING, bind, "urn:binding", [proxy, group] if binding_depends else [proxy]
    )
    config = policy_resource(
        CONFIG_MAP,
        k8s(
            None,
            "gateway",
            data={"kong.json": kong_json or json.dumps(kong("auth.eduscale.svc.cluster.local"))},
        ),
        "urn:kong-config",
    )
    gateway = policy_resource(
        DEPLOYMENT, workload("api-gateway", "gateway", GATEWAY), "urn:gateway", [config]
    )
    auth_service = policy_resource(
        SERVICE, k8s("auth", "eduscale", spec={"selector": AUTH}), "urn:auth-svc"
    )
    auth = policy_resource(DEPLOYMENT, workload("auth", "eduscale", AUTH), "urn:auth")
    return [alb, group, listener, dns, proxy, tgb, config, gateway, auth_service, auth]


def test_a_complete_path_passes():
    assert stack_violations("topology-edge-chain", graph()) == []
    assert stack_violations("topology-gateway-routes", graph()) == []


def test_a_binding_matched_only_by_the_listeners_arn_passes():
    assert stack_violations("topology-edge-chain", graph(binding_depends=False)) == []


def test_no_dns_record_to_the_alb_fails():
    assert stack_violations("topology-edge-chain", graph(dns_to_alb=False)) == [
        ("no Cloudflare DNS record points at this ALB (content = its DNS name)", "urn:alb")
    ]


def test_an_unbound_target_group_fails_and_leaves_the_gateway_unreachable():
    other = k8s("kong", "gateway", spec={"targetGroupARN": "arn:other", "serviceRef": {"name": "api-gateway-proxy"}})  # fmt: skip
    found = stack_violations("topology-edge-chain", graph(binding=other, binding_depends=False))
    assert {urn for _, urn in found} == {"urn:alb", "urn:gateway"}


def test_a_binding_to_a_missing_service_fails():
    missing = k8s(
        "kong", "gateway", spec={"targetGroupARN": TG_ARN, "serviceRef": {"name": "nope"}}
    )
    found = stack_violations("topology-edge-chain", graph(binding=missing, binding_depends=False))
    assert ("it binds Service nope, which is not in its namespace", "urn:binding") in found


def test_a_binding_to_a_service_that_is_not_the_gateways_fails():
    found = stack_violations("topology-edge-chain", graph(proxy_selector=AUTH))
    assert ("Service api-gateway-proxy does not select the API gateway's pods", "urn:binding") in found  # fmt: skip


def test_a_gateway_with_no_internet_facing_alb_fails():
    found = stack_violations("topology-edge-chain", graph(internal=True))
    assert found == [("no internet-facing ALB target group reaches the gateway's Service", "urn:gateway")]  # fmt: skip


def test_a_stack_without_an_edge_has_nothing_to_check():
    assert stack_violations("topology-edge-chain", []) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (kong("billing.eduscale.svc.cluster.local"), "routes to Service billing in eduscale, which does not exist"),
        (kong("auth.gateway.svc.cluster.local"), "routes to Service auth in gateway, which does not exist"),
        (kong("api.example.com"), "routes to api.example.com, not to a cluster Service"),
        (kong(""), "routes to no host"),
    ],
)  # fmt: skip
def test_a_route_to_a_service_that_does_not_exist_fails(config: dict[str, Any], message: str):
    ((found, urn),) = stack_violations(
        "topology-gateway-routes", graph(kong_json=json.dumps(config))
    )
    assert urn == "urn:kong-config"
    assert message in found


def test_a_route_to_a_service_without_pods_fails():
    resources = [r for r in graph() if r.urn != "urn:auth"]
    ((found, _),) = stack_violations("topology-gateway-routes", resources)
    assert "Service auth, which selects no workload's pods" in found


def test_routes_through_urls_and_upstreams_resolve():
    by_url = {
        "_format_version": "3.0",
        "services": [{"name": "a", "url": "http://auth.eduscale.svc.cluster.local:8000/v1"}],
    }
    upstream = {"_format_version": "3.0", "services": [{"name": "a", "host": "auth-pool"}],
                "upstreams": [{"name": "auth-pool", "targets": [{"target": "auth.eduscale.svc.cluster.local:8000"}]}]}  # fmt: skip
    for config in (by_url, upstream):
        assert (
            stack_violations("topology-gateway-routes", graph(kong_json=json.dumps(config))) == []
        )


@pytest.mark.parametrize("text", ["{not json", "[]"])
def test_an_unreadable_kong_config_fails(text: str):
    assert stack_violations("topology-gateway-routes", graph(kong_json=text)) == [
        ("kong.json is not a valid declarative config (a JSON object)", "urn:kong-config")
    ]


def test_an_unknown_kong_config_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        stack_violations("topology-gateway-routes", graph(kong_json=UNKNOWN_STRING_VALUE))


# Data ----------------------------------------------------------------------------------------


def database_url(host: str) -> str:
    return f"postgresql://eduscale_app@{host}:5432/eduscale?sslmode=verify-full"


def data_graph(
    *,
    reader_host: str | None = READER_HOST,
    record_name: str = READER_HOST,
    record_to_writer: bool = False,
    config_depends_on_writer: bool = True,
    zone: str | None = None,
) -> list[PolicyResource]:
    writer = policy_resource(RDS, {"identifier": "db-writer"}, "urn:writer")
    replica = policy_resource(
        RDS, {"identifier": "db-replica", "replicateSourceDb": "db-writer"}, "urn:replica", [writer]
    )
    zones = [policy_resource(ZONE, {"name": zone}, "urn:zone")] if zone else []
    record = policy_resource(RECORD, {"name": record_name, "type": "CNAME", "records": ["replica.rds"]}, "urn:record",
                             [writer if record_to_writer else replica, *zones])  # fmt: skip
    data = {
        "DATABASE_URL": database_url(WRITER_HOST),
        **({"DATABASE_REPLICA_URLS": database_url(reader_host)} if reader_host else {}),
    }
    config = policy_resource(CONFIG_MAP, k8s(None, "eduscale", data=data), "urn:config",
                             [writer, record] if config_depends_on_writer else [record])  # fmt: skip
    plain = policy_resource(
        CONFIG_MAP, k8s(None, "eduscale", data={"APP_ENV": "prod"}), "urn:plain"
    )
    return [writer, replica, *zones, record, config, plain]


def test_services_wired_to_the_writer_reach_data():
    assert stack_violations("topology-services-reach-data", data_graph()) == []


def test_a_typed_database_host_fails():
    assert stack_violations(
        "topology-services-reach-data", data_graph(config_depends_on_writer=False)
    ) == [("DATABASE_URL is not wired from the database writer's address", "urn:config")]


def test_a_database_in_another_stack_is_not_checked():
    resources = [r for r in data_graph(config_depends_on_writer=False) if r.resource_type != RDS]
    assert stack_violations("topology-services-reach-data", resources) == []


def test_readers_on_the_replica_records_pass():
    assert stack_violations("topology-readers-use-replicas", data_graph()) == []
    assert stack_violations("topology-readers-use-replicas", data_graph(reader_host=None)) == []


def test_a_relative_record_name_is_resolved_in_its_zone():
    found = stack_violations(
        "topology-readers-use-replicas", data_graph(record_name="reader", zone="db.internal")
    )
    assert found == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reader_host": WRITER_HOST}, "DATABASE_REPLICA_URLS names the writer's address"),
        ({"reader_host": WRITER_HOST.upper() + "."}, "the writer's address"),
        ({"record_to_writer": True}, "names DNS records that do not all point at replicas"),
        ({"reader_host": "analytics.db.internal"}, "is not on the replicas' Route 53 records"),
    ],
)  # fmt: skip
def test_readers_not_on_replicas_fail(kwargs: dict[str, Any], message: str):
    ((found, urn),) = stack_violations("topology-readers-use-replicas", data_graph(**kwargs))
    assert urn == "urn:config"
    assert message in found
    assert WRITER_HOST not in found


# Tags ----------------------------------------------------------------------------------------

TAGS = {"project": "eduscale", "stack": "prod", "component": "database", "managed-by": "pulumi"}


@pytest.mark.parametrize(
    ("resource_type", "props", "message"),
    [
        (RDS, {"tags": {k: v for k, v in TAGS.items() if k != "component"}}, "lacks the standard tag(s) component"),
        (RDS, {"tags": {**TAGS, "managed-by": ""}}, "managed-by"),
        (RDS, {}, "it has no tags"),
        ("aws:s3/bucket:Bucket", {"tags": {}}, "project, stack, component, managed-by"),
    ],
)  # fmt: skip
def test_missing_standard_tags_fail(resource_type: str, props: dict[str, Any], message: str):
    ((found, urn),) = stack_violations("topology-standard-tags", [policy_resource(resource_type, props, "urn:r")])  # fmt: skip
    assert urn == "urn:r"
    assert message in found


def test_tagged_and_untaggable_resources_pass():
    resources = [
        policy_resource(RDS, {"tags": TAGS}, "urn:db"),
        policy_resource("aws:iam/rolePolicy:RolePolicy", {"policy": "{}"}, "urn:policy"),
        policy_resource(DEPLOYMENT, {"metadata": {}}, "urn:k8s"),
    ]
    assert stack_violations("topology-standard-tags", resources) == []


def test_the_standard_tags_match_the_conventions():
    assert set(topology.STANDARD_TAGS) == STANDARD_TAG_KEYS


@pytest.mark.parametrize("resource_type", sorted(topology.TAGGABLE_TYPES))
def test_every_listed_type_accepts_tags(resource_type: str):
    assert is_taggable(resource_type)


def test_every_taggable_type_of_the_stacks_is_listed(stack_graph: Graph):
    taggable = {r.type for r in aws_resources(stack_graph) if is_taggable(r.type)}
    assert taggable <= topology.TAGGABLE_TYPES


def test_tags_are_advisory_and_the_design_rules_mandatory():
    levels = {p.name: p.enforcement_level.value for p in topology.POLICIES}  # type: ignore[union-attr]
    assert levels.pop("topology-standard-tags") == "advisory"
    assert set(levels.values()) == {"mandatory"}


# The recorded stacks, through the CLI --------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_pass_every_topology_rule(stack: str, request: pytest.FixtureRequest):
    assert check_graph(request.getfixturevalue(f"{stack}_graph"), topology.POLICIES) == []


def reader_config(document: dict[str, Any]) -> dict[str, Any]:
    return next(c["inputs"]["data"] for c in resources_of(document, CONFIG_MAP)
                if "DATABASE_REPLICA_URLS" in c["inputs"].get("data", {}))  # fmt: skip


def reader_on_writer(document: dict[str, Any]) -> None:
    data = reader_config(document)
    data["DATABASE_REPLICA_URLS"] = data["DATABASE_URL"]


def route_to_missing_service(document: dict[str, Any]) -> None:
    config = next(
        c["inputs"]["data"]
        for c in resources_of(document, CONFIG_MAP)
        if "kong.json" in c["inputs"].get("data", {})
    )
    declared = json.loads(config["kong.json"])
    declared["services"][0]["host"] = "billing.eduscale.svc.cluster.local"
    config["kong.json"] = json.dumps(declared)


def drop_dns_records(document: dict[str, Any]) -> None:
    document["resources"] = [
        r
        for r in document["resources"]
        if r["type"] != DNS or ALB not in json.dumps(r["dependencies"])
    ]


MUTATIONS: list[Mutation] = [
    ("reader host on the writer", reader_on_writer, "topology-readers-use-replicas"),
    ("Kong route to a missing Service", route_to_missing_service, "topology-gateway-routes"),
    ("no DNS record to the ALB", drop_dns_records, "topology-edge-chain"),
]


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_prod_graph_fails_naming_the_rule(
    case: Mutation, prod_graph_broken_by: MutationCheck
) -> None:
    prod_graph_broken_by(case, within={p.name for p in topology.POLICIES})
