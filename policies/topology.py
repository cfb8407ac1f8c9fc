"""Rules over the whole design: the request path exists, readers read replicas, tags are set.

The request path is Cloudflare DNS -> ALB -> target group -> TargetGroupBinding -> the
gateway's Service -> Kong -> each routed Service -> its pods -> the database. Policies see
resource inputs only, so links whose value is an output (an ALB's DNS name, a target group's
ARN, a replica's address) are followed through the recorded graph: a resource that uses an
output of another depends on it. Values that are plain inputs on both sides (a Service's
name in `kong.json`, a Route 53 record's name in a ConfigMap) are compared as strings.

Readers: the hosts of `DATABASE_REPLICA_URLS` cannot be compared with the writer's address (an
output). In the design each is the name of the weighted Route 53 record set whose records are
the replicas' addresses, so a ConfigMap passes when every replica host is the name of records
that all point at read replicas (each depends only on replicas) and is not the host of any
ConfigMap's `DATABASE_URL`.
"""

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from policies.kubernetes import depends_on
from policies.kubernetes_pods import CONFIG_MAP, DEPLOYMENT, WORKLOADS, namespace_of, pod_labels
from policies.support import get, stack_rule

__all__ = ["POLICIES", "STANDARD_TAGS", "TAGGABLE_TYPES"]

ALBS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
DNS_RECORDS = ("cloudflare:index/dnsRecord:DnsRecord", "cloudflare:index/record:Record")
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
SERVICE = "kubernetes:core/v1:Service"
RDS = "aws:rds/instance:Instance"
ROUTE53_RECORD = "aws:route53/record:Record"
ROUTE53_ZONE = "aws:route53/zone:Zone"
CLUSTER_HOST = re.compile(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local\.?")
STANDARD_TAGS = ("project", "stack", "component", "managed-by")
TAGGABLE_TYPES = frozenset(f"aws:{t}" for t in (
    "acm/certificate:Certificate", "appautoscaling/target:Target", "cloudwatch/logGroup:LogGroup",
    "cloudwatch/metricAlarm:MetricAlarm", "route53/healthCheck:HealthCheck",
    "ec2/defaultSecurityGroup:DefaultSecurityGroup", "ec2/eip:Eip", "ec2/flowLog:FlowLog",
    "ecr/repository:Repository",
    "ec2/internetGateway:InternetGateway", "ec2/launchTemplate:LaunchTemplate",
    "ec2/natGateway:NatGateway", "ec2/routeTable:RouteTable", "ec2/securityGroup:SecurityGroup",
    "ec2/subnet:Subnet", "ec2/vpc:Vpc", "eks/accessEntry:AccessEntry", "eks/addon:Addon",
    "eks/cluster:Cluster", "eks/nodeGroup:NodeGroup", "elasticache/parameterGroup:ParameterGroup",
    "elasticache/replicationGroup:ReplicationGroup", "elasticache/subnetGroup:SubnetGroup",
    "iam/openIdConnectProvider:OpenIdConnectProvider", "iam/role:Role", "kms/key:Key",
    "lb/listener:Listener", "lb/loadBalancer:LoadBalancer", "lb/targetGroup:TargetGroup",
    "lb/trustStore:TrustStore", "s3/bucketObjectv2:BucketObjectv2",
    "msk/cluster:Cluster", "rds/instance:Instance", "rds/parameterGroup:ParameterGroup",
    "rds/subnetGroup:SubnetGroup", "route53/zone:Zone", "s3/bucket:Bucket",
))  # fmt: skip
"""AWS types of this platform that accept tags: one of them without `tags` at all is flagged."""


def _key(mapping: Any, key: str) -> Any:
    """`mapping[key]` for keys with dots (`kong.json`), or None."""
    if not isinstance(mapping, Mapping):
        return None
    try:
        return mapping[key]
    except KeyError:
        return None


def _of(args: StackValidationArgs, types: Iterable[str]) -> list[PolicyResource]:
    wanted = set(types)
    return [r for r in args.resources if r.resource_type in wanted]


def _named(
    resources: list[PolicyResource], name: Any, namespace: str, user: PolicyResource
) -> PolicyResource | None:
    """The object called `name` in `namespace`, or the auto-named one `user` depends on."""
    for resource in resources:
        if namespace_of(resource.props) != namespace:
            continue
        own = get(resource.props, "metadata.name")
        if own == name or (own is None and depends_on(user, resource)):
            return resource
    return None


def _backs(service: PolicyResource, workload: PolicyResource) -> bool:
    """Whether the Service's selector picks the workload's pods (so it has endpoints)."""
    selector = get(service.props, "spec.selector") or {}
    labels = pod_labels(workload.props)
    return (
        namespace_of(service.props) == namespace_of(workload.props)
        and len(selector) > 0
        and all(labels.get(k) == v for k, v in selector.items())
    )


def _kong_configs(args: StackValidationArgs) -> list[PolicyResource]:
    return [c for c in _of(args, [CONFIG_MAP]) if _key(get(c.props, "data"), "kong.json")]


def _gateways(args: StackValidationArgs) -> list[PolicyResource]:
    """Deployments that run Kong from a declarative `kong.json` ConfigMap."""
    configs = _kong_configs(args)
    return [d for d in _of(args, [DEPLOYMENT]) if any(depends_on(d, c) for c in configs)]


def _forwarded_arns(listener: PolicyResource) -> set[str]:
    arns: set[str] = set()
    for action in get(listener.props, "defaultActions") or []:
        arns.add(str(get(action, "targetGroupArn") or ""))
        arns.update(str(get(g, "arn")) for g in get(action, "forward.targetGroups") or [])
    return arns - {""}


def _edge_chain(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    records, listeners = _of(args, DNS_RECORDS), _of(args, LISTENERS)
    groups, bindings = _of(args, TARGET_GROUPS), _of(args, [BINDING])
    services = _of(args, [SERVICE])
    gateways, reached = _gateways(args), set[str]()
    for alb in _of(args, ALBS):
        if get(alb.props, "internal") is True:
            continue
        if not any(depends_on(r, alb) for r in records):
            yield "no Cloudflare DNS record points at this ALB (content = its DNS name)", alb.urn
        own = [listener for listener in listeners if depends_on(listener, alb)]
        arns = set().union(*(_forwarded_arns(listener) for listener in own))
        targets = [g for g in groups if any(depends_on(listener, g) for listener in own)]
        bound = [
            b for b in bindings
            if get(b.props, "spec.targetGroupARN") in arns or any(depends_on(b, g) for g in targets)
        ]  # fmt: skip
        if not bound:
            yield "no TargetGroupBinding binds its target group to a Service", alb.urn
        for binding in bound:
            name = get(binding.props, "spec.serviceRef.name")
            service = _named(services, name, namespace_of(binding.props), binding)
            if service is None:
                yield f"it binds Service {name}, which is not in its namespace", binding.urn
                continue
            fronted = [g for g in gateways if _backs(service, g)]
            if not fronted:
                yield f"Service {name} does not select the API gateway's pods", binding.urn
            reached.update(g.urn for g in fronted)
    for gateway in gateways:
        if gateway.urn not in reached:
            yield "no internet-facing ALB target group reaches the gateway's Service", gateway.urn


def _hosts(service: Mapping[str, Any], upstreams: Mapping[str, list[str]]) -> list[str]:
    host = service.get("host") or urlsplit(str(service.get("url") or "")).hostname or ""
    return [h.lower() for h in upstreams.get(host, [host])]


def _gateway_routes(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    services, workloads = _of(args, [SERVICE]), _of(args, WORKLOADS)
    for config in _kong_configs(args):
        try:
            declared = json.loads(_key(get(config.props, "data"), "kong.json"))
        except (TypeError, ValueError):
            declared = None
        if not isinstance(declared, dict):
            yield "kong.json is not a valid declarative config (a JSON object)", config.urn
            continue
        upstreams = {
            u.get("name"): [
                str(t.get("target", "")).rsplit(":", 1)[0] for t in u.get("targets") or []
            ]
            for u in declared.get("upstreams") or []
        }
        for kong_service in declared.get("services") or []:
            label = f"Kong service {kong_service.get('name')}"
            for host in _hosts(kong_service, upstreams):
                match = CLUSTER_HOST.fullmatch(host)
                if not match:
                    yield (
                        f"{label} routes to {host or 'no host'}, not to a cluster Service",
                        config.urn,
                    )
                    continue
                name, namespace = match.groups()
                target = next((s for s in services if get(s.props, "metadata.name") == name
                               and namespace_of(s.props) == namespace), None)  # fmt: skip
                if target is None:
                    yield (
                        f"{label} routes to Service {name} in {namespace}, which does not exist",
                        config.urn,
                    )
                elif not any(_backs(target, w) for w in workloads):
                    yield (
                        f"{label} routes to Service {name}, which selects no workload's pods",
                        config.urn,
                    )


def _is_writer(resource: PolicyResource) -> bool:
    return resource.resource_type == RDS and get(resource.props, "replicateSourceDb") is None


def _is_replica(resource: PolicyResource) -> bool:
    return resource.resource_type == RDS and get(resource.props, "replicateSourceDb") is not None


def _instances(record: PolicyResource, rds: list[PolicyResource]) -> list[PolicyResource]:
    return [i for i in rds if depends_on(record, i)]


def _services_reach_data(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    rds, records = _of(args, [RDS]), _of(args, [ROUTE53_RECORD])
    writers = [i for i in rds if _is_writer(i)]
    if not writers:
        return  # the database lives in another stack; nothing here to check against
    writer_records = [r for r in records if any(_is_writer(i) for i in _instances(r, rds))]
    for config in _of(args, [CONFIG_MAP]):
        if _key(get(config.props, "data"), "DATABASE_URL") is None:
            continue
        if not any(depends_on(config, w) for w in [*writers, *writer_records]):
            yield "DATABASE_URL is not wired from the database writer's address", config.urn


def _url_hosts(data: Any, key: str) -> list[str]:
    """The hosts of a comma-separated list of connection URLs (empty when unset or unknown)."""
    value = _key(data, key)
    if not isinstance(value, str):
        return []
    return [_fqdn(urlsplit(url.strip()).hostname) for url in value.split(",") if url.strip()]


def _fqdn(name: Any, zone: str = "") -> str:
    host = str(name or "").lower().rstrip(".")
    return f"{host}.{zone}" if zone and not host.endswith(zone) else host


def _record_name(record: PolicyResource, zones: list[PolicyResource]) -> str:
    zone = next((_fqdn(get(z.props, "name")) for z in zones if depends_on(record, z)), "")
    return _fqdn(get(record.props, "name"), zone)


def _readers(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    rds, zones, configs = _of(args, [RDS]), _of(args, [ROUTE53_ZONE]), _of(args, [CONFIG_MAP])
    reader_names: set[str] = set()
    other_names: set[str] = set()
    for record in _of(args, [ROUTE53_RECORD]):
        instances = _instances(record, rds)
        replica_only = bool(instances) and all(_is_replica(i) for i in instances)
        (reader_names if replica_only else other_names).add(_record_name(record, zones))
    writer_hosts = {h for c in configs for h in _url_hosts(get(c.props, "data"), "DATABASE_URL")}
    for config in configs:
        for host in _url_hosts(get(config.props, "data"), "DATABASE_REPLICA_URLS"):
            if not host:
                continue
            if host in writer_hosts:
                yield (
                    "DATABASE_REPLICA_URLS names the writer's address: reports load the primary",
                    config.urn,
                )
            elif host in other_names:
                yield (
                    "DATABASE_REPLICA_URLS names DNS records that do not all point at replicas",
                    config.urn,
                )
            elif host not in reader_names:
                yield (
                    "DATABASE_REPLICA_URLS is not on the replicas' Route 53 records",
                    config.urn,
                )


def _standard_tags(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    for resource in args.resources:
        if not resource.resource_type.startswith("aws:"):
            continue
        tags = get(resource.props, "tags")
        if tags is None:
            if resource.resource_type in TAGGABLE_TYPES:
                yield "it has no tags", resource.urn
            continue
        missing = [k for k in STANDARD_TAGS if not _key(tags, k)]
        if missing:
            yield f"it lacks the standard tag(s) {', '.join(missing)}", resource.urn


POLICIES = [
    stack_rule(
        "topology-edge-chain",
        "Users reach the platform only through Cloudflare -> ALB -> Kong; a broken link (no DNS "
        "record, an unbound target group, a binding to the wrong Service) is an outage, and a "
        "gateway no ALB reaches serves nobody.",
        severity=Severity.HIGH, mandatory=True, check=_edge_chain,
        fix="Keep the Cdn's DNS records on the ALB's dnsName and the TargetGroupBinding on the "
        "ALB's target group and the ApiGateway's proxy Service (stacks/platform.py wires them).",
        scanners=["derived"],
    ),
    stack_rule(
        "topology-gateway-routes",
        "A Kong route to a Service that does not exist, or that selects no pods, answers every "
        "request on its paths with an error.",
        severity=Severity.HIGH, mandatory=True, check=_gateway_routes,
        fix="Route only to <service>.<namespace>.svc.cluster.local of a Service in the stack "
        "(contracts/routes.py and the Microservice upstreams).",
        scanners=["derived"],
    ),
    stack_rule(
        "topology-services-reach-data",
        "A service's DATABASE_URL must come from the database writer itself, not a typed "
        "address that silently points at another (or a deleted) database.",
        severity=Severity.HIGH, mandatory=True, check=_services_reach_data,
        fix="Pass the Database component's writer address into the service's config.",
        scanners=["derived"],
    ),
    stack_rule(
        "topology-readers-use-replicas",
        "Analytics and report readers must read replicas only: pointed at the writer, heavy "
        "reports compete with every write for the primary's CPU and I/O.",
        severity=Severity.HIGH, mandatory=True, check=_readers,
        fix="Build DATABASE_REPLICA_URLS on the Database component's reader endpoint (the "
        "weighted Route 53 records of the replicas).",
        scanners=["derived"],
    ),
    stack_rule(
        "topology-standard-tags",
        "Cost reports, ownership and clean-up rely on every AWS resource carrying project, "
        "stack, component and managed-by tags.",
        severity=Severity.LOW, mandatory=False, check=_standard_tags,
        fix="Pass components.conventions' standard tags to every taggable AWS resource.",
        scanners=["derived"],
    ),
]  # fmt: skip
