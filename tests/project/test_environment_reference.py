"""The environment reference in the docs says what the settings classes say."""

from pathlib import Path

import pytest
from conftest import PROJECT_DIR

from scripts import environment_reference
from scripts.environment_reference import REFERENCE, WORKLOADS, render


def test_the_committed_reference_is_generated_from_the_current_classes():
    assert REFERENCE.read_text() == render(), (
        "docs/reference/environment.md is stale: run python -m scripts.environment_reference"
    )


def test_the_check_mode_fails_on_a_stale_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    stale = tmp_path / "environment.md"
    stale.write_text(REFERENCE.read_text().replace("Lifetime of an access token.", "Lifetime."))
    monkeypatch.setattr(environment_reference, "REFERENCE", stale)
    assert environment_reference.main(["--check"]) == 1
    assert environment_reference.main([]) == 0
    assert environment_reference.main(["--check"]) == 0


def test_every_deployable_is_documented_with_its_own_variables():
    text = REFERENCE.read_text()
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == list(WORKLOADS)
    sink = text[text.index("## analytics-sink") : text.index("## gateway")]
    assert "`HEALTH_PORT` | integer | 8081 | a whole number from 0 to 65535 |" in sink
    assert "`DATABASE_URL`" not in sink  # the sink never touches PostgreSQL
    auth = text[text.index("## auth") : text.index("## course")]
    assert "| `JWT_SECRET` | text, secret | (required) |" in auth


def test_the_docs_link_the_reference_instead_of_copying_it():
    pages = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").rglob("*.md"))]
    copies = [page.name for page in pages if "| variable | default | meaning |" in page.read_text()]
    assert copies == []
    assert "(docs/reference/environment.md)" in pages[0].read_text()
    assert "(reference/environment.md)" in (PROJECT_DIR / "docs" / "configuration.md").read_text()
