"""`eduscale preview` as a user runs it: exit status, files written, error messages."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_DIR

from infra.cli import main


def run_cli(*args: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's Pulumi files that a test may break."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    return tmp_path


def edit_dev_config(project: Path, key: str, value: object) -> None:
    path = project / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"][key] = value
    path.write_text(yaml.safe_dump(document))


@pytest.mark.server  # runs the CLI in a process
def test_preview_prod_writes_the_graph_and_the_diagram(tmp_path: Path):
    result = run_cli(
        "preview", "--stack", "prod", "--json", str(tmp_path / "out.json"),
        "--diagram", str(tmp_path / "out.mmd"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "eduscale:index:Network network" in result.stdout
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["stack"] == "prod"
    types = {r["type"] for r in document["resources"]}
    assert {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/flowLog:FlowLog"} <= types
    assert (tmp_path / "out.mmd").read_text().startswith("flowchart LR")


@pytest.mark.server  # runs the CLI in a process
def test_an_invalid_config_value_exits_non_zero_with_one_line_naming_the_key(project: Path):
    edit_dev_config(project, "eduscale:network", {"cidr": "10.20.0.0/16", "azCount": 9})
    result = run_cli("preview", "--stack", "dev", "--project-dir", str(project))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "eduscale:network.azCount" in line]
    assert lines == ["  eduscale:network.azCount = 9: Input should be less than or equal to 6"]
    assert result.stdout == ""


def test_an_unknown_stack_lists_the_known_ones(capsys: pytest.CaptureFixture[str]):
    assert main(["preview", "--stack", "staging", "--project-dir", str(PROJECT_DIR)]) == 2
    assert (
        "unknown stack 'staging': no Pulumi.staging.yaml (stacks: dev, prod)"
        in capsys.readouterr().err
    )


def test_a_missing_project_file_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["preview", "--stack", "dev", "--project-dir", str(tmp_path)]) == 2
    assert "Pulumi.yaml does not exist" in capsys.readouterr().err


def test_a_malformed_stack_file_is_explained(project: Path, capsys: pytest.CaptureFixture[str]):
    (project / "Pulumi.dev.yaml").write_text("config: [unclosed\n")
    assert main(["preview", "--stack", "dev", "--project-dir", str(project)]) == 2
    assert "Pulumi.dev.yaml is not valid YAML" in capsys.readouterr().err


def test_a_config_that_is_not_a_mapping_is_explained(
    project: Path, capsys: pytest.CaptureFixture[str]
):
    (project / "Pulumi.dev.yaml").write_text("config: [1, 2]\n")
    assert main(["preview", "--stack", "dev", "--project-dir", str(project)]) == 2
    assert "`config` must be a mapping" in capsys.readouterr().err


def test_an_unwritable_output_path_is_reported_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    target = tmp_path / "missing-dir" / "out.json"
    assert main(["preview", "--stack", "dev", "--json", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {target}: {target.parent} is not a directory" in err
    assert "Traceback" not in err


@pytest.mark.server  # runs the CLI in a process
def test_secure_values_in_a_stack_file_are_treated_as_secrets(project: Path, tmp_path: Path):
    edit_dev_config(project, "eduscale:openaiApiKey", {"secure": "v1:abc:ciphertext"})
    out = tmp_path / "graph.json"
    result = run_cli("preview", "-s", "dev", "--project-dir", str(project), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "ciphertext" not in out.read_text()


@pytest.mark.server  # runs the CLI in a process
def test_the_project_is_found_from_a_subdirectory():
    result = run_cli("preview", "--stack", "dev", cwd=PROJECT_DIR / "components")
    assert result.returncode == 0, result.stderr
    assert "Stack eduscale-dev (dev)" in result.stdout


@pytest.mark.parametrize("command", ["preview", "policy", "capacity"])
def test_a_deploy_command_without_the_infra_extra_says_how_to_install_it(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # As in the services' image: no Pulumi SDK (None in sys.modules makes the import fail),
    # and the modules that import one not loaded yet.
    monkeypatch.setitem(sys.modules, "pulumi_policy", None)
    monkeypatch.delitem(sys.modules, "infra.policy_check", raising=False)
    args = {
        "preview": ["--stack", "dev"],
        "policy": ["--stack", "dev"],
        "capacity": ["--users", "10"],
    }
    assert main([command, *args[command]]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"eduscale {command}: the deploy-time commands")
    assert "no module named 'pulumi_policy'" in line
    assert 'pip install "eduscale[infra]"' in line


@pytest.mark.parametrize("missing", ["pulumi", "pulumi_aws.ec2", "yaml", "pydantic"])
def test_every_module_of_the_infra_extra_gets_the_hint(
    missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    def preview(_: object) -> int:
        raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)

    monkeypatch.setattr("infra.cli._preview", preview)
    assert main(["preview", "--stack", "dev"]) == 2
    assert 'pip install "eduscale[infra]"' in capsys.readouterr().err


def test_another_missing_module_is_a_failure_not_the_infra_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    def preview(_: object) -> int:
        raise ModuleNotFoundError("No module named 'graphviz'", name="graphviz")

    monkeypatch.setattr("infra.cli._preview", preview)
    assert main(["preview", "--stack", "dev"]) == 1
    err = capsys.readouterr().err
    assert err == "eduscale: the program failed: ModuleNotFoundError: No module named 'graphviz'\n"


def test_a_service_command_missing_pulumi_is_a_failure_not_the_infra_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # The services never need Pulumi: if one imported it, the hint would hide the bug.
    def migrate(_: object) -> int:
        raise ModuleNotFoundError("No module named 'pulumi'", name="pulumi")

    monkeypatch.setattr("infra.cli.migrate", migrate)
    assert main(["migrate", "--database-url", "postgresql://nowhere/x"]) == 1
    assert "infra extra" not in capsys.readouterr().err
