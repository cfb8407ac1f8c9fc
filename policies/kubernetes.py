"""Rules for the Kubernetes tier: pod templates, autoscaling, and every workload's companions.

Pod-template rules live in `kubernetes_pods` and are re-exported here; this module adds the
autoscaler rules and the objects every workload needs (a PodDisruptionBudget, a NetworkPolicy).
Autoscalers and PodDisruptionBudgets concern Deployments and StatefulSets only; every object
that runs pods (a Job, a CronJob, a DaemonSet too) needs a NetworkPolicy.

Workloads and their companions are matched the way Kubernetes matches them: by namespace
(`metadata.namespace`, `default` when absent) and by label selector, and autoscalers by
`scaleTargetRef` name. A workload declared without `metadata.name` gets a generated name the
policy cannot know, so a scaler that depends on it in the graph counts as targeting it.
"""

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies import kubernetes_pods
from policies.kubernetes_pods import (
    DEPLOYMENT,
    POD_KINDS,
    WORKLOADS,
    namespace_of,
    plain,
    pod_labels,
)
from policies.support import config_value, get, resource_rule, stack_rule

__all__ = ["POLICIES", "depends_on", "selects"]

HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SCALERS = (HPA, SCALED_OBJECT)
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
KUBERNETES_DEFAULT_CPU_TARGET = 80
"""What an autoscaling/v2 HPA without `metrics` targets."""
KEDA_DEFAULT_MAX = 100


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bounds(resource_type: str, props: Mapping[str, Any]) -> tuple[int, int | None]:
    """(minimum, maximum) replicas, with Kubernetes' and KEDA's defaults for absent fields."""
    if resource_type == HPA:
        high = get(props, "spec.maxReplicas")
        return _int(get(props, "spec.minReplicas"), 1), high if isinstance(high, int) else None
    return (
        _int(get(props, "spec.minReplicaCount"), 0),
        _int(get(props, "spec.maxReplicaCount"), KEDA_DEFAULT_MAX),
    )


def _min_field(resource_type: str) -> str:
    return "minReplicas" if resource_type == HPA else "minReplicaCount"


def _min_replicas(args: ResourceValidationArgs) -> Iterable[str]:
    minimum = int(config_value(args, "minimum", default=3))
    low, _ = _bounds(args.resource_type, args.props)
    if low < minimum:
        yield (
            f"{_min_field(args.resource_type)} is {low}; at least {minimum} keep the service up "
            "through an eviction or a zone outage"
        )


def _max_above_min(args: ResourceValidationArgs) -> Iterable[str]:
    low, high = _bounds(args.resource_type, args.props)
    if high is None:
        yield "maxReplicas is not set"
    elif high <= low:
        yield f"the maximum ({high}) is not above the minimum ({low}): it can never scale out"


def _cpu_targets(resource_type: str, props: Mapping[str, Any]) -> Iterable[Any]:
    """The CPU utilisation targets (percent) the autoscaler scales on."""
    if resource_type == HPA:
        metrics = get(props, "spec.metrics")
        if not metrics:
            yield KUBERNETES_DEFAULT_CPU_TARGET
        for metric in metrics or []:
            source = get(metric, "resource") or get(metric, "containerResource") or {}
            if get(source, "name") == "cpu" and get(source, "target.type") == "Utilization":
                yield get(source, "target.averageUtilization")
        return
    for trigger in get(props, "spec.triggers") or []:
        kind = get(trigger, "metricType") or get(trigger, "metadata.type") or "Utilization"
        if get(trigger, "type") == "cpu" and kind == "Utilization":
            yield get(trigger, "metadata.value")


def _cpu_target(args: ResourceValidationArgs) -> Iterable[str]:
    maximum = int(config_value(args, "maximumUtilization", default=80))
    for target in _cpu_targets(args.resource_type, args.props):
        try:
            percent = int(target)
        except (TypeError, ValueError):
            yield "a CPU utilisation target is not a number"
            continue
        if percent > maximum:
            yield (
                f"the CPU utilisation target is {percent}%; above {maximum}% the pods saturate "
                "before new ones are ready"
            )


def depends_on(resource: PolicyResource, other: PolicyResource) -> bool:
    """Whether `resource` uses an output of `other` (directly, or through a property)."""
    urns = {d.urn for d in resource.dependencies}
    urns.update(d.urn for deps in resource.property_dependencies.values() for d in deps)
    return other.urn in urns


def selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (`matchLabels`, `matchExpressions`) selects `labels`."""
    if selector is None:
        return False
    for key, value in plain(get(selector, "matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in plain(get(selector, "matchExpressions") or []):
        key, operator = expression.get("key"), expression.get("operator")
        values, present = expression.get("values") or [], key in labels
        matched = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(operator, False)
        if not matched:
            return False
    return True


def _name(resource: PolicyResource) -> str:
    return str(get(resource.props, "metadata.name") or resource.name)


def _targets(scaler: PolicyResource, workload: PolicyResource) -> bool:
    if namespace_of(scaler.props) != namespace_of(workload.props):
        return False
    kind = get(scaler.props, "spec.scaleTargetRef.kind") or "Deployment"
    if kind != workload.resource_type.rsplit(":", 1)[-1]:
        return False
    name = get(workload.props, "metadata.name")
    if name is None:  # auto-named: only the graph knows
        return depends_on(scaler, workload)
    return bool(get(scaler.props, "spec.scaleTargetRef.name") == name)


def _of(args: StackValidationArgs, types: Iterable[str]) -> list[PolicyResource]:
    wanted = set(types)
    return [r for r in args.resources if r.resource_type in wanted]


def _owners(workload: PolicyResource, scalers: list[PolicyResource]) -> list[PolicyResource]:
    return [s for s in scalers if _targets(s, workload)]


def _autoscaled(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    workloads, scalers = _of(args, WORKLOADS), _of(args, SCALERS)
    for scaler in scalers:
        if not any(_targets(scaler, w) for w in workloads):
            target = get(scaler.props, "spec.scaleTargetRef.name")
            yield f"its scaleTargetRef ({target}) matches no workload in its namespace", scaler.urn
    for workload in workloads:
        owners = _owners(workload, scalers)
        if workload.resource_type == DEPLOYMENT and not owners:
            yield "no HorizontalPodAutoscaler or KEDA ScaledObject scales it", workload.urn
        if len(owners) > 1:
            names = ", ".join(sorted(_name(o) for o in owners))
            yield f"{len(owners)} autoscalers ({names}) fight over its replica count", workload.urn


def _no_replicas(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    scalers = _of(args, SCALERS)
    for workload in _of(args, WORKLOADS):
        owners = _owners(workload, scalers)
        if owners and get(workload.props, "spec.replicas") is not None:
            owner = _name(owners[0])
            message = f"spec.replicas is set although {owner} scales it: every `pulumi up` "
            yield f"{message}resets the scale to that number", workload.urn


def _replicas(workload: PolicyResource, scalers: list[PolicyResource]) -> int:
    """How many pods the workload runs at least (what a PDB is measured against)."""
    owners = _owners(workload, scalers)
    if owners:
        return max(1, min(_bounds(o.resource_type, o.props)[0] for o in owners))
    return _int(get(workload.props, "spec.replicas"), 1)


def _count(value: Any, replicas: int) -> int | None:
    """An int-or-percent PDB field as a pod count (Kubernetes rounds percentages up)."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * replicas / 100)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) else None


def _disruptions_allowed(pdb: PolicyResource, replicas: int) -> int | None:
    max_unavailable = get(pdb.props, "spec.maxUnavailable")
    if max_unavailable is not None:
        return _count(max_unavailable, replicas) or 0
    min_available = _count(get(pdb.props, "spec.minAvailable"), replicas)
    return None if min_available is None else replicas - min_available


def _pdb(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    pdbs, scalers = _of(args, [PDB]), _of(args, SCALERS)
    for workload in _of(args, WORKLOADS):
        labels, namespace = pod_labels(workload.props), namespace_of(workload.props)
        matching = [
            p for p in pdbs
            if namespace_of(p.props) == namespace and selects(get(p.props, "spec.selector"), labels)
        ]  # fmt: skip
        if not matching:
            yield (
                "no PodDisruptionBudget selects its pods: a node drain may evict all",
                workload.urn,
            )
        elif len(matching) > 1:
            yield (
                "several PodDisruptionBudgets select its pods: the eviction API refuses",
                workload.urn,
            )
        replicas = _replicas(workload, scalers)
        for pdb in matching:
            allowed = _disruptions_allowed(pdb, replicas)
            if allowed is None:
                yield (
                    f"PodDisruptionBudget {_name(pdb)} sets no minAvailable or maxUnavailable",
                    pdb.urn,
                )
            elif allowed < 1:
                message = f"PodDisruptionBudget {_name(pdb)} allows no disruption of {replicas} "
                yield f"{message}replica(s): node drains and upgrades block", pdb.urn


def _isolates_ingress(policy: PolicyResource) -> bool:
    types = get(policy.props, "spec.policyTypes")
    return types is None or "Ingress" in plain(types)


def _network_policy(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    policies = _of(args, [NETWORK_POLICY])
    for workload in _of(args, POD_KINDS):  # a Job's pod is as reachable as a Deployment's
        labels = pod_labels(workload.props, workload.resource_type)
        namespace = namespace_of(workload.props)
        selecting = [
            p for p in policies
            if namespace_of(p.props) == namespace
            and selects(get(p.props, "spec.podSelector") or {}, labels)
        ]  # fmt: skip
        if not selecting:
            yield (
                "no NetworkPolicy selects its pods: any pod in the cluster can reach them",
                workload.urn,
            )
        elif not any(_isolates_ingress(p) for p in selecting):
            yield "only Egress NetworkPolicies select its pods: ingress is open", workload.urn


_ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})


def _open_ingress(args: ResourceValidationArgs) -> Iterable[str]:
    for index, rule in enumerate(plain(get(args.props, "spec.ingress") or [])):
        sources = rule.get("from")
        if not sources:
            yield f"ingress rule {index} names no source (`from`): it admits every pod and address"
            continue
        for peer in sources:
            cidr = (peer.get("ipBlock") or {}).get("cidr")
            if cidr in _ANYWHERE:
                yield f"ingress rule {index} admits {cidr}: every address"
            if peer.get("namespaceSelector") == {} and not (peer.get("podSelector") or {}):
                yield f"ingress rule {index} admits every pod of every namespace"


_SCALING = "the stack config (eduscale:services.<service> or eduscale:gateway)"

POLICIES = [
    *kubernetes_pods.POLICIES,
    resource_rule(
        "k8s-hpa-min-replicas",
        "Below three replicas one eviction or one zone outage takes away most of a service's "
        "capacity; prod runs at least three (dev may run one).",
        types=SCALERS, severity=Severity.HIGH, mandatory=True, check=_min_replicas,
        fix=f"Raise minReplicas in {_SCALING}.",
        scanners=["polaris:hpaMinAvailability", "kube-linter:hpa-minimum-three-replicas",
                  "kube-score:horizontalpodautoscaler-replicas"],
        config={"minimum": {"type": "integer", "default": 3, "minimum": 1}},
    ),
    resource_rule(
        "k8s-hpa-max-above-min",
        "An autoscaler whose maximum is not above its minimum cannot add capacity under load.",
        types=SCALERS, severity=Severity.HIGH, mandatory=True, check=_max_above_min,
        fix=f"Set maxReplicas above minReplicas in {_SCALING}.",
        scanners=["polaris:hpaMaxAvailability", "kube-score:horizontalpodautoscaler-replicas"],
    ),
    resource_rule(
        "k8s-hpa-cpu-target",
        "Scaling out takes a minute or more (scheduling, image pull, readiness); a CPU target "
        "above 80% leaves no headroom to absorb the load meanwhile.",
        types=SCALERS, severity=Severity.HIGH, mandatory=True, check=_cpu_target,
        fix=f"Set cpuTargetPercent to 80 or less in {_SCALING}.",
        scanners=["derived"],
        config={"maximumUtilization": {"type": "integer", "default": 80, "minimum": 1}},
    ),
    stack_rule(
        "k8s-deployment-autoscaled",
        "Every Deployment follows its load through one autoscaler (an HPA, or KEDA for queue "
        "consumers); a fixed replica count is either wasted or an outage at peak, and an "
        "autoscaler whose target does not exist scales nothing.",
        severity=Severity.HIGH, mandatory=True, check=_autoscaled,
        fix="Create one HorizontalPodAutoscaler (or KEDA ScaledObject) per Deployment, whose "
        "scaleTargetRef names it in the same namespace.",
        scanners=["derived", "kube-score:horizontalpodautoscaler-has-target",
                  "kube-linter:dangling-horizontalpodautoscaler"],
    ),
    stack_rule(
        "k8s-autoscaled-no-replicas",
        "When an autoscaler owns a workload, spec.replicas in the program resets the scale on "
        "every deployment, dropping capacity in the middle of a peak.",
        severity=Severity.HIGH, mandatory=True, check=_no_replicas,
        fix="Leave spec.replicas unset on autoscaled workloads; set the HPA's minReplicas.",
        scanners=["kube-score:deployment-targeted-by-hpa-does-not-have-replicas-configured"],
    ),
    stack_rule(
        "k8s-pod-disruption-budget",
        "A PodDisruptionBudget keeps node drains and upgrades from evicting all of a "
        "workload's pods at once, but one that allows no disruption blocks them forever.",
        severity=Severity.HIGH, mandatory=True, check=_pdb,
        fix="Give each Deployment and StatefulSet one PDB whose selector matches its pod "
        "labels in its namespace, with maxUnavailable: 1.",
        scanners=["kube-score:deployment-has-poddisruptionbudget",
                  "kube-score:statefulset-has-poddisruptionbudget",
                  "kube-score:poddisruptionbudget-has-policy", "polaris:missingPodDisruptionBudget",
                  "polaris:pdbDisruptionsIsZero", "kube-linter:pdb-max-unavailable",
                  "kube-linter:pdb-min-available"],
    ),
    stack_rule(
        "k8s-network-policy-coverage",
        "Pods no NetworkPolicy selects accept traffic from every pod in the cluster, so one "
        "compromised pod reaches them all: the pods of Jobs, CronJobs and DaemonSets as much "
        "as a Deployment's.",
        severity=Severity.HIGH, mandatory=True, check=_network_policy,
        fix="Add a NetworkPolicy (with Ingress in policyTypes) whose podSelector matches the "
        "pod labels of the workload (or Job) in its namespace.",
        scanners=["kube-score:pod-networkpolicy", "polaris:missingNetworkPolicy",
                  "kube-linter:non-isolated-pod"],
    ),
    resource_rule(
        "k8s-network-policy-no-open-ingress",
        "A NetworkPolicy ingress rule without a source, or with one that matches everything, "
        "admits every pod and address: the policy selects the pods but fences nothing.",
        types=[NETWORK_POLICY], severity=Severity.HIGH, mandatory=True, check=_open_ingress,
        fix="Name the callers in each ingress rule's `from` (pod and namespace selectors, or "
        "a bounded ipBlock); drop the rule if there are none.",
        scanners=["derived"],
    ),
]  # fmt: skip
