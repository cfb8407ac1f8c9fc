"""A Mermaid flowchart of the platform, drawn from the recorded graph.

Nodes are the top-level components; an edge A --> B means some resource inside A was
registered with a dependency on a resource inside B (a subnet id, a security group, an
endpoint passed from one tier to the next). Because edges come from the engine's own
dependency lists, the picture cannot drift from what is deployed.
"""

from __future__ import annotations

import re

from infra.graph import STACK_TYPE, Graph, RecordedResource

__all__ = ["component_edges", "render_mermaid"]


def _top_level(graph: Graph, resource: RecordedResource) -> RecordedResource | None:
    """The ancestor of `resource` that sits directly under the stack (itself if it does)."""
    current = resource
    while current.parent is not None:
        parent = graph.by_urn(current.parent)
        if parent.type == STACK_TYPE:
            return current
        current = parent
    return None


def component_edges(graph: Graph) -> set[tuple[str, str]]:
    """(dependent, dependency) URN pairs between top-level components."""
    tops = {r.urn: _top_level(graph, r) for r in graph if r.type != STACK_TYPE}
    edges: set[tuple[str, str]] = set()
    for resource in graph:
        source = tops.get(resource.urn)
        for dependency in resource.dependencies:
            target = tops.get(dependency)
            if source is not None and target is not None and source.urn != target.urn:
                edges.add((source.urn, target.urn))
    return edges


def _node_id(resource: RecordedResource) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", resource.name)


def render_mermaid(graph: Graph) -> str:
    """`flowchart LR` text with one node per top-level component or resource."""
    tops = [r for r in graph if r.parent is not None and graph.by_urn(r.parent).type == STACK_TYPE]
    lines = ["flowchart LR"]
    for node in tops:
        kind = node.type.rsplit(":", 1)[-1]
        lines.append(f'    {_node_id(node)}["{node.name}<br/><small>{kind}</small>"]')
    for source, target in sorted(component_edges(graph)):
        lines.append(f"    {_node_id(graph.by_urn(source))} --> {_node_id(graph.by_urn(target))}")
    return "\n".join(lines) + "\n"
