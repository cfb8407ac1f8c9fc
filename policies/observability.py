"""Rules for observability: every workload is scraped, every HTTP autoscaler sees its queue.

A workload nobody scrapes is invisible to its alerts and dashboards until users report it;
an HTTP service that scales on CPU only keeps its replica count while requests queue on an
I/O-bound dependency (the database, the LLM). Both rules read the graph as the Prometheus
Operator and the HPA controller would:

- A Deployment or StatefulSet is scraped when a `PodMonitor` selects its pods (by label,
  in a namespace the monitor covers: `namespaceSelector.any`, `matchNames`, or else its
  own) on a port its containers name, or a `ServiceMonitor` selects a Service that selects
  its pods, on a port that Service names.
- An HTTP service is a Deployment whose pods carry `app.kubernetes.io/component: service`
  (what `Microservice` labels them). Its autoscaler must scale on a queue-depth metric:
  an HPA `Pods` metric, or a KEDA `prometheus` trigger whose query reads it. The accepted
  metric names are the rule's config (`http_server_active_requests` by default).
"""

from collections.abc import Iterable, Sequence

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from policies.kubernetes import HPA, SCALED_OBJECT, depends_on, selects
from policies.kubernetes_pods import (
    DEPLOYMENT,
    WORKLOADS,
    containers,
    kind_of,
    namespace_of,
    plain,
    pod_labels,
)
from policies.support import config_value, get, stack_rule

__all__ = ["POD_MONITOR", "POLICIES", "SERVICE_MONITOR"]

POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
SERVICE = "kubernetes:core/v1:Service"
HTTP_ROLE = ("app.kubernetes.io/component", "service")
"""The pod label that marks an HTTP service (components/workload.labels_for)."""
QUEUE_DEPTH_METRICS = ["http_server_active_requests"]

Violations = Iterable[tuple[str, str | None]]


def _of(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in types]


def _name(resource: PolicyResource) -> str:
    return str(get(resource.props, "metadata.name") or resource.name)


def _covers(monitor: PolicyResource, namespace: str) -> bool:
    """Whether a monitor's `namespaceSelector` includes `namespace`."""
    selector = plain(get(monitor.props, "spec.namespaceSelector") or {})
    if selector.get("any") is True:
        return True
    names = selector.get("matchNames")
    if names:
        return namespace in names
    return namespace_of(monitor.props) == namespace


def _endpoint_ports(monitor: PolicyResource, field: str) -> set[str]:
    return {
        str(port)
        for endpoint in plain(get(monitor.props, f"spec.{field}") or [])
        if (port := endpoint.get("port")) is not None
    }


def _container_ports(workload: PolicyResource) -> set[str]:
    kind = workload.resource_type
    return {
        str(port.get("name"))
        for _, container in containers(workload.props, resource_type=kind, init=False)
        for port in plain(get(container, "ports") or [])
        if port.get("name")
    }


def _by_pod_monitor(
    workload: PolicyResource, monitors: Sequence[PolicyResource]
) -> tuple[bool, list[str]]:
    """(scraped, why each selecting monitor misses) for the PodMonitors."""
    labels = pod_labels(workload.props, workload.resource_type)
    namespace, ports = namespace_of(workload.props), _container_ports(workload)
    misses = []
    for monitor in monitors:
        if not _covers(monitor, namespace):
            continue
        if not selects(get(monitor.props, "spec.selector") or {}, labels):
            continue
        named = _endpoint_ports(monitor, "podMetricsEndpoints")
        if named & ports:
            return True, []
        misses.append(
            f"PodMonitor {_name(monitor)} selects its pods but scrapes port(s) "
            f"{', '.join(sorted(named)) or '(none)'}, which its containers do not name"
        )
    return False, misses


def _by_service_monitor(
    workload: PolicyResource,
    monitors: Sequence[PolicyResource],
    services: Sequence[PolicyResource],
) -> bool:
    labels = pod_labels(workload.props, workload.resource_type)
    namespace = namespace_of(workload.props)
    fronting = [
        s
        for s in services
        if namespace_of(s.props) == namespace
        and get(s.props, "spec.selector")
        and selects({"matchLabels": get(s.props, "spec.selector")}, labels)
    ]
    for monitor in monitors:
        if not _covers(monitor, namespace):
            continue
        named = _endpoint_ports(monitor, "endpoints")
        for service in fronting:
            service_labels = plain(get(service.props, "metadata.labels") or {})
            if not selects(get(monitor.props, "spec.selector") or {}, service_labels):
                continue
            if named & {str(p.get("name")) for p in plain(get(service.props, "spec.ports") or [])}:
                return True
    return False


def _scraped(args: StackValidationArgs) -> Violations:
    pod_monitors = _of(args, POD_MONITOR)
    service_monitors = _of(args, SERVICE_MONITOR)
    services = _of(args, SERVICE)
    for workload in _of(args, *WORKLOADS):
        scraped, misses = _by_pod_monitor(workload, pod_monitors)
        if scraped or _by_service_monitor(workload, service_monitors, services):
            continue
        what = f"{kind_of(workload.resource_type)} {_name(workload)}"
        if misses:
            for miss in misses:
                yield f"{what} is not scraped: {miss}", workload.urn
        else:
            yield (
                (
                    f"{what} is not scraped: no PodMonitor or ServiceMonitor selects its pods, so "
                    "no alert or dashboard sees it"
                ),
                workload.urn,
            )


def _targets(scaler: PolicyResource, workload: PolicyResource) -> bool:
    if namespace_of(scaler.props) != namespace_of(workload.props):
        return False
    kind = get(scaler.props, "spec.scaleTargetRef.kind") or "Deployment"
    if kind != kind_of(workload.resource_type):
        return False
    name = get(workload.props, "metadata.name")
    if name is None:
        return depends_on(scaler, workload)
    return bool(get(scaler.props, "spec.scaleTargetRef.name") == name)


def _queue_metrics(scaler: PolicyResource) -> list[str]:
    """The metric names (HPA Pods metrics) or queries (KEDA prometheus triggers) it reads."""
    if scaler.resource_type == HPA:
        return [
            str(get(metric, "pods.metric.name"))
            for metric in get(scaler.props, "spec.metrics") or []
            if get(metric, "type") == "Pods"
        ]
    return [
        str(get(trigger, "metadata.query"))
        for trigger in get(scaler.props, "spec.triggers") or []
        if get(trigger, "type") == "prometheus"
    ]


def _reads(found: Sequence[str], accepted: Sequence[str], scaler: PolicyResource) -> bool:
    if scaler.resource_type == HPA:
        return any(name in accepted for name in found)
    return any(metric in query for query in found for metric in accepted)


def _http_service(workload: PolicyResource) -> bool:
    key, value = HTTP_ROLE
    return bool(pod_labels(workload.props, workload.resource_type).get(key) == value)


def _queue_depth(args: StackValidationArgs) -> Violations:
    accepted: list[str] = list(config_value(args, "metrics", default=QUEUE_DEPTH_METRICS))
    scalers = _of(args, HPA, SCALED_OBJECT)
    for workload in _of(args, DEPLOYMENT):
        if not _http_service(workload):
            continue
        for scaler in (s for s in scalers if _targets(s, workload)):
            if not _reads(_queue_metrics(scaler), accepted, scaler):
                metrics = " or ".join(accepted)
                yield (
                    (
                        f"the autoscaler {_name(scaler)} of HTTP service {_name(workload)} "
                        f"does not scale on its request queue ({metrics} per pod): it waits "
                        "for CPU while requests queue on a slow dependency"
                    ),
                    scaler.urn,
                )


POLICIES = [
    stack_rule(
        "k8s-workload-scraped",
        "Every Deployment and StatefulSet is scraped by Prometheus: a PodMonitor selects its "
        "pods on a port they name (or a ServiceMonitor, through a Service that selects them). "
        "An unscraped workload has no alerts and no dashboards.",
        severity=Severity.MEDIUM, mandatory=True, check=_scraped,
        fix="Add the workload to the scrape targets (stacks/monitoring.py), which gives it a "
        "PodMonitor and the NetworkPolicy that lets Prometheus reach its metrics port.",
        scanners=["derived"],
    ),
    stack_rule(
        "k8s-http-autoscaler-queue-depth",
        "Every autoscaler of an HTTP service (pods labelled app.kubernetes.io/component: "
        "service) scales on the request queue depth per pod beside CPU: an HPA Pods metric "
        "(or a KEDA prometheus trigger) reading http_server_active_requests.",
        severity=Severity.MEDIUM, mandatory=True, check=_queue_depth,
        fix="Give the Microservice queue_depth_metric = 'http_server_active_requests' "
        "(stacks/workloads.py); prometheus-adapter (components/monitoring.py) serves it.",
        scanners=["derived"],
        config={
            "metrics": {
                "type": "array",
                "items": {"type": "string"},
                "default": QUEUE_DEPTH_METRICS,
            }
        },
    ),
]  # fmt: skip
