"""Generate the tables of policies/README.md from the rule objects and the waivers.

Usage: `uv run python -m scripts.policy_readme` rewrites the tables between the markers in
policies/README.md (`--print` only prints the rule table). A test fails when the README and
the rules or the waivers disagree.
"""

import re
import sys
from pathlib import Path

from policies.catalogue import ALL_POLICIES
from policies.waivers import ACCEPTED_FINDINGS, ENV_SECRET_IMAGES, WAIVERS

README = Path(__file__).resolve().parent.parent / "policies" / "README.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


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
        why = _cell(policy.description)
        rows.append(f"| `{policy.name}` | {level} | {severity} | {why} | {scanners} |")
    return "\n".join(rows)


def waivers_table() -> str:
    """Waived rules of the pack, then accepted scanner findings, one row each."""
    rows = ["| waived | where | why |", "| --- | --- | --- |"]
    rows += [f"| rule `{name}` | every resource | {_cell(why)} |" for name, why in WAIVERS.items()]
    rows += [
        f"| rule `k8s-secrets-as-files` | image `{image}` | {_cell(why)} |"
        for image, why in ENV_SECRET_IMAGES.items()
    ]
    rows += [
        f"| {', '.join(finding.scanners)} | {_cell(finding.resources)} | {_cell(finding.reason)} |"
        for finding in ACCEPTED_FINDINGS
    ]
    return "\n".join(rows)


def _replace(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker} -->\n)(?:.*?\n)?(<!-- /{marker} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{README} has no <!-- {marker} --> ... <!-- /{marker} --> markers")
    return pattern.sub(lambda m: f"{m.group(1)}{body}\n{m.group(2)}", text)


def regenerate(readme: Path = README) -> None:
    """Rewrite the generated tables of `readme` in place."""
    text = _replace(readme.read_text(), "rules", table())
    readme.write_text(_replace(text, "waivers", waivers_table()))


if __name__ == "__main__":
    if "--print" in sys.argv[1:]:
        print(table())  # noqa: T201
    else:
        regenerate()
