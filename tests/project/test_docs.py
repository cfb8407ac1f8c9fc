"""The README's and the documentation's promises that a newcomer follows literally."""

import re
from urllib.parse import urlsplit

import yaml
from conftest import PROJECT_DIR
from service_harness import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL


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


def test_the_workflow_gives_the_test_command_the_postgres_and_redis_the_tests_use():
    workflow = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "preview.yml").read_text())
    (job,) = [
        job
        for job in workflow["jobs"].values()
        if any(quickstart_commands()[1] == step.get("run") for step in job["steps"])
    ]
    services = job["services"]
    postgres, redis = urlsplit(DEFAULT_POSTGRES_URL), urlsplit(DEFAULT_REDIS_URL)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["env"] == {
        "POSTGRES_HOST_AUTH_METHOD": "trust",  # the harness's URL has no password
        "POSTGRES_DB": postgres.path.lstrip("/"),
    }
    assert postgres.username == "postgres"
    assert services["postgres"]["ports"] == [f"{postgres.port}:5432"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["redis"]["ports"] == [f"{redis.port}:6379"]


def test_the_test_command_runs_linters_types_and_tests():
    check = (PROJECT_DIR / "scripts" / "check").read_text()
    steps = (
        "ruff check .",
        "ruff format --check .",
        "mypy",
        "lint-imports",
        "mkdocs build --strict",
    )
    for step in (*steps, "pytest"):
        assert step in check
    # --fast: the same checks, and only the tests that need no server (tests/lanes.py)
    assert 'pytest -m "not server"' in check


def test_the_readme_is_a_short_front_page_that_links_into_the_docs():
    readme = (PROJECT_DIR / "README.md").read_text()
    assert len(readme.splitlines()) < 300
    linked = set(re.findall(r"\]\(docs/([\w/-]+\.md)[)#]", readme))
    nav = (PROJECT_DIR / "mkdocs.yml").read_text()
    assert linked
    assert {page for page in linked if page not in nav} == set()
