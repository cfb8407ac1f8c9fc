"""The README's promises that a newcomer follows literally."""

import re

from conftest import PROJECT_DIR


def quickstart_commands() -> list[str]:
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_the_quickstart_has_exactly_two_one_line_commands():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    assert commands[0].endswith("eduscale preview --stack dev")


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (PROJECT_DIR / ".ci" / "run").read_text().splitlines()
    assert quickstart_commands()[1] in ci_lines


def test_the_test_command_runs_linters_types_and_tests():
    check = (PROJECT_DIR / "scripts" / "check").read_text()
    for step in ("ruff check .", "ruff format --check .", "mypy", "pytest"):
        assert step in check


def test_the_readme_documents_every_service_setting_and_no_other():
    settings_source = (PROJECT_DIR / "services" / "common" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    readme = (PROJECT_DIR / "README.md").read_text()
    table = readme.split("| variable | default | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert len(read) > 10  # the pattern still finds the reads
    assert read == documented
