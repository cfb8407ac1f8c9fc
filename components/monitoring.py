"""Prometheus, Grafana and the request-queue metric for the HPAs, on the platform's cluster.

kube-prometheus-stack (a Helm release, chart version pinned) rather than Amazon Managed
Service for Prometheus with a collector: it runs the same Prometheus the developers run
locally, with the same rule file, plus Alertmanager, Grafana and kube-state-metrics, and
its Prometheus Operator turns `PodMonitor` and `PrometheusRule` objects into scrape and
rule config, so each target and each rule is a reviewable object in the graph. AMP would
still need a collector in the cluster and a Grafana elsewhere; at this scale the stack's
own two replicas on encrypted gp3 volumes are cheaper and one less AWS account boundary.

The HPAs of the HTTP services read `http_server_active_requests` (the request queue depth
per pod) through prometheus-adapter, not KEDA's prometheus scaler, although KEDA already
scales the workers: the adapter serves it as a true `Pods` metric on the custom metrics
API, so the HPA that `Microservice` declares stays the one owner of the replica count
(min, max and CPU 70 % from the stack config) and averages the metric per pod itself.
KEDA's prometheus trigger is an `External` metric of one query value and would replace
that HPA with the ScaledObject's own. The adapter is configured with that one rule only
(`rules.default: false`): no other series reaches the custom metrics API.

Scrape targets are `PodMonitor`s, one per workload, in the workload's namespace (so a
bearer-token Secret, which Qdrant's metrics need, sits beside it), with the workload's
name as `job`. Each gets a NetworkPolicy admitting only Prometheus's pods on the metrics
port: the workloads' own policies admit only their callers. Alert rules come from
`components.alert_rules`, dashboards from `components.dashboards` (ConfigMaps labelled for
the Grafana sidecar).

The charts' images are pinned by the chart version (each chart names its image tags);
`image_digests` pins them by digest too. The policy pack does not look inside Helm
releases (third-party software we configure), so a stack that leaves the digests unset
is not refused; policies/waivers.py records that finding.
"""

import re
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.alert_rules import rule_groups
from components.dashboards import DASHBOARD_LABEL, dashboards
from components.helm import chart_release
from components.type_tokens import MONITORING
from contracts.platform_metrics import HTTP_ACTIVE_REQUESTS, METRICS_PATH

__all__ = [
    "IMAGE_DIGEST_KEYS",
    "PROMETHEUS_LABELS",
    "Monitoring",
    "MonitoringArgs",
    "ScrapeTargetArgs",
]

_SYSTEM_NODES = {"eduscale.io/node-group": "system"}
_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
_FULLNAME = "kube-prometheus"
PROMETHEUS_LABELS = {"app.kubernetes.io/name": "prometheus"}
"""The labels the operator puts on Prometheus's pods: what the scrape NetworkPolicies admit."""
_DIGEST_PATHS: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus", "prometheusSpec", "image", "sha"),
    "alertmanager": ("alertmanager", "alertmanagerSpec", "image", "sha"),
    "operator": ("prometheusOperator", "image", "sha"),
    "config_reloader": ("prometheusOperator", "prometheusConfigReloader", "image", "sha"),
    "webhook_certgen": ("prometheusOperator", "admissionWebhooks", "patch", "image", "sha"),
    "grafana": ("grafana", "image", "sha"),
    "grafana_sidecar": ("grafana", "sidecar", "image", "sha"),
    "kube_state_metrics": ("kube-state-metrics", "image", "sha"),
    "node_exporter": ("prometheus-node-exporter", "image", "digest"),
}
IMAGE_DIGEST_KEYS = (*_DIGEST_PATHS, "adapter")
"""The chart images `image_digests` may pin."""
_ADAPTER_TAG = "v0.12.0"
"""The image tag of prometheus-adapter chart 5.3.0 (its appVersion): an `adapter` digest
must be this tag's, and changes with the chart version. The chart has no digest field,
so the digest rides on the tag (`<tag>@sha256:...`)."""
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


class ScrapeTargetArgs(TypedDict):
    """One workload Prometheus scrapes."""

    name: str
    """The workload: the PodMonitor's name and the `job` label of its series."""
    namespace: pulumi.Input[str]
    """Its namespace."""
    labels: dict[str, str]
    """Labels that select its pods (and no other workload's)."""
    port: str
    """The named container port that serves the metrics."""
    path: NotRequired[str]
    """The metrics path (default `/metrics`)."""
    bearer_token: NotRequired[pulumi.Input[str]]
    """A token the endpoint requires (`Authorization: Bearer`); kept in a Secret."""
    http_service: NotRequired[bool]
    """Whether it serves the HTTP server metrics: it gets a golden-signals row."""


class MonitoringArgs(TypedDict):
    """Inputs of `Monitoring`."""

    namespace: str
    """Namespace of Prometheus, Alertmanager, Grafana and the adapter."""
    stack_chart_version: str
    """Pinned version of the kube-prometheus-stack chart."""
    adapter_chart_version: str
    """Pinned version of the prometheus-adapter chart."""
    retention_days: int
    """How long Prometheus keeps samples."""
    storage_gb: int
    """Size of each Prometheus replica's volume."""
    storage_class: str
    """StorageClass of the volumes (the encrypted gp3 class)."""
    replicas: int
    """Prometheus and Alertmanager replicas (two for high availability)."""
    cpu: str
    """CPU request of each Prometheus replica."""
    memory: str
    """Memory request and limit of each Prometheus replica."""
    grafana_storage_gb: int
    """Size of Grafana's volume (its users and annotations; dashboards come from code)."""
    scrape_targets: list[ScrapeTargetArgs]
    """Every workload to scrape."""
    image_digests: NotRequired[dict[str, str]]
    """`sha256:<64 hex>` per chart image (keys: `IMAGE_DIGEST_KEYS`)."""


def _set(values: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    node = values
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _check(name: str, args: MonitoringArgs) -> None:
    for field in ("retention_days", "storage_gb", "replicas", "grafana_storage_gb"):
        if int(args[field]) < 1:
            raise ValueError(f"{name}: {field} must be at least 1, got {args[field]}")
    unknown = sorted(set(args.get("image_digests", {})) - set(IMAGE_DIGEST_KEYS))
    if unknown:
        raise ValueError(
            f"{name}: image_digests has unknown key(s) {', '.join(unknown)}; known: "
            f"{', '.join(IMAGE_DIGEST_KEYS)}"
        )
    for key, digest in args.get("image_digests", {}).items():
        if _DIGEST.fullmatch(digest) is None:
            raise ValueError(f"{name}: image_digests.{key} must be sha256:<64 hex>")
    names = [t["name"] for t in args["scrape_targets"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{name}: scrape_targets name {', '.join(duplicates)} twice")


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack, prometheus-adapter, one PodMonitor per workload, rules, boards."""

    prometheus_url: pulumi.Output[str]
    """In-cluster URL of Prometheus's API."""
    namespace: pulumi.Output[str]
    """Namespace of the monitoring stack."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(MONITORING.token, name, None, MONITORING.options(opts))
        _check(name, args)
        namespace = args["namespace"]
        child = pulumi.ResourceOptions(parent=self)
        url = f"http://{_FULLNAME}-prometheus.{namespace}.svc:9090"
        stack = chart_release(
            f"{name}-kube-prometheus-stack",
            release="kube-prometheus-stack",
            chart="kube-prometheus-stack",
            repo=_REPOSITORY,
            version=args["stack_chart_version"],
            namespace=namespace,
            values=_stack_values(args),
            opts=child,
        )
        adapter_values: dict[str, Any] = {
            "replicas": 2,
            "nodeSelector": _SYSTEM_NODES,
            "prometheus": {"url": f"http://{_FULLNAME}-prometheus.{namespace}.svc", "port": 9090},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "rules": {"default": False, "custom": [_queue_depth_rule()]},
        }
        digest = args.get("image_digests", {}).get("adapter")
        if digest is not None:
            adapter_values["image"] = {"tag": f"{_ADAPTER_TAG}@{digest}"}
        chart_release(
            f"{name}-prometheus-adapter",
            release="prometheus-adapter",
            chart="prometheus-adapter",
            repo=_REPOSITORY,
            version=args["adapter_chart_version"],
            namespace=namespace,
            values=adapter_values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[stack]),
        )
        # The operator's CRDs and the namespace come with the chart.
        after_stack = pulumi.ResourceOptions(parent=self, depends_on=[stack])
        labels = {"app.kubernetes.io/part-of": "eduscale", "app.kubernetes.io/name": name}
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": "eduscale", "namespace": namespace, "labels": labels},
            spec={"groups": rule_groups()},
            opts=after_stack,
        )
        services = [t["name"] for t in args["scrape_targets"] if t.get("http_service", False)]
        for board in dashboards(services):
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{board.uid}",
                metadata={
                    "name": board.uid,
                    "namespace": namespace,
                    "labels": {**labels, **DASHBOARD_LABEL},
                },
                data={f"{board.uid}.json": board.json()},
                opts=after_stack,
            )
        for target in args["scrape_targets"]:
            _scrape(name, target, namespace, after_stack)
        self.prometheus_url = pulumi.Output.from_input(url)
        self.namespace = pulumi.Output.from_input(namespace)
        self.register_outputs({"prometheus_url": self.prometheus_url, "namespace": self.namespace})


def _queue_depth_rule() -> dict[str, Any]:
    """The adapter rule that serves the active-requests gauge as a per-pod metric."""
    metric = HTTP_ACTIVE_REQUESTS.series
    return {
        "seriesQuery": f'{metric}{{namespace!="",pod!=""}}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": f"^{metric}$", "as": metric},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    }


def _stack_values(args: MonitoringArgs) -> dict[str, Any]:
    storage_class = args["storage_class"]

    def volume(size_gb: int) -> dict[str, Any]:
        return {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{size_gb}Gi"}},
                }
            }
        }

    storage_gb = int(args["storage_gb"])
    values: dict[str, Any] = {
        "fullnameOverride": _FULLNAME,
        "prometheusOperator": {
            "nodeSelector": _SYSTEM_NODES,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
        "prometheus": {
            "prometheusSpec": {
                "replicas": int(args["replicas"]),
                "retention": f"{int(args['retention_days'])}d",
                # Leave a tenth of the volume free: a full disk stops ingestion.
                "retentionSize": f"{max(1, storage_gb * 9 // 10)}GB",
                "storageSpec": volume(storage_gb),
                "resources": {
                    "requests": {"cpu": args["cpu"], "memory": args["memory"]},
                    "limits": {"memory": args["memory"]},
                },
                # Select every PodMonitor, ServiceMonitor and PrometheusRule, not only
                # the chart's own: ours are labelled for the platform, not the release.
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {
                "replicas": int(args["replicas"]),
                "nodeSelector": _SYSTEM_NODES,
                "storage": volume(5),
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
            }
        },
        "grafana": {
            "nodeSelector": _SYSTEM_NODES,
            "persistence": {
                "enabled": True,
                "storageClassName": storage_class,
                "size": f"{int(args['grafana_storage_gb'])}Gi",
            },
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": next(iter(DASHBOARD_LABEL)),
                    "labelValue": next(iter(DASHBOARD_LABEL.values())),
                    "searchNamespace": "ALL",
                }
            },
        },
        "kube-state-metrics": {"nodeSelector": _SYSTEM_NODES},
    }
    for key, digest in args.get("image_digests", {}).items():
        if key in _DIGEST_PATHS:
            _set(values, _DIGEST_PATHS[key], digest)
    return values


def _scrape(
    component: str,
    target: ScrapeTargetArgs,
    monitoring_namespace: str,
    opts: pulumi.ResourceOptions,
) -> None:
    """A PodMonitor for `target`, and the NetworkPolicy that lets Prometheus reach it."""
    name, namespace = target["name"], target["namespace"]
    labels = {"app.kubernetes.io/part-of": "eduscale", "app.kubernetes.io/name": name}
    endpoint: dict[str, Any] = {
        "port": target["port"],
        "path": target.get("path", METRICS_PATH),
        "interval": "30s",
    }
    token = target.get("bearer_token")
    if token is not None:
        secret = k8s.core.v1.Secret(
            f"{component}-{name}-scrape-token",
            metadata={"namespace": namespace, "labels": labels},
            type="Opaque",
            string_data={"token": pulumi.Output.secret(token)},
            opts=opts,
        )
        endpoint["authorization"] = {
            "type": "Bearer",
            "credentials": {"name": secret.metadata.name, "key": "token"},
        }
    k8s.apiextensions.CustomResource(
        f"{component}-{name}-pod-monitor",
        api_version="monitoring.coreos.com/v1",
        kind="PodMonitor",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={
            "jobLabel": "app.kubernetes.io/name",
            "namespaceSelector": {"matchNames": [namespace]},
            "selector": {"matchLabels": target["labels"]},
            "podMetricsEndpoints": [endpoint],
        },
        opts=opts,
    )
    k8s.networking.v1.NetworkPolicy(
        f"{component}-{name}-scrape",
        metadata={"name": f"{name}-scrape", "namespace": namespace, "labels": labels},
        spec={
            "pod_selector": {"match_labels": target["labels"]},
            "policy_types": ["Ingress"],
            "ingress": [
                {
                    "from_": [
                        {
                            "namespace_selector": {
                                "match_labels": {
                                    "kubernetes.io/metadata.name": monitoring_namespace
                                }
                            },
                            "pod_selector": {"match_labels": PROMETHEUS_LABELS},
                        }
                    ],
                    "ports": [{"port": target["port"], "protocol": "TCP"}],
                }
            ],
        },
        opts=pulumi.ResourceOptions(parent=opts.parent),
    )
