import re

import pytest
from conftest import run_program

from components.conventions import physical_name, standard_tags


def names(*parts: str, max_length: int = 63) -> str:
    seen: list[str] = []

    def body() -> None:
        seen.append(physical_name(*parts, max_length=max_length))

    run_program(body, project="Edu_Scale", stack="prod")
    return seen[0]


def test_names_join_project_stack_component_and_parts_in_a_safe_alphabet():
    assert names("database", "writer") == "edu-scale-prod-database-writer"


def test_long_names_are_shortened_with_a_stable_distinguishing_suffix():
    first = names("component", "a" * 80, max_length=40)
    second = names("component", "a" * 79 + "b", max_length=40)
    assert len(first) == 40
    assert len(second) == 40
    assert first != second
    assert first == names("component", "a" * 80, max_length=40)
    assert re.fullmatch(r"[a-z][a-z0-9-]*", first)


def test_a_too_small_limit_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        names("c", max_length=8)


def test_standard_tags_name_the_owner_of_a_resource():
    seen: list[dict[str, str]] = []
    run_program(lambda: seen.append(standard_tags("cache", "n")), project="p", stack="s")
    assert seen == [
        {"project": "p", "stack": "s", "component": "cache", "managed-by": "pulumi", "Name": "n"}
    ]
