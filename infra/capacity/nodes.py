"""Nodes per node group: the pods at peak, packed onto each group's instance type.

Allocatable resources follow EKS: the kubelet reserves 6 % of the first core, 1 % of the
second, 0.5 % of the third and fourth and 0.25 % of the rest, and 255 MiB + 11 MiB per
pod slot of memory, plus 100 MiB for hard eviction; the model's DaemonSets take their
share of every node. A group with several instance types is sized for the smallest (the
autoscaler may launch any of them). Nodes needed are the most of the CPU, memory and
pod-slot counts, divided by the model's packing efficiency.

Placement: nothing pins a workload to a group, so the plan places pods as the stack's
groups intend them: interruptible workers on SPOT groups when there are any, everything
else on the ON_DEMAND groups that are not the system group (the system group keeps its
minimum size, for the add-ons). Within a class, pods fill the groups in config order up
to each group's maxSize, and the last group takes the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.capacity.pods import WorkloadPods
from infra.capacity.prices import Ec2Type, PriceTable
from infra.capacity.requirement import Requirement
from infra.capacity.workload import ClusterModel
from stacks.compute_sections import NodeGroupConfig
from stacks.config import StackConfig

__all__ = ["GroupNodes", "allocatable", "size_node_groups"]

_EVICTION_MIB = 100


@dataclass(frozen=True)
class GroupNodes:
    """Nodes of one group at peak, and the instance type they are priced at."""

    group: NodeGroupConfig
    nodes: int
    instance_type: str


@dataclass(frozen=True)
class _Shape:
    cpu: float
    memory_mib: float
    pods: int


def _kube_reserved_cpu(vcpu: int) -> float:
    tiers = ((1, 0.06), (1, 0.01), (2, 0.005))
    reserved, left = 0.0, float(vcpu)
    for cores, share in tiers:
        used = min(left, cores)
        reserved += used * share
        left -= used
    return reserved + left * 0.0025


def allocatable(node: Ec2Type, cluster: ClusterModel) -> _Shape:
    """What pods can request on one node, after the kubelet and the DaemonSets."""
    reserved_memory = 255 + 11 * node.max_pods + _EVICTION_MIB
    return _Shape(
        cpu=node.vcpu - _kube_reserved_cpu(node.vcpu) - cluster.daemonset_cpu,
        memory_mib=node.memory_gib * 1024 - reserved_memory - cluster.daemonset_memory_mib,
        pods=node.max_pods - cluster.daemonset_pods,
    )


def _smallest(group: NodeGroupConfig, prices: PriceTable, cluster: ClusterModel) -> _Shape:
    shapes = [allocatable(prices.node(t), cluster) for t in group.instance_types]
    return _Shape(
        cpu=min(s.cpu for s in shapes),
        memory_mib=min(s.memory_mib for s in shapes),
        pods=min(s.pods for s in shapes),
    )


def _nodes_for(pods: list[tuple[WorkloadPods, int]], shape: _Shape, packing: float) -> int:
    if not pods:
        return 0
    cpu = sum(w.cpu * n for w, n in pods) / shape.cpu
    memory = sum(w.memory_mib * n for w, n in pods) / shape.memory_mib
    slots = sum(n for _, n in pods) / shape.pods
    return math.ceil(round(max(cpu, memory, slots) / packing, 9))


def size_node_groups(
    workloads: list[WorkloadPods], config: StackConfig, prices: PriceTable, cluster: ClusterModel
) -> tuple[list[Requirement], list[GroupNodes]]:
    """Node requirements per group, and the nodes each group runs at peak."""
    groups = config.cluster.node_groups
    workers = [g for g in groups if not g.system and g.capacity_type == "SPOT"]
    on_demand = [g for g in groups if not g.system and g.capacity_type == "ON_DEMAND"]
    general = on_demand or workers or list(groups)
    placement: dict[str, list[WorkloadPods]] = {g.name: [] for g in groups}
    for workload in workloads:
        chosen = (workers or general) if workload.interruptible else general
        placement[chosen[0].name].append(workload)  # overflow is spread below
    nodes: dict[str, int] = {}
    for members in (general, workers):
        _fill(members, placement, nodes, prices, cluster)
    requirements: list[Requirement] = []
    planned: list[GroupNodes] = []
    for index, group in enumerate(groups):
        shape = _smallest(group, prices, cluster)
        needed = group.min_size if group.system else max(nodes.get(group.name, 0), group.min_size)
        hosted = ", ".join(sorted({w.name for w in placement[group.name]})) or "cluster add-ons"
        basis = (
            f"{hosted}; {shape.cpu:.2f} vCPU, {shape.memory_mib / 1024:.1f} GiB, "
            f"{shape.pods} pods allocatable per node"
        )
        if group.system:
            basis = f"cluster add-ons: the group's minSize ({group.min_size})"
        requirements.append(
            Requirement(
                "nodes",
                f"{group.name} ({group.instance_types[0]})",
                needed,
                group.max_size,
                f"eduscale:cluster.nodeGroups[{index}].maxSize",
                basis,
            )
        )
        planned.append(GroupNodes(group, needed, group.instance_types[0]))
        requirements.extend(_unplaceable(index, group, shape, placement[group.name]))
    return requirements, planned


def _unplaceable(
    index: int, group: NodeGroupConfig, shape: _Shape, pods: list[WorkloadPods]
) -> list[Requirement]:
    """A pod larger than a node's allocatable resources never schedules: say so."""
    key = f"eduscale:cluster.nodeGroups[{index}].instanceTypes"
    issues = []
    for pod in pods:
        if pod.memory_mib > shape.memory_mib:
            issues.append(
                Requirement(
                    "nodes",
                    f"{group.name}: MiB for one {pod.name} pod",
                    math.ceil(pod.memory_mib),
                    math.floor(shape.memory_mib),
                    key,
                    "a pod's memory request must fit one node's allocatable memory",
                    remedy=f"give {key} larger instance types, or lower the pod's request",
                )
            )
        if pod.cpu > shape.cpu:
            issues.append(
                Requirement(
                    "nodes",
                    f"{group.name}: millicores for one {pod.name} pod",
                    math.ceil(pod.cpu * 1000),
                    math.floor(shape.cpu * 1000),
                    key,
                    "a pod's CPU request must fit one node's allocatable CPU",
                    remedy=f"give {key} larger instance types, or lower the pod's request",
                )
            )
    return issues


def _fill(
    members: list[NodeGroupConfig],
    placement: dict[str, list[WorkloadPods]],
    nodes: dict[str, int],
    prices: PriceTable,
    cluster: ClusterModel,
) -> None:
    """Spread the pods placed on the first group of `members` over all of them, in order."""
    if not members or members[0].name in nodes:
        return
    remaining = [(w, w.pods) for w in placement[members[0].name]]
    for position, group in enumerate(members):
        shape = _smallest(group, prices, cluster)
        last = position == len(members) - 1
        needed = _nodes_for(remaining, shape, cluster.packing_efficiency)
        if last or needed <= group.max_size:
            nodes[group.name] = needed
            if group is not members[0]:
                placement[group.name] = [w for w, n in remaining if n]
            return
        # This group is full at maxSize: keep the same share of every workload here.
        share = group.max_size / needed
        kept = [(w, math.floor(n * share)) for w, n in remaining]
        nodes[group.name] = group.max_size
        remaining = [(w, n - k) for (w, n), (_, k) in zip(remaining, kept, strict=True)]
        if group is not members[0]:
            placement[group.name] = [w for w, k in kept if k]
