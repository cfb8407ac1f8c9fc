"""The OpenTelemetry Collector that receives every process's spans and sends them to X-Ray.

One Helm release of the `opentelemetry-collector` chart (version pinned by the stack) in
`deployment` mode, with the contrib image because AWS X-Ray's exporter (`awsxray`) is
only there. X-Ray rather than a self-run trace store: traces are kept and searched by
AWS, beside the CloudWatch logs, with nothing to size or back up; the collector keeps the
services vendor-neutral (they speak OTLP), so a different back end is a change here only.

It receives OTLP over HTTP only (port 4318; the services' and Kong's exporters both use
it), limits its memory, batches, and exports with an IRSA role allowed to write X-Ray
segments and nothing else. The chart's default receivers (gRPC, Jaeger, Zipkin) and its
metrics and logs pipelines are switched off: nothing else is listening. Its pods are
selected by `COLLECTOR_LABELS`, which the workloads' and Kong's NetworkPolicies admit as
an egress peer.
"""

from typing import Any, TypedDict

import pulumi

from components.helm import chart_release
from components.irsa import service_account_role
from components.type_tokens import TRACE_COLLECTOR

__all__ = ["COLLECTOR_LABELS", "OTLP_HTTP_PORT", "TraceCollector", "TraceCollectorArgs"]

_REPOSITORY = "https://open-telemetry.github.io/opentelemetry-helm-charts"
_RELEASE = "trace-collector"
_SERVICE_ACCOUNT = "trace-collector"
_XRAY_WRITE = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
OTLP_HTTP_PORT = 4318
"""The collector's OTLP/HTTP receiver port."""
COLLECTOR_LABELS = {
    "app.kubernetes.io/name": "opentelemetry-collector",
    "app.kubernetes.io/instance": _RELEASE,
}
"""The labels the chart puts on the collector's pods (release `trace-collector`)."""
_SYSTEM_NODES = {"eduscale.io/node-group": "system"}


class TraceCollectorArgs(TypedDict):
    """Inputs of `TraceCollector`."""

    namespace: str
    """Namespace of the collector (created with the release)."""
    chart_version: str
    """Pinned version of the opentelemetry-collector chart."""
    replicas: int
    """Collector pods (two survive one node's loss)."""
    region: pulumi.Input[str]
    """The AWS region whose X-Ray receives the traces."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's OIDC provider (for the collector's IRSA role)."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL."""


class TraceCollector(pulumi.ComponentResource):
    """An OpenTelemetry Collector: OTLP/HTTP in, AWS X-Ray out."""

    otlp_endpoint: pulumi.Output[str]
    """Its OTLP/HTTP base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it."""
    traces_endpoint: pulumi.Output[str]
    """Its OTLP/HTTP traces URL (`<otlp_endpoint>/v1/traces`), as Kong's plugin takes it."""
    namespace: pulumi.Output[str]
    """Namespace of the collector."""

    def __init__(
        self, name: str, args: TraceCollectorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TRACE_COLLECTOR.token, name, None, TRACE_COLLECTOR.options(opts))
        if int(args["replicas"]) < 1:
            raise ValueError(f"{name}: replicas must be at least 1, got {args['replicas']}")
        namespace = args["namespace"]
        role = service_account_role(
            name,
            "xray",
            oidc_provider_arn=args["oidc_provider_arn"],
            oidc_issuer=args["oidc_issuer"],
            namespace=namespace,
            service_account=_SERVICE_ACCOUNT,
            managed_policy_arns=[_XRAY_WRITE],
            parent=self,
        )
        values = pulumi.Output.all(role.arn, args["region"]).apply(
            lambda parts: collector_values(args, role_arn=parts[0], region=parts[1])
        )
        chart_release(
            f"{name}-opentelemetry-collector",
            release=_RELEASE,
            chart="opentelemetry-collector",
            repo=_REPOSITORY,
            version=args["chart_version"],
            namespace=namespace,
            values=values,
            opts=pulumi.ResourceOptions(parent=self),
        )
        base = f"http://{_RELEASE}.{namespace}.svc.cluster.local:{OTLP_HTTP_PORT}"
        self.otlp_endpoint = pulumi.Output.from_input(base)
        self.traces_endpoint = pulumi.Output.from_input(f"{base}/v1/traces")
        self.namespace = pulumi.Output.from_input(namespace)
        self.register_outputs(
            {
                "otlp_endpoint": self.otlp_endpoint,
                "traces_endpoint": self.traces_endpoint,
                "namespace": self.namespace,
            }
        )


def collector_values(args: TraceCollectorArgs, *, role_arn: str, region: str) -> dict[str, Any]:
    """The chart's values: OTLP/HTTP in, memory limit and batches, X-Ray out."""
    return {
        "mode": "deployment",
        "fullnameOverride": _RELEASE,
        "replicaCount": int(args["replicas"]),
        "image": {"repository": "otel/opentelemetry-collector-contrib"},
        "command": {"name": "otelcol-contrib"},
        "nodeSelector": _SYSTEM_NODES,
        "serviceAccount": {
            "create": True,
            "name": _SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
        "resources": {
            "requests": {"cpu": "200m", "memory": "512Mi"},
            "limits": {"memory": "512Mi"},
        },
        "ports": {
            "otlp": {"enabled": False},
            "otlp-http": {"enabled": True},
            "jaeger-compact": {"enabled": False},
            "jaeger-thrift": {"enabled": False},
            "jaeger-grpc": {"enabled": False},
            "zipkin": {"enabled": False},
            "metrics": {"enabled": True},
        },
        "config": {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": None,
                        "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"},
                    }
                },
                "jaeger": None,
                "zipkin": None,
                "prometheus": None,
            },
            "processors": {
                "memory_limiter": {"check_interval": "1s", "limit_percentage": 80},
                "batch": {"send_batch_size": 512, "timeout": "5s"},
            },
            "exporters": {"awsxray": {"region": region}},
            "service": {
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["memory_limiter", "batch"],
                        "exporters": ["awsxray"],
                    },
                    "metrics": None,
                    "logs": None,
                }
            },
        },
    }
