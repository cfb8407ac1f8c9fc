"""The stack config reference in the docs says what the stack config model accepts."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from scripts import docs_reference
from scripts.docs_reference import REFERENCE, render
from stacks.config import StackConfig


def sections(model: type[BaseModel] = StackConfig) -> dict[str, type[BaseModel]]:
    """Every model reachable from the stack config, by name."""
    found = {model.__name__: model}
    for field in model.model_fields.values():
        for kind in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= sections(kind)
    return found


def test_the_committed_reference_is_generated_from_the_current_sections():
    assert REFERENCE.read_text() == render(), (
        "docs/reference/stack-config.md is stale: run python -m scripts.docs_reference"
    )


def test_the_check_mode_fails_on_a_stale_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    stale = tmp_path / "stack-config.md"
    stale.write_text(
        REFERENCE.read_text().replace(
            "| `network.azCount` | integer | `3`", "| `network.azCount` | integer | `2`"
        )
    )
    monkeypatch.setattr(docs_reference, "REFERENCE", stale)
    assert docs_reference.main(["--check"]) == 1
    assert docs_reference.main([]) == 0
    assert docs_reference.main(["--check"]) == 0


def test_every_key_of_every_section_is_documented_with_its_default():
    page = REFERENCE.read_text()
    models = sections()
    assert {"NetworkConfig", "ServicesConfig", "NodeGroupConfig", "WorkerSettings"} <= set(models)
    for model in models.values():
        for name, field in model.model_fields.items():
            where = f"{model.__name__}.{name}"
            assert field.description, f"{where} has no docstring: the reference needs one"
            if model is StackConfig:  # a section: its heading and its own docstring
                continue
            meaning = " ".join(field.description.split()).replace("|", "\\|")
            rows = [
                line
                for line in page.splitlines()
                if f"{field.alias}` |" in line and line.endswith(f"| {meaning} |")
            ]
            assert rows, f"{where} is missing from the reference"
            if isinstance(field.default, int | str) and not isinstance(field.default, bool):
                shown = (
                    f"`{field.default}`"
                    if isinstance(field.default, int)
                    else f'`"{field.default}"`'
                )
                assert any(f"| {shown} |" in row for row in rows), where


def test_a_nested_setting_lists_its_limits():
    page = REFERENCE.read_text()
    assert "| `network.azCount` | integer | `3` | 2 to 6 |" in page
    assert '| `kafka.brokerInstanceType` | string | `"kafka.m7g.large"` | matches `' in page
