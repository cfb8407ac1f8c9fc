"""The `--check` / write step every docs generator of scripts/ shares."""

import argparse
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_or_check"]


def write_or_check(
    argv: list[str] | None, description: str, target: Path, render: Callable[[], str], command: str
) -> int:
    """Write `render()` to `target`, or with `--check` return 1 when `target` is stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    options = parser.parse_args(argv)
    text = render()
    if options.check:
        current = target.read_text() if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run {command}")  # noqa: T201
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return 0
