"""Pods per service and worker at peak, from the measured per-core figures.

The model: a benchmark figure is requests (or jobs) per second of ONE server process
pinned to one core. A pod with a CPU request of R cores, scaled by an HPA that keeps CPU
at T % of the request, serves `figure x R x T/100` per second at the target. A request
that can hit or miss the cache costs `hit/cached + miss/uncached` core-seconds, so

    pods = ceil(sum(rate x cost) x headroom / (R x T/100))

`headroom` covers the surge while the HPA and the cluster autoscaler catch up.

Workers differ. The generation worker spends its time waiting on the LLM, so CPU says
little: it is sized by concurrency (Little's law: jobs in flight = rate x latency, where
the semantic cache's measured share of jobs takes the short path), divided by the jobs
one pod keeps in flight (the stack's `workerConcurrency`), with the zero-latency figure
as a CPU floor. The indexer likewise, by indexing time per PDF. Kong is not benchmarked
here: its rate per core comes from the model (Kong's results).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.capacity.bench import BenchFigures
from infra.capacity.requirement import Requirement, ceil_div
from infra.capacity.traffic import Traffic
from stacks.compute_sections import Scaling
from stacks.config import StackConfig

__all__ = [
    "AVOIDED_FIGURE",
    "WorkloadPods",
    "cache_avoided_share",
    "cpu_cores",
    "memory_mib",
    "size_pods",
]

AVOIDED_FIGURE = "semantic_cache_chat_calls_avoided"
"""The benchmark figure (%) of generation jobs the semantic cache answers without the LLM."""

_SERVICE_KEYS = {"auth": "auth", "course": "course", "ai-orchestrator": "aiOrchestrator"}


@dataclass(frozen=True)
class WorkloadPods:
    """How many pods of one workload run at peak, and what each asks of a node."""

    name: str
    pods: int
    """Pods at peak: the plan's need, or the HPA's minimum if that is higher."""
    cpu: float
    memory_mib: float
    interruptible: bool
    """Workers whose jobs are redelivered: they may run on spot capacity."""


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores: `250m` -> 0.25, `2` -> 2.0."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_mib(quantity: str) -> float:
    """A Kubernetes memory quantity (`Mi` or `Gi`, as the config allows) in MiB."""
    if quantity.endswith("Gi"):
        return float(quantity[:-2]) * 1024
    return float(quantity.removesuffix("Mi"))


def cache_avoided_share(figures: BenchFigures) -> float:
    """The measured share (0-1) of generation jobs answered from the semantic cache."""
    return min(figures.value(AVOIDED_FIGURE) / 100, 1.0)


def _per_pod(scaling: Scaling) -> float:
    """Cores of work one pod does at the HPA's CPU target."""
    return cpu_cores(scaling.cpu_request) * scaling.cpu_target_percent / 100


def size_pods(
    traffic: Traffic, figures: BenchFigures, config: StackConfig
) -> tuple[list[Requirement], list[WorkloadPods]]:
    """The pod requirements of every workload, and the pods the nodes must hold."""
    model = traffic.model
    speed = model.core_speed
    requirements: list[Requirement] = []
    workloads: list[WorkloadPods] = []

    def add(
        name: str, key: str, scaling: Scaling, needed: int, basis: str, *, spot: bool = False
    ) -> None:
        requirements.append(
            Requirement("pods", name, needed, scaling.max_replicas, f"eduscale:{key}", basis)
        )
        workloads.append(
            WorkloadPods(
                name=name,
                pods=max(needed, scaling.min_replicas),
                cpu=cpu_cores(scaling.cpu_request),
                memory_mib=memory_mib(scaling.memory_request),
                interruptible=spot,
            )
        )

    relayed = traffic.enqueued("generation") + traffic.enqueued("document")
    for service, key in _SERVICE_KEYS.items():
        scaling: Scaling = getattr(config.services, _snake(key))
        cores = 0.0
        rate = 0.0
        for _, endpoint, endpoint_rate in traffic.endpoints():
            if endpoint.service != service:
                continue
            rate += endpoint_rate
            hit = endpoint.cache_hit_ratio
            cost = (1 - hit) / figures.value(endpoint.uncached_figure)
            if endpoint.cached_figure is not None:
                cost += hit / figures.value(endpoint.cached_figure)
            cores += endpoint_rate * cost / speed
        if service == "ai-orchestrator":
            # The outbox relay runs inside every orchestrator pod.
            cores += relayed / figures.value("outbox_relay") / speed
        needed = ceil_div(cores * model.headroom, _per_pod(scaling))
        add(
            service,
            f"services.{key}.maxReplicas",
            scaling,
            needed,
            f"{rate:,.0f} req/s = {cores:,.1f} cores x {model.headroom:g} headroom "
            f"/ {_per_pod(scaling):g} cores per pod ({scaling.cpu_request} at "
            f"{scaling.cpu_target_percent} %)",
        )

    gateway = config.gateway
    per_pod = model.gateway.requests_per_core * _per_pod(gateway)
    add(
        "kong gateway",
        "gateway.maxReplicas",
        gateway,
        ceil_div(traffic.total * model.headroom, per_pod),
        f"{traffic.total:,.0f} req/s x {model.headroom:g} / {per_pod:,.0f} req/s per pod "
        f"({model.gateway.requests_per_core:,.0f} per core, model)",
    )

    generation = model.generation
    jobs = traffic.enqueued("generation")
    avoided = cache_avoided_share(figures)
    busy = (1 - avoided) * generation.llm_latency_seconds + avoided * generation.cache_hit_seconds
    in_flight = jobs * busy
    worker = config.services.generation_worker
    by_latency = ceil_div(in_flight * model.headroom, worker.worker_concurrency)
    by_cpu = ceil_div(
        jobs / figures.value("generation_jobs") / speed * model.headroom, _per_pod(worker)
    )
    add(
        "generation worker",
        "services.generationWorker.maxReplicas",
        worker,
        max(by_latency, by_cpu),
        f"{jobs:,.1f} jobs/s x {busy:.2f} s ({avoided:.1%} from the semantic cache, "
        f"measured) = {in_flight:,.0f} in flight x {model.headroom:g} / "
        f"{worker.worker_concurrency} per pod (workerConcurrency; CPU floor {by_cpu})",
        spot=True,
    )

    documents = model.documents
    uploads = traffic.enqueued("document")
    indexing = uploads * documents.indexing_seconds
    indexer = config.services.indexer_worker
    add(
        "indexer worker",
        "services.indexerWorker.maxReplicas",
        indexer,
        ceil_div(indexing * model.headroom, indexer.worker_concurrency),
        f"{uploads:,.2f} PDFs/s x {documents.indexing_seconds:g} s = {indexing:,.1f} in "
        f"flight x {model.headroom:g} / {indexer.worker_concurrency} per pod "
        "(workerConcurrency)",
        spot=True,
    )
    return requirements, workloads


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
