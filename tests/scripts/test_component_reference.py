"""The component reference in the docs says what the published schema says."""

from pathlib import Path

import pytest

from infra.component_provider import provider, published_schema
from scripts import component_reference
from scripts.component_reference import REFERENCE, python_name, render

# One worker infers the package schema (seconds) for every test of these modules.
pytestmark = pytest.mark.xdist_group("component_schema")


def test_the_committed_reference_is_generated_from_the_current_schema():
    assert REFERENCE.read_text() == render(published_schema()), (
        "docs/reference/components.md is stale: run python -m scripts.component_reference"
    )


def test_the_check_mode_fails_on_a_stale_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    stale = tmp_path / "components.md"
    stale.write_text(REFERENCE.read_text().replace("Fewest pods.", "Fewer pods."))
    monkeypatch.setattr(component_reference, "REFERENCE", stale)
    assert component_reference.main(["--check"]) == 1
    assert component_reference.main([]) == 0
    assert component_reference.main(["--check"]) == 0


def test_every_python_name_in_the_reference_is_the_real_one():
    served = provider()
    mappings = [d.inputs_mapping for d in served._component_defs.values()]
    mappings += [d.outputs_mapping for d in served._component_defs.values()]
    mappings += [d.properties_mapping for d in served._type_defs.values()]
    pairs = {(schema, py) for mapping in mappings for schema, py in mapping.items()}
    assert len(pairs) > 100
    assert [(schema, py) for schema, py in pairs if python_name(schema) != py] == []


def test_each_component_lists_its_inputs_with_defaults_and_its_outputs():
    text = REFERENCE.read_text()
    worker = text[text.index("## Worker") : text.index("## VectorStore")]
    assert "| `lag_threshold` | `lagThreshold` | integer |  | yes | 10 |" in worker
    assert "| `min_replicas` | `minReplicas` | integer | yes | yes |  | Fewest pods. |" in worker
    assert "| `deployment_name` | `deploymentName` | string | Name of the Deployment. |" in worker
    assert "| `distance` | `distance` | [Distance](#distance) | yes |" in text
    assert "| `Cosine` | `Distance.COSINE` |" in text
