"""Print the rule table of policies/README.md from the rule objects themselves.

Usage: `uv run python scripts/policy_readme.py > /tmp/table.md`, then paste it between the
markers in policies/README.md. A test fails when the README and the rules disagree.
"""

from policies.catalogue import ALL_POLICIES


def table() -> str:
    """One Markdown row per rule: name, level, severity, why, scanner ids."""
    rows = [
        "| rule | level | severity | why | corresponds to |",
        "| --- | --- | --- | --- | --- |",
    ]
    for policy in ALL_POLICIES:
        level = policy.enforcement_level.value if policy.enforcement_level else "advisory"
        severity = policy.severity.value if policy.severity else ""
        scanners = ", ".join(policy.tags or [])
        why = policy.description.replace("|", "\\|")
        rows.append(f"| `{policy.name}` | {level} | {severity} | {why} | {scanners} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())  # noqa: T201
