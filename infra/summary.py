"""The human-readable report of an offline preview: the component tree and counts."""

from __future__ import annotations

from infra.graph import STACK_TYPE, Graph, RecordedResource

__all__ = ["render_summary"]


def render_summary(graph: Graph) -> str:
    """Components as a tree (with how many resources each holds), then counts by type."""
    lines = []
    roots = [r for r in graph if r.type == STACK_TYPE]
    for root in roots:
        lines.append(f"{root.type} {root.name} ({graph.stack})")
        lines.extend(_tree(graph, root, prefix=""))
    counts = graph.type_counts()
    lines.append("")
    lines.append(f"{sum(counts.values())} resources ({len(counts)} types):")
    width = max((len(t) for t in counts), default=0)
    for type_token, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"  {type_token:<{width}}  {count:>4}")
    return "\n".join(lines)


def _tree(graph: Graph, node: RecordedResource, prefix: str) -> list[str]:
    components = [c for c in graph.children(node.urn) if c.is_component]
    lines = []
    for index, component in enumerate(components):
        last = index == len(components) - 1
        owned = _resource_count(graph, component)
        lines.append(
            f"{prefix}{'└─ ' if last else '├─ '}{component.type} {component.name} "
            f"({owned} resources)"
        )
        lines.extend(_tree(graph, component, prefix + ("   " if last else "│  ")))
    return lines


def _resource_count(graph: Graph, component: RecordedResource) -> int:
    total = 0
    for child in graph.children(component.urn):
        total += _resource_count(graph, child) if child.is_component else 1
    return total
