"""The human-readable report of `eduscale policy`: violations grouped by severity."""

from collections.abc import Sequence

from infra.policy_check import Violation

__all__ = ["render_report"]

_ORDER = ("critical", "high", "medium", "low")


def render_report(stack: str, violations: Sequence[Violation], *, rules: int, waived: int) -> str:
    """Violations by severity, each with its rule, resource, message and fix, then a summary."""
    lines: list[str] = []
    for severity in sorted({v.severity for v in violations}, key=_rank):
        lines.append(severity.upper())
        for violation in sorted(
            (v for v in violations if v.severity == severity),
            key=lambda v: (not v.mandatory, v.rule, v.urn or ""),
        ):
            level = "mandatory" if violation.mandatory else "advisory"
            lines.append(f"  [{level}] {violation.rule}  {violation.urn or '(stack)'}")
            lines.append(f"      {violation.message}")
            if violation.fix:
                lines.append(f"      fix: {violation.fix}")
    mandatory = sum(v.mandatory for v in violations)
    lines.append(
        f"{stack}: {rules} rules ({waived} waived), {mandatory} mandatory and "
        f"{len(violations) - mandatory} advisory violation(s)"
    )
    return "\n".join(lines)


def _rank(severity: str) -> int:
    return _ORDER.index(severity) if severity in _ORDER else len(_ORDER)
