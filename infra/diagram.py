"""The architecture diagram (Mermaid), drawn from the recorded graph.

Nodes are the platform's tiers: the top-level components, with the Database split into
its writer and its replicas (the design routes reads and writes differently), plus two
external parties: the client in front of the CDN, and the OpenAI API for every workload
configured with `OPENAI_BASE_URL`. An edge means traffic: A --> B when a resource of A was
registered with a dependency on a resource of B (an endpoint, a host name, a target), so
the picture comes from the engine's own dependency lists and cannot drift from what is
deployed. Two edges are reversed, where data flows against the dependency: a worker
depends on the bus but work flows from the bus to the worker, and a replica depends on
the writer but changes flow from the writer to the replica. Shared plumbing (the VPC, the
cluster, namespaces, IAM roles, generated passwords) is left out: it would connect
everything to everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.type_tokens import (
    ANALYTICS,
    API_GATEWAY,
    CACHE,
    CDN,
    DATABASE,
    DOCUMENT_STORE,
    EVENT_BUS,
    LOAD_BALANCER,
    MICROSERVICE,
    VECTOR_STORE,
    WORKER,
)
from infra.graph import STACK_TYPE, Graph, RecordedResource

__all__ = ["architecture_edges", "render_mermaid"]

_TIERS = {
    CDN.token: "Cloudflare CDN",
    LOAD_BALANCER.token: "AWS ALB",
    API_GATEWAY.token: "Kong gateway",
    MICROSERVICE.token: "",
    WORKER.token: "",
    CACHE.token: "ElastiCache Redis",
    EVENT_BUS.token: "MSK Kafka",
    VECTOR_STORE.token: "Qdrant",
    ANALYTICS.token: "ClickHouse",
    DOCUMENT_STORE.token: "S3 documents",
    DATABASE.token: "",
}
_RDS = "aws:rds/instance:Instance"
_READER_RECORD = "aws:route53/record:Record"
CLIENT = "client"
OPENAI = "openai"


@dataclass(frozen=True)
class _Node:
    id: str
    label: str


def _node_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name)


def _top_level(graph: Graph, resource: RecordedResource) -> RecordedResource | None:
    current = resource
    while current.parent is not None:
        parent = graph.by_urn(current.parent)
        if parent.type == STACK_TYPE:
            return current
        current = parent
    return None


def _nodes(graph: Graph) -> dict[str, _Node]:
    """URN of each resource that stands for a node -> the node."""
    nodes: dict[str, _Node] = {}
    for resource in graph:
        top = _top_level(graph, resource)
        if top is None or top.type not in _TIERS:
            continue
        if top.type == DATABASE.token:
            if resource.type == _RDS and "replicateSourceDb" not in resource.inputs:
                nodes[resource.urn] = _Node(f"{_node_id(top.name)}_writer", "Postgres writer")
            elif resource.type in {_RDS, _READER_RECORD}:
                nodes[resource.urn] = _Node(f"{_node_id(top.name)}_replicas", "Postgres replicas")
            continue
        nodes[resource.urn] = _Node(_node_id(top.name), _TIERS[top.type] or top.name)
    return nodes


def _flows_backwards(
    graph: Graph, resource: RecordedResource, dependency: RecordedResource
) -> bool:
    """Where data flows against the dependency: bus to consumer, writer to replica."""
    top = _top_level(graph, resource)
    if top is not None and top.type == WORKER.token:
        return dependency.type.startswith("aws:msk/")
    return resource.type == _RDS and dependency.type == _RDS


def architecture_edges(graph: Graph) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The node labels by id, and the (from, to) traffic edges between node ids."""
    nodes = _nodes(graph)
    labels = {node.id: node.label for node in nodes.values()}
    edges: set[tuple[str, str]] = set()
    for resource in graph:
        source = nodes.get(resource.urn)
        if source is None:
            continue
        for dependency in resource.dependencies:
            target = nodes.get(dependency)
            if target is None or target.id == source.id:
                continue
            backwards = _flows_backwards(graph, resource, graph.by_urn(dependency))
            edges.add((target.id, source.id) if backwards else (source.id, target.id))
        if resource.type == "kubernetes:core/v1:ConfigMap" and "OPENAI_BASE_URL" in (
            resource.inputs.get("data") or {}
        ):
            labels[OPENAI] = "OpenAI API"
            edges.add((source.id, OPENAI))
    for node in nodes.values():
        if labels.get(node.id) == _TIERS[CDN.token]:
            labels[CLIENT] = "Client"
            edges.add((CLIENT, node.id))
    return labels, edges


def render_mermaid(graph: Graph) -> str:
    """`flowchart LR` text of the architecture."""
    labels, edges = architecture_edges(graph)
    lines = ["flowchart LR"]
    for node_id, label in sorted(labels.items()):
        shape = f"([{label}])" if node_id in {CLIENT, OPENAI} else f'["{label}"]'
        lines.append(f"    {node_id}{shape}")
    lines.extend(f"    {source} --> {target}" for source, target in sorted(edges))
    return "\n".join(lines) + "\n"
