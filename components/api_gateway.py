"""Kong Gateway on the cluster, DB-less, as plain Kubernetes objects.

Routes, rate limits (counted in Redis, so every Kong pod enforces the same budget), CORS,
request-size limits, correlation ids, Prometheus metrics and (with `tracing`) W3C traces
sent to the OpenTelemetry Collector come from the declarative
configuration in `components.kong_config`, held in a ConfigMap; a changed configuration
is a new ConfigMap name, so Kong rolls onto it. The admin API is off (`KONG_ADMIN_LISTEN
= off`): configuration changes only through a deploy.

TLS: the ALB re-encrypts to Kong. Cloudflare terminates the client's TLS, the ALB its own
hop, and Kong listens only on its TLS proxy port, so traffic inside the VPC is encrypted
too (no plaintext hop a compromised node could read). Kong's self-generated certificate is
enough: the ALB encrypts to targets but does not verify their certificates; identity is
enforced by the security groups and NetworkPolicy that let only the ALB reach Kong.
"""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.kong_config import (
    REDIS_PASSWORD_ENV,
    GatewayLimitsArgs,
    GatewayTracingArgs,
    RedisArgs,
    declarative_config,
)
from components.type_tokens import API_GATEWAY
from components.workload import (
    PeerArgs,
    ResourcesArgs,
    check_pinned,
    cpu_autoscaler,
    disruption_budget,
    dns_egress,
    restricted_container_context,
    restricted_pod_context,
    spread_over_zones_and_nodes,
)
from contracts.routes import ROUTES

__all__ = [
    "PROXY_PORT",
    "STATUS_PORT",
    "ApiGateway",
    "ApiGatewayArgs",
    "GatewayTracesArgs",
    "UpstreamArgs",
]

PROXY_PORT = 8443
"""Kong's TLS proxy port: the ALB's target port."""
STATUS_PORT = 8100
"""Kong's status API (`/status/ready`): the ALB's health-check port."""
_KONG_UID = 1000


class UpstreamArgs(TypedDict):
    """A service Kong routes to."""

    name: str
    """Service name, as the route table names it."""
    host: pulumi.Input[str]
    """In-cluster DNS name."""
    port: int
    """Port."""
    peer: PeerArgs
    """Its pods, which Kong's NetworkPolicy lets it reach."""


class GatewayTracesArgs(TypedDict):
    """Where Kong's `opentelemetry` plugin sends spans."""

    traces_endpoint: pulumi.Input[str]
    """The collector's OTLP/HTTP traces URL (`TraceCollector.traces_endpoint`)."""
    sampling_rate: float
    """Share of requests Kong starts a trace for (0 to 1)."""
    collector: PeerArgs
    """The collector's pods, which Kong's NetworkPolicy lets it reach."""
    port: int
    """The collector's OTLP/HTTP port."""


class ApiGatewayArgs(TypedDict):
    """Inputs of `ApiGateway`."""

    namespace: pulumi.Input[str]
    """Namespace to run in."""
    image: str
    """Kong image pinned to a version, e.g. `kong:3.9.1`."""
    min_replicas: int
    """Fewest Kong pods."""
    max_replicas: int
    """Most Kong pods."""
    resources: ResourcesArgs
    """Container requests and limits."""
    upstreams: list[UpstreamArgs]
    """The services behind the routes."""
    limits: GatewayLimitsArgs
    """Rate limits, body size and CORS."""
    redis_host: pulumi.Input[str]
    """Redis endpoint for shared rate-limit counters."""
    redis_port: pulumi.Input[int]
    """Redis port."""
    redis_password: pulumi.Input[str]
    """Redis AUTH token (secret)."""
    trusted_cidr: str
    """Where the ALB's requests come from (the VPC): Kong trusts its X-Forwarded-For."""
    cpu_target_percent: NotRequired[int]
    """HPA CPU target (default 70)."""
    tracing: NotRequired[GatewayTracesArgs]
    """Send traces to a collector (the `opentelemetry` plugin, W3C propagation)."""


class ApiGateway(pulumi.ComponentResource):
    """Kong in DB-less mode: Deployment, Service, ConfigMap, HPA, PDB, NetworkPolicy."""

    proxy_service_name: pulumi.Output[str]
    """Name of Kong's proxy Service (what the ALB's target group binds to)."""
    proxy_service_namespace: pulumi.Output[str]
    """Namespace of that Service."""
    proxy_port: pulumi.Output[int]
    """Its TLS proxy port."""
    status_port: pulumi.Output[int]
    """Its status port (health checks)."""

    def __init__(
        self, name: str, args: ApiGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(API_GATEWAY.token, name, None, API_GATEWAY.options(opts))
        check_pinned(args["image"])
        minimum, maximum = int(args["min_replicas"]), int(args["max_replicas"])
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= min_replicas <= max_replicas, got {minimum}, {maximum}")
        namespace = args["namespace"]
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "eduscale"}
        child = pulumi.ResourceOptions(parent=self)

        tracing = args.get("tracing")
        kong_yml = pulumi.Output.all(
            [u["host"] for u in args["upstreams"]],
            args["redis_host"],
            args["redis_port"],
            tracing["traces_endpoint"] if tracing is not None else "",
        ).apply(lambda values: self._render(args, values[0], values[1], values[2], values[3]))
        config = k8s.core.v1.ConfigMap(
            f"{name}-declarative",
            metadata={"namespace": namespace, "labels": labels},
            data={"kong.json": kong_yml},
            opts=child,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata={"namespace": namespace, "labels": labels},
            type="Opaque",
            string_data={REDIS_PASSWORD_ENV: pulumi.Output.secret(args["redis_password"])},
            opts=child,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            automount_service_account_token=False,
            opts=child,
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={
                "selector": {"match_labels": labels},
                "strategy": {
                    "type": "RollingUpdate",
                    "rolling_update": {"max_unavailable": 0, "max_surge": "25%"},
                },
                "revision_history_limit": 5,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "service_account_name": account.metadata.name,
                        "automount_service_account_token": False,
                        "termination_grace_period_seconds": 30,
                        "security_context": restricted_pod_context(_KONG_UID),
                        "topology_spread_constraints": spread_over_zones_and_nodes(labels),
                        "containers": [_container(args, secret.metadata.name)],
                        "volumes": [
                            {"name": "declarative", "config_map": {"name": config.metadata.name}},
                            {"name": "prefix", "empty_dir": {"size_limit": "256Mi"}},
                            {"name": "tmp", "empty_dir": {"size_limit": "256Mi"}},
                        ],
                    },
                },
            },
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-proxy",
            metadata={"name": f"{name}-proxy", "namespace": namespace, "labels": labels},
            spec={
                "type": "ClusterIP",
                "selector": labels,
                "ports": [
                    {"name": "proxy-tls", "port": PROXY_PORT, "target_port": "proxy-tls"},
                    {"name": "status", "port": STATUS_PORT, "target_port": "status"},
                ],
            },
            opts=child,
        )
        cpu_autoscaler(
            name,
            namespace=namespace,
            labels=labels,
            deployment=deployment,
            replicas=(minimum, maximum),
            cpu_target_percent=int(args.get("cpu_target_percent", 70)),
            parent=self,
        )
        disruption_budget(name, namespace, labels, self)
        self._network_policy(name, args, labels)
        self.proxy_service_name = service.metadata.name
        self.proxy_service_namespace = service.metadata.namespace
        self.proxy_port = pulumi.Output.from_input(PROXY_PORT)
        self.status_port = pulumi.Output.from_input(STATUS_PORT)
        self.register_outputs(
            {
                "proxy_service_name": self.proxy_service_name,
                "proxy_service_namespace": self.proxy_service_namespace,
                "proxy_port": self.proxy_port,
                "status_port": self.status_port,
            }
        )

    @staticmethod
    def _render(
        args: ApiGatewayArgs, hosts: list[str], redis_host: str, redis_port: int, traces: str
    ) -> str:
        upstreams = {
            u["name"]: (host, u["port"]) for u, host in zip(args["upstreams"], hosts, strict=True)
        }
        redis: RedisArgs = {"host": redis_host, "port": int(redis_port)}
        tracing = args.get("tracing")
        kong_tracing: GatewayTracingArgs | None = (
            {"traces_endpoint": traces, "sampling_rate": tracing["sampling_rate"]}
            if tracing is not None
            else None
        )
        config = declarative_config(ROUTES, upstreams, args["limits"], redis, kong_tracing)
        return json.dumps(config, indent=1)

    def _network_policy(self, name: str, args: ApiGatewayArgs, labels: dict[str, str]) -> None:
        upstream_rules: list[k8s.networking.v1.NetworkPolicyEgressRuleArgsDict] = [
            {
                "to": [
                    {
                        "namespace_selector": {
                            "match_labels": {"kubernetes.io/metadata.name": u["peer"]["namespace"]}
                        },
                        "pod_selector": {"match_labels": u["peer"]["labels"]},
                    }
                ],
                "ports": [{"port": u["port"], "protocol": "TCP"}],
            }
            for u in args["upstreams"]
        ]
        spec: k8s.networking.v1.NetworkPolicySpecArgsDict = {
            "pod_selector": {"match_labels": labels},
            "policy_types": ["Ingress", "Egress"],
            "ingress": [
                {
                    # The ALB's interfaces live in the VPC's public subnets.
                    "from_": [{"ip_block": {"cidr": args["trusted_cidr"]}}],
                    "ports": [
                        {"port": PROXY_PORT, "protocol": "TCP"},
                        {"port": STATUS_PORT, "protocol": "TCP"},
                    ],
                }
            ],
            "egress": [
                dns_egress(),
                *upstream_rules,
                *_collector_egress(args),
                {
                    "to": [{"ip_block": {"cidr": args["trusted_cidr"]}}],
                    "ports": [{"port": 6379, "protocol": "TCP"}],
                },
            ],
        }
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata={"name": name, "namespace": args["namespace"], "labels": labels},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )


def _collector_egress(
    args: ApiGatewayArgs,
) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgsDict]:
    tracing = args.get("tracing")
    if tracing is None:
        return []
    peer = tracing["collector"]
    return [
        {
            "to": [
                {
                    "namespace_selector": {
                        "match_labels": {"kubernetes.io/metadata.name": peer["namespace"]}
                    },
                    "pod_selector": {"match_labels": peer["labels"]},
                }
            ],
            "ports": [{"port": tracing["port"], "protocol": "TCP"}],
        }
    ]


def _container(
    args: ApiGatewayArgs, secret_name: pulumi.Input[str]
) -> k8s.core.v1.ContainerArgsDict:
    resources = args["resources"]
    env = {
        "KONG_DATABASE": "off",
        "KONG_DECLARATIVE_CONFIG": "/kong/declarative/kong.json",
        "KONG_PREFIX": "/kong_prefix",
        "KONG_PROXY_LISTEN": f"0.0.0.0:{PROXY_PORT} ssl http2",
        "KONG_ADMIN_LISTEN": "off",
        "KONG_STATUS_LISTEN": f"0.0.0.0:{STATUS_PORT}",
        "KONG_PROXY_ACCESS_LOG": "/dev/stdout",
        "KONG_PROXY_ERROR_LOG": "/dev/stderr",
        "KONG_LUA_SSL_TRUSTED_CERTIFICATE": "system",
        "KONG_TRUSTED_IPS": args["trusted_cidr"],
        "KONG_REAL_IP_HEADER": "X-Forwarded-For",
        "KONG_NGINX_WORKER_PROCESSES": "2",
        "KONG_VAULTS": "bundled",
    }
    tracing = args.get("tracing")
    if tracing is not None:
        # The plugin needs Kong's request instrumentation on; the rate is the plugin's too.
        env["KONG_TRACING_INSTRUMENTATIONS"] = "request"
        env["KONG_TRACING_SAMPLING_RATE"] = str(tracing["sampling_rate"])
    return {
        "name": "kong",
        "image": args["image"],
        "image_pull_policy": "IfNotPresent",
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "env_from": [{"secret_ref": {"name": secret_name}}],
        "ports": [
            {"name": "proxy-tls", "container_port": PROXY_PORT, "protocol": "TCP"},
            {"name": "status", "container_port": STATUS_PORT, "protocol": "TCP"},
        ],
        "resources": {
            "requests": {"cpu": resources["cpu_request"], "memory": resources["memory_request"]},
            "limits": {"cpu": resources["cpu_limit"], "memory": resources["memory_limit"]},
        },
        "readiness_probe": {
            "http_get": {"path": "/status/ready", "port": "status"},
            "period_seconds": 5,
            "failure_threshold": 2,
        },
        "liveness_probe": {
            "http_get": {"path": "/status", "port": "status"},
            "period_seconds": 10,
            "failure_threshold": 3,
        },
        "lifecycle": {"pre_stop": {"exec_": {"command": ["kong", "quit", "--wait=15"]}}},
        "security_context": restricted_container_context(),
        "volume_mounts": [
            {"name": "declarative", "mount_path": "/kong/declarative", "read_only": True},
            {"name": "prefix", "mount_path": "/kong_prefix"},
            {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108 (an emptyDir)
        ],
    }
