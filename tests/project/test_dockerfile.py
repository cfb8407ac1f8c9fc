"""The service image's Dockerfile and .dockerignore, checked statically.

No Docker daemon is needed: a small parser turns the Dockerfile into stages of
instructions, and each `check_*` function asserts one thing a reviewer would look for.
The tests run every check on the real files, then on deliberately broken copies, so a
check that could never fail is itself a failing test.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from conftest import PROJECT_DIR

from components.workload import RUN_AS
from infra.cli import _parser
from infra.graph import Graph
from infra.service_commands import HTTP_SERVICES
from stacks.service_env import RDS_CA_BUNDLE
from stacks.workloads import HTTP_PORT

DOCKERFILE = PROJECT_DIR / "Dockerfile"
DOCKERIGNORE = PROJECT_DIR / ".dockerignore"
PYPROJECT = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))

BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|cc|make|cmake|build-essential|python3?-dev|libpq-dev|"
    r"librdkafka-dev|libffi-dev|libssl-dev|pkg-config|rustc|cargo)\b"
)
PACKAGE_INSTALL = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf)\b[^;&|]*\binstall\b")
UV = re.compile(r"(?<![\w.-])uvx?(?![\w.-])")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


# --- a tiny Dockerfile parser ------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    @property
    def flags(self) -> dict[str, str]:
        """`--from=builder --chown=a:b` -> {"from": "builder", "chown": "a:b"} (leading only)."""
        found: dict[str, str] = {}
        for token in self.args.split():
            if not token.startswith("--"):
                break
            name, _, value = token[2:].partition("=")
            found.setdefault(name, value)
        return found

    @property
    def mounts(self) -> list[dict[str, str]]:
        """Every leading `--mount=type=bind,source=a,target=b` as {"type": "bind", ...}."""
        found: list[dict[str, str]] = []
        for token in self.args.split():
            if not token.startswith("--"):
                break
            if token.startswith("--mount="):
                options = (option.partition("=") for option in token[8:].split(","))
                found.append({key: value for key, _, value in options})
        return found

    @property
    def body(self) -> str:
        """The arguments after any leading `--flag`s: the command of a RUN, say."""
        tokens = self.args.split(" ")
        while tokens and (tokens[0].startswith("--") or not tokens[0]):
            tokens.pop(0)
        return " ".join(tokens)

    def exec_form(self) -> list[str]:
        assert self.args.startswith("["), f"{self.keyword} must use the exec (JSON) form"
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} must be a JSON list"
        assert all(isinstance(item, str) for item in value)
        return value

    def pairs(self) -> dict[str, str]:
        """The `KEY=value ...` arguments of ENV, LABEL or ARG (or the legacy `ENV KEY value`)."""
        tokens = shlex.split(self.args)
        if tokens and "=" not in tokens[0]:
            return {tokens[0]: " ".join(tokens[1:])}
        pairs: dict[str, str] = {}
        for token in tokens:
            key, _, value = token.partition("=")
            pairs[key] = value
        return pairs


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.image!r} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(instruction.pairs())
        return values

    def runs(self) -> list[str]:
        return [i.body for i in self.all("RUN")]


@dataclass
class Dockerfile:
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def logical_lines(text: str) -> list[str]:
    """Instructions one per line: comments and blank lines dropped, continuations joined."""
    lines: list[str] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # also inside a continuation, as Docker does
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        lines.append(" ".join([*pending, line]))
        pending = []
    if pending:
        lines.append(" ".join(pending))
    return lines


def parse(text: str) -> Dockerfile:
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            words = instruction.body.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        else:
            assert stages, f"{instruction.keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    return Dockerfile(stages)


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """`registry/repo:tag@sha256:...` -> (repository, tag, digest)."""
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = name.rpartition(":")
        return repository, tag, digest or None
    return name, None, digest or None


def is_python_image(repository: str) -> bool:
    return repository in {"python", "library/python", "docker.io/library/python"}


def builder_of(dockerfile: Dockerfile) -> Stage:
    """The stage whose environment the final stage copies."""
    sources = {i.flags["from"] for i in dockerfile.final.all("COPY") if "from" in i.flags}
    stages = [dockerfile.stage(source) for source in sorted(sources)]
    builders = [s for s in stages if s is not None and any("uv sync" in r for r in s.runs())]
    assert len(builders) == 1, "the final stage must copy from exactly one uv builder stage"
    return builders[0]


def venv_of(builder: Stage) -> str:
    env = builder.env()
    if "UV_PROJECT_ENVIRONMENT" in env:
        return env["UV_PROJECT_ENVIRONMENT"].rstrip("/")
    return builder.last("WORKDIR").args.rstrip("/") + "/.venv"


# --- the checks --------------------------------------------------------------------------


def check_multi_stage(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "build in one stage and run in another"
    builder = builder_of(dockerfile)
    assert builder is not dockerfile.final


def check_final_stage_is_slim_python_311(dockerfile: Dockerfile) -> None:
    repository, tag, _ = split_reference(dockerfile.final.image)
    assert is_python_image(repository), f"final stage is {dockerfile.final.image!r}"
    assert tag is not None
    assert "slim" in tag.split("-"), f"final stage must be a slim image, not {tag!r}"
    assert tag.startswith("3.11"), f"final stage must run Python 3.11, not {tag!r}"


def check_builder_and_runtime_share_the_base_image(dockerfile: Dockerfile) -> None:
    # The venv's interpreter link and compiled bytecode are only valid for the same image.
    builder = builder_of(dockerfile)
    assert builder.image == dockerfile.final.image, (
        f"builder {builder.image!r} and runtime {dockerfile.final.image!r} differ"
    )


def check_every_image_is_pinned(dockerfile: Dockerfile) -> None:
    stage_names = {s.name for s in dockerfile.stages if s.name}
    references = [s.image for s in dockerfile.stages]
    for stage in dockerfile.stages:
        references += [i.flags["from"] for i in stage.all("COPY") if "from" in i.flags]
    for reference in references:
        if reference in stage_names or reference == "scratch":
            continue
        _, tag, digest = split_reference(reference)
        # The tag says which release it is; the digest makes it immutable.
        assert tag, f"{reference!r} is not pinned to a version tag"
        assert tag != "latest", f"{reference!r} is pinned to latest"
        assert re.search(r"\d", tag), f"{reference!r} has no version in its tag"
        assert digest, f"{reference!r} is not pinned by digest (@sha256:...)"
        assert DIGEST.fullmatch(digest), f"{reference!r} has a malformed digest"


def check_final_stage_runs_as_the_pods_uid(dockerfile: Dockerfile) -> None:
    user = dockerfile.final.last("USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"USER {user!r} must be numeric so runAsNonRoot can be verified"
    assert int(uid) != 0, "the image must not run as root"
    assert int(uid) == RUN_AS, f"USER {uid} differs from the pods' runAsUser {RUN_AS}"
    assert gid.isdigit(), f"USER {user!r} must name a numeric group too"
    assert int(gid) == RUN_AS, f"group {gid} differs from the pods' runAsGroup {RUN_AS}"


def check_final_stage_has_no_uv_and_no_build_tools(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    uv_stages = {
        s.name
        for s in dockerfile.stages
        if s.name and "astral-sh/uv" in split_reference(s.image)[0]
    }
    for copy in final.all("COPY") + final.all("ADD"):
        source = copy.flags.get("from", "")
        assert source not in uv_stages, f"the final stage copies uv: {copy.args}"
        assert "astral-sh/uv" not in source, f"the final stage copies uv: {copy.args}"
        assert not UV.search(copy.body), f"the final stage copies uv: {copy.args}"
    for run in final.all("RUN"):
        # The whole instruction: `--mount=from=<uv image>` would bring uv in too.
        assert not UV.search(run.args), f"the final stage runs uv: {run.args}"
        if PACKAGE_INSTALL.search(run.body):
            assert not BUILD_TOOLS.search(run.body), f"build tools in the final stage: {run.body}"


def check_final_stage_copies_only_the_venv(dockerfile: Dockerfile) -> None:
    builder = builder_of(dockerfile)
    venv = venv_of(builder)
    copies = [i for i in dockerfile.final.all("COPY") if i.flags.get("from") == builder.name]
    for copy in copies:
        source, destination = copy.body.split()
        assert source.rstrip("/") == venv, f"the final stage copies {source}, not just {venv}"
        assert destination.rstrip("/") == venv, "the venv must keep its path (script shebangs)"
    for add in dockerfile.final.all("ADD"):
        assert add.body.split() == [RDS_CA_URL, RDS_CA_BUNDLE], f"the final stage adds {add.body}"
    assert not [i for i in dockerfile.final.all("COPY") if "from" not in i.flags], (
        "the final stage copies from the build context; only the venv belongs there"
    )
    path = dockerfile.final.env().get("PATH", "")
    assert path.startswith(f"{venv}/bin:"), "the venv's bin must come first on PATH"


def uv_syncs(stage: Stage) -> list[list[str]]:
    return [shlex.split(run) for run in stage.runs() if "uv sync" in run]


# Flags that would bring a dependency group or an extra (the infra extra: Pulumi) into the
# image; `--group=dev` is caught by its prefix.
SELECTS_MORE = {
    "--dev",
    "--all-groups",
    "--group",
    "--only-dev",
    "--only-group",
    "--extra",
    "--all-extras",
}
# Flags that say how to install the selection, not what is selected.
NOT_SELECTION = {"--no-install-project", "--no-build", "--reinstall-package"}


def check_uv_sync_installs_only_the_runtime(dockerfile: Dockerfile) -> None:
    syncs = uv_syncs(builder_of(dockerfile))
    assert len(syncs) >= 2, "sync dependencies and the project in separate layers"
    for sync in syncs:
        assert "--locked" in sync, f"{' '.join(sync)}: install exactly uv.lock, or fail"
        assert "--no-default-groups" in sync, f"{' '.join(sync)}: the dev group must stay out"
        more = [token for token in sync if token.partition("=")[0] in SELECTS_MORE]
        assert not more, f"{' '.join(sync)}: {more} would install more than the runtime"
    dependencies, project = syncs[0], syncs[-1]
    assert "--no-install-project" in dependencies, "the first sync must install dependencies only"
    assert "--no-build" in dependencies, "the dependencies must come as wheels, never built"
    assert "--no-install-project" not in project, "the last sync must install the project"
    assert "--no-editable" in project, "an editable install would point back at the source tree"
    # uv caches a local project's wheel by its pyproject.toml's mtime: without this, the
    # cache mount hands a rebuild after a code change the previous build's wheel.
    name = PYPROJECT["project"]["name"]
    assert f"--reinstall-package={name}" in project, f"the last sync must rebuild {name}"
    selections = {
        frozenset(t for t in sync if t.partition("=")[0] not in NOT_SELECTION) for sync in syncs
    }
    assert len(selections) == 1, f"the syncs select different packages: {syncs}"


def check_uv_is_installed_from_hash_pinned_wheels(dockerfile: Dockerfile) -> None:
    # No digest of the uv image could be verified, so the builder installs uv from PyPI
    # with pip, each wheel pinned by its sha256 (docker/uv-requirements.txt).
    builder = builder_of(dockerfile)
    runs = builder.all("RUN")
    installs = [i for i in runs if re.search(r"\bpip install\b", i.body)]
    assert installs, "the builder must install uv, pinned by hash, before it syncs"
    first_sync = next(n for n, run in enumerate(runs) if "uv sync" in run.body)
    assert runs.index(installs[0]) < first_sync, "uv must be installed before the first sync"
    for install in installs:
        tokens = shlex.split(install.body)
        assert "--require-hashes" in tokens, f"{install.body}: pin every download by hash"
        assert "--only-binary=:all:" in tokens, f"{install.body}: the hashes are the wheels'"
        files = [tokens[n + 1] for n, token in enumerate(tokens[:-1]) if token == "-r"]
        assert files, f"{install.body}: install from a requirements file with the hashes"
        sources = {m.get("target"): m.get("source") for m in install.mounts}
        for file in files:
            source = sources.get(file)
            assert source, f"{file} must be bind-mounted from the build context"
            pinned = hash_pinned_requirements((PROJECT_DIR / source).read_text(encoding="utf-8"))
            assert "uv" in pinned, f"{source} does not pin uv"


def hash_pinned_requirements(text: str) -> dict[str, list[str]]:
    """`name==version --hash=sha256:...` lines -> {name: hashes}, or an AssertionError."""
    pinned: dict[str, list[str]] = {}
    for line in logical_lines(text):
        requirement, *options = line.split()
        name, operator, version = requirement.partition("==")
        assert operator, f"{requirement!r} is not pinned to one version (name==version)"
        assert re.fullmatch(r"\d+(\.\d+)*", version), f"{requirement!r}: not a release"
        assert all(option.startswith("--hash=") for option in options), f"{line}: only hashes"
        hashes = [option.removeprefix("--hash=") for option in options]
        assert all(DIGEST.fullmatch(h) for h in hashes), f"{line}: malformed hash"
        # One wheel per architecture the image is built for: linux/amd64 and linux/arm64.
        assert len(set(hashes)) >= 2, f"{name}: pin the x86_64 and the aarch64 wheels"
        pinned[name.lower()] = hashes
    return pinned


def context_files(dockerfile: Dockerfile) -> list[str]:
    """What the Dockerfile bind-mounts from the build context (no `from=`)."""
    return [
        mount["source"]
        for stage in dockerfile.stages
        for run in stage.all("RUN")
        for mount in run.mounts
        if mount.get("type") == "bind" and "from" not in mount and mount.get("source")
    ]


def check_bytecode_is_compiled_at_build_time(dockerfile: Dockerfile) -> None:
    builder = builder_of(dockerfile)
    assert builder.env().get("UV_COMPILE_BYTECODE") == "1" or all(
        "--compile-bytecode" in sync for sync in uv_syncs(builder)
    ), "compile bytecode in the builder: the runtime root filesystem is read-only"


def check_final_stage_is_read_only_friendly(dockerfile: Dockerfile) -> None:
    env = dockerfile.final.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", "the root filesystem is read-only"
    assert env.get("PYTHONUNBUFFERED") == "1", "log lines must not wait in a buffer"
    assert not dockerfile.final.all("VOLUME"), "the pods mount only /tmp; declare no VOLUME"


def eduscale_command(argv: list[str]) -> argparse.Namespace:
    """`argv` as the `eduscale` command line parses it, or an AssertionError."""
    assert argv[:1] == ["eduscale"], f"{argv} does not run the eduscale command line"
    assert "eduscale" in PYPROJECT["project"]["scripts"]
    try:
        return _parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"`{' '.join(argv)}` is not a valid eduscale command") from exc


def check_entrypoint_is_the_command_line_and_serves_by_default(dockerfile: Dockerfile) -> None:
    # The pods' `args` (["serve", "auth"], ["worker", "indexer"], ...) replace CMD and are
    # appended to ENTRYPOINT, so the entry point must be the bare command line.
    entrypoint = dockerfile.final.last("ENTRYPOINT").exec_form()
    command = dockerfile.final.last("CMD").exec_form()
    assert entrypoint == ["eduscale"], f"ENTRYPOINT is {entrypoint}, the pods expect eduscale"
    args = eduscale_command([*entrypoint, *command])
    assert args.command == "serve", f"CMD {command} does not serve a service"
    assert args.service in HTTP_SERVICES
    assert args.host == "0.0.0.0", "a container must listen on all interfaces"  # noqa: S104
    expose = {
        port.partition("/")[0] for i in dockerfile.final.all("EXPOSE") for port in i.body.split()
    }
    assert expose == {str(args.port)} == {str(HTTP_PORT)}, f"EXPOSE {expose} vs serve's port"


def check_final_stage_provides_the_rds_ca_bundle(dockerfile: Dockerfile) -> None:
    # DATABASE_URL says sslmode=verify-full&sslrootcert=RDS_CA_BUNDLE (stacks/service_env.py).
    adds = [i for i in dockerfile.final.all("ADD") if i.body.split()[-1:] == [RDS_CA_BUNDLE]]
    assert adds, f"the image must provide {RDS_CA_BUNDLE}"
    (add,) = adds
    assert add.body.split()[0] == RDS_CA_URL, f"{RDS_CA_BUNDLE} must come from {RDS_CA_URL}"
    mode = add.flags.get("chmod", "")
    assert re.fullmatch(r"0?[0-7][0-7][4-7]", mode), (
        f"--chmod={mode!r}: the service user must read it"
    )


def check_oci_labels(dockerfile: Dockerfile) -> None:
    labels: dict[str, str] = {}
    for label in dockerfile.final.all("LABEL"):
        labels.update(label.pairs())
    licence = PYPROJECT["project"]["license"]
    assert labels.get("org.opencontainers.image.licenses") == licence, f"licence is {licence}"
    assert labels.get("org.opencontainers.image.title"), "no title label"
    source = labels.get("org.opencontainers.image.source", "")
    assert source.startswith("https://"), f"source label {source!r} is not a URL"


CHECKS: list[Callable[[Dockerfile], None]] = [
    check_multi_stage,
    check_final_stage_is_slim_python_311,
    check_builder_and_runtime_share_the_base_image,
    check_every_image_is_pinned,
    check_final_stage_runs_as_the_pods_uid,
    check_final_stage_has_no_uv_and_no_build_tools,
    check_final_stage_copies_only_the_venv,
    check_uv_sync_installs_only_the_runtime,
    check_uv_is_installed_from_hash_pinned_wheels,
    check_bytecode_is_compiled_at_build_time,
    check_final_stage_is_read_only_friendly,
    check_entrypoint_is_the_command_line_and_serves_by_default,
    check_final_stage_provides_the_rds_ca_bundle,
    check_oci_labels,
]


def ignore_patterns(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line.strip("/") for line in lines if line and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether `path` (relative to the context root) is excluded; `!` exceptions honoured."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, body) for prefix in prefixes)
        if hit:
            excluded = not negated
    return excluded


def check_dockerignore(text: str) -> None:
    patterns = ignore_patterns(text)
    local_state = [".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"]
    docs_site = ["docs/index.md", "mkdocs.yml"]  # editing the docs builds no new image
    for path in [*local_state, *docs_site, "services/auth/__pycache__", ".env"]:
        assert ignored(path, patterns), f".dockerignore must exclude {path}"
    # What the builder needs to build the wheel must reach it.
    packages = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for path in ["pyproject.toml", "uv.lock", PYPROJECT["project"]["readme"], *packages]:
        assert not ignored(path, patterns), f".dockerignore excludes {path}, which the build needs"
    migration = "services/migrations/0001_users.sql"
    assert not ignored(migration, patterns), f".dockerignore excludes {migration}"
    # And what the Dockerfile bind-mounts from the context (uv's hash-pinned requirements).
    mounted = context_files(parse(DOCKERFILE.read_text(encoding="utf-8")))
    assert "docker/uv-requirements.txt" in mounted
    for path in mounted:
        assert not ignored(path, patterns), f".dockerignore excludes {path}, which the build mounts"


# --- the tests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_dockerfile_passes(dockerfile_text: str, check: Callable[[Dockerfile], None]):
    check(parse(dockerfile_text))


def test_the_dockerignore_passes():
    check_dockerignore(DOCKERIGNORE.read_text(encoding="utf-8"))


def test_the_parser_joins_continuations_and_drops_comments():
    dockerfile = parse(
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.11-slim AS build\n"
        "RUN --mount=type=cache,target=/c \\\n"
        "    # a comment inside a continuation\n"
        "    uv sync --locked\n"
        "FROM python:3.11-slim\n"
        'ENV A=1 \\\n    B="two words"\n'
    )
    assert [(s.image, s.name) for s in dockerfile.stages] == [
        ("python:3.11-slim", "build"),
        ("python:3.11-slim", None),
    ]
    run = dockerfile.stages[0].last("RUN")
    assert run.flags == {"mount": "type=cache,target=/c"}
    assert run.body == "uv sync --locked"
    assert dockerfile.final.env() == {"A": "1", "B": "two words"}


def test_image_references_split_into_repository_tag_and_digest():
    digest = "sha256:" + "ab" * 32
    assert split_reference("python:3.11-slim") == ("python", "3.11-slim", None)
    assert split_reference(f"python:3.11-slim@{digest}") == ("python", "3.11-slim", digest)
    assert split_reference("localhost:5000/uv") == ("localhost:5000/uv", None, None)
    assert split_reference("ghcr.io/astral-sh/uv:0.13.9") == (
        "ghcr.io/astral-sh/uv",
        "0.13.9",
        None,
    )


USER = f"USER {RUN_AS}:{RUN_AS}"
RUNTIME_SYNC = "uv sync --locked --no-default-groups --no-editable --reinstall-package=eduscale\n"


def _runtime_from(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("FROM") and "runtime" in line)


def _insert_before_entrypoint(extra: str) -> Callable[[str], str]:
    return lambda text: text.replace("ENTRYPOINT", f"{extra}\nENTRYPOINT", 1)


# Each mutation breaks one rule; the check that guards that rule must then fail.
MUTATIONS: list[tuple[str, Callable[[str], str], Callable[[Dockerfile], None]]] = [
    ("single stage", lambda t: t[t.index(_runtime_from(t)) :], check_multi_stage),
    (
        "full python image",
        lambda t: t.replace(_runtime_from(t), "FROM python:3.11.17 AS runtime"),
        check_final_stage_is_slim_python_311,
    ),
    (
        "python 3.12 runtime",
        lambda t: t.replace(_runtime_from(t), "FROM python:3.12-slim AS runtime"),
        check_final_stage_is_slim_python_311,
    ),
    (
        "different runtime base",
        lambda t: t.replace(_runtime_from(t), "FROM python:3.11-slim AS runtime"),
        check_builder_and_runtime_share_the_base_image,
    ),
    (
        "base at latest",
        lambda t: re.sub(r"python:3\.11[^@\s]*", "python:latest", t),
        check_every_image_is_pinned,
    ),
    (
        "base by tag only",
        lambda t: re.sub(r"@sha256:[0-9a-f]{64}", "", t),
        check_every_image_is_pinned,
    ),
    (
        "base with a malformed digest",
        lambda t: re.sub(r"@sha256:[0-9a-f]{64}", "@sha256:" + "ab" * 31, t),
        check_every_image_is_pinned,
    ),
    (
        "runtime base by tag only",
        lambda t: t.replace(_runtime_from(t), _runtime_from(t).split("@")[0] + " AS runtime"),
        check_builder_and_runtime_share_the_base_image,
    ),
    (
        "uv from its image by tag only",
        lambda t: re.sub(
            r"RUN --mount=type=bind,source=docker/uv-requirements\.txt[^\n]*\n( +[^\n]*\n)+",
            "COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv\n",
            t,
        ),
        check_every_image_is_pinned,
    ),
    (
        "base untagged",
        lambda t: t.replace(_runtime_from(t), "FROM python AS runtime"),
        check_every_image_is_pinned,
    ),
    (
        "COPY from unpinned image",
        _insert_before_entrypoint("COPY --from=busybox /bin/sh /bin/sh"),
        check_every_image_is_pinned,
    ),
    (
        "root user",
        lambda t: t.replace(USER, "USER root"),
        check_final_stage_runs_as_the_pods_uid,
    ),
    (
        "uid 0",
        lambda t: t.replace(USER, "USER 0:0"),
        check_final_stage_runs_as_the_pods_uid,
    ),
    (
        "named user",
        lambda t: t.replace(USER, "USER eduscale"),
        check_final_stage_runs_as_the_pods_uid,
    ),
    (
        "uid the pods do not expect",
        lambda t: t.replace(USER, "USER 1000:1000"),
        check_final_stage_runs_as_the_pods_uid,
    ),
    (
        "no USER",
        lambda t: t.replace(USER, ""),
        check_final_stage_runs_as_the_pods_uid,
    ),
    (
        "uv copied into the runtime",
        _insert_before_entrypoint("COPY --from=builder /usr/local/bin/uv /usr/local/bin/uv"),
        check_final_stage_has_no_uv_and_no_build_tools,
    ),
    (
        "uv image copied into the runtime",
        _insert_before_entrypoint(
            f"COPY --from=ghcr.io/astral-sh/uv:0.13.9@sha256:{'ab' * 32} /uv /bin/uv"
        ),
        check_final_stage_has_no_uv_and_no_build_tools,
    ),
    (
        "uv run at runtime",
        lambda t: t.replace("CMD [", "RUN uv pip list\nCMD ["),
        check_final_stage_has_no_uv_and_no_build_tools,
    ),
    (
        "uv mounted in the runtime",
        _insert_before_entrypoint(
            "RUN --mount=from=ghcr.io/astral-sh/uv:0.13.9,source=/uv,target=/bin/uv uv pip list"
        ),
        check_final_stage_has_no_uv_and_no_build_tools,
    ),
    (
        "gcc in the runtime",
        _insert_before_entrypoint(
            "RUN apt-get update && apt-get install -y --no-install-recommends gcc"
        ),
        check_final_stage_has_no_uv_and_no_build_tools,
    ),
    (
        "build-essential in the runtime",
        _insert_before_entrypoint("RUN apt-get install -y build-essential libpq-dev"),
        check_final_stage_has_no_uv_and_no_build_tools,
    ),
    (
        "source tree copied",
        _insert_before_entrypoint("COPY --from=builder /src /src"),
        check_final_stage_copies_only_the_venv,
    ),
    (
        "context copied",
        _insert_before_entrypoint("COPY . /app"),
        check_final_stage_copies_only_the_venv,
    ),
    (
        "sync not locked",
        lambda t: t.replace(RUNTIME_SYNC, RUNTIME_SYNC.replace(" --locked", "")),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "dev group installed",
        lambda t: t.replace(RUNTIME_SYNC, RUNTIME_SYNC.replace(" --no-default-groups", "")),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "dev group asked for by name",
        lambda t: t.replace(
            RUNTIME_SYNC, RUNTIME_SYNC.replace(" --locked", " --locked --group=dev")
        ),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "infra extra installed",
        lambda t: t.replace(
            RUNTIME_SYNC, RUNTIME_SYNC.replace(" --locked", " --locked --extra infra")
        ),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "all extras installed",
        lambda t: t.replace("--no-install-project", "--all-extras --no-install-project"),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "the two syncs select differently",
        lambda t: t.replace("--no-install-project", "--no-install-project --no-dev"),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "dependencies may be built from source",
        lambda t: t.replace(" --no-build\n", "\n"),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "the project's cached wheel reused",
        lambda t: t.replace(" --reinstall-package=eduscale", ""),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "editable project",
        lambda t: t.replace(RUNTIME_SYNC, RUNTIME_SYNC.replace(" --no-editable", "")),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "dependencies and project in one layer",
        lambda t: re.sub(
            r"RUN --mount=type=cache,target=/root/\.cache/uv \\\n(    --mount=type=bind.*\\\n)+    uv sync[^\n]*--no-install-project[^\n]*\n",
            "",
            t,
        ),
        check_uv_sync_installs_only_the_runtime,
    ),
    (
        "uv installed without hashes",
        lambda t: t.replace("--require-hashes ", ""),
        check_uv_is_installed_from_hash_pinned_wheels,
    ),
    (
        "uv may be built from its sdist",
        lambda t: t.replace("--only-binary=:all: ", ""),
        check_uv_is_installed_from_hash_pinned_wheels,
    ),
    (
        "uv's requirements not mounted",
        lambda t: t.replace(
            "--mount=type=bind,source=docker/uv-requirements.txt,", "--mount=type=tmpfs,"
        ),
        check_uv_is_installed_from_hash_pinned_wheels,
    ),
    (
        "uv not installed by the builder",
        lambda t: re.sub(
            r"RUN --mount=type=bind,source=docker/uv-requirements\.txt[^\n]*\n( +[^\n]*\n)+",
            "",
            t,
        ),
        check_uv_is_installed_from_hash_pinned_wheels,
    ),
    (
        "no bytecode compilation",
        lambda t: t.replace("UV_COMPILE_BYTECODE=1", "UV_COMPILE_BYTECODE=0"),
        check_bytecode_is_compiled_at_build_time,
    ),
    (
        "bytecode written at runtime",
        lambda t: t.replace("PYTHONDONTWRITEBYTECODE=1", "PYTHONDONTWRITEBYTECODE="),
        check_final_stage_is_read_only_friendly,
    ),
    (
        "buffered output",
        lambda t: t.replace("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0"),
        check_final_stage_is_read_only_friendly,
    ),
    (
        "entry point that swallows the pods' first argument",
        lambda t: t.replace('ENTRYPOINT ["eduscale"]', 'ENTRYPOINT ["eduscale", "serve"]'),
        check_entrypoint_is_the_command_line_and_serves_by_default,
    ),
    (
        "uvicorn entry point",
        lambda t: t.replace('ENTRYPOINT ["eduscale"]', 'ENTRYPOINT ["uvicorn", "--factory"]'),
        check_entrypoint_is_the_command_line_and_serves_by_default,
    ),
    (
        "shell-form entry point",
        lambda t: t.replace('ENTRYPOINT ["eduscale"]', "ENTRYPOINT eduscale"),
        check_entrypoint_is_the_command_line_and_serves_by_default,
    ),
    (
        "unknown default service",
        lambda t: t.replace('CMD ["serve", "auth"]', 'CMD ["serve", "payments"]'),
        check_entrypoint_is_the_command_line_and_serves_by_default,
    ),
    (
        "default is not a service",
        lambda t: t.replace('CMD ["serve", "auth"]', 'CMD ["migrate"]'),
        check_entrypoint_is_the_command_line_and_serves_by_default,
    ),
    (
        "wrong port exposed",
        lambda t: t.replace("EXPOSE 8000", "EXPOSE 8080"),
        check_entrypoint_is_the_command_line_and_serves_by_default,
    ),
    (
        "no port exposed",
        lambda t: t.replace("EXPOSE 8000", ""),
        check_entrypoint_is_the_command_line_and_serves_by_default,
    ),
    (
        "no RDS CA bundle",
        lambda t: re.sub(r"\nADD [^\n]*global-bundle\.pem[^\n]*", "", t),
        check_final_stage_provides_the_rds_ca_bundle,
    ),
    (
        "RDS CA bundle unreadable by the service user",
        lambda t: t.replace("ADD --chmod=0644 ", "ADD "),
        check_final_stage_provides_the_rds_ca_bundle,
    ),
    (
        "RDS CA bundle elsewhere",
        lambda t: t.replace(f" {RDS_CA_BUNDLE}", " /etc/ssl/certs/rds.pem"),
        check_final_stage_provides_the_rds_ca_bundle,
    ),
    (
        "another file added",
        _insert_before_entrypoint("ADD https://example.com/tool /usr/local/bin/tool"),
        check_final_stage_copies_only_the_venv,
    ),
    (
        "wrong licence",
        lambda t: t.replace('licenses="Apache-2.0"', 'licenses="MIT"'),
        check_oci_labels,
    ),
    (
        "no source label",
        lambda t: re.sub(r'org\.opencontainers\.image\.source="[^"]*"', "", t),
        check_oci_labels,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "check"),
    [pytest.param(mutate, check, id=name) for name, mutate, check in MUTATIONS],
)
def test_each_check_fails_on_a_dockerfile_that_breaks_its_rule(
    dockerfile_text: str,
    mutate: Callable[[str], str],
    check: Callable[[Dockerfile], None],
):
    broken = mutate(dockerfile_text)
    assert broken != dockerfile_text, "the mutation no longer applies; update it"
    with pytest.raises(AssertionError):
        check(parse(broken))


@pytest.mark.parametrize(
    ("mutate", "needed"),
    [
        (lambda t: t.replace(".venv\n", "\n"), ".venv"),
        (lambda t: t.replace(".git\n", "\n"), ".git"),
        (lambda t: t.replace(".pytest_cache\n", "\n"), ".pytest_cache"),
        (lambda t: t.replace("**/__pycache__\n", "\n"), "__pycache__"),
        (lambda t: t.replace("\ndocs\n", "\n"), "docs/"),
        (lambda t: t + "README.md\n", "README.md"),
        (lambda t: t + "*.lock\n", "uv.lock"),
        (lambda t: t + "services/**/*.sql\n", "migrations"),
        (lambda t: t + "*\n!pyproject.toml\n!uv.lock\n!README.md\n", "packages"),
        (lambda t: t + "docker\n", "uv requirements"),
    ],
    ids=[
        "keeps .venv",
        "keeps .git",
        "keeps pytest cache",
        "keeps bytecode",
        "keeps docs",
        "drops readme",
        "drops lock",
        "drops migrations",
        "drops packages",
        "drops uv requirements",
    ],
)
def test_the_dockerignore_check_fails_on_a_broken_dockerignore(
    mutate: Callable[[str], str], needed: str
):
    text = DOCKERIGNORE.read_text(encoding="utf-8")
    broken = mutate(text)
    assert broken != text, f"the mutation for {needed} no longer applies; update it"
    with pytest.raises(AssertionError):
        check_dockerignore(broken)


UV_REQUIREMENTS = PROJECT_DIR / "docker" / "uv-requirements.txt"


def test_uv_requirements_pin_the_x86_64_and_aarch64_wheels_by_hash():
    pinned = hash_pinned_requirements(UV_REQUIREMENTS.read_text(encoding="utf-8"))
    assert list(pinned) == ["uv"], "the builder installs uv and nothing else with pip"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: re.sub(r"uv==\S+", "uv", t),
        lambda t: re.sub(r"uv==\S+", "uv>=0.13", t),
        lambda t: re.sub(r"(?m)^\s+--hash=.*\n", "", t, count=2),
        lambda t: re.sub(r"--hash=sha256:[0-9a-f]{64}", "--hash=sha256:abc", t, count=1),
        lambda t: re.sub(r"--hash=sha256:([0-9a-f]{64})", r"--hash=md5:\1", t, count=1),
        lambda t: re.sub(r"(?m)^uv==", "--index-url https://example.com/simple uv==", t),
    ],
    ids=["unpinned", "a range", "one hash", "malformed hash", "not sha256", "another index"],
)
def test_the_requirements_check_fails_on_a_loose_pin(mutate: Callable[[str], str]):
    text = UV_REQUIREMENTS.read_text(encoding="utf-8")
    broken = mutate(text)
    assert broken != text, "the mutation no longer applies; update it"
    with pytest.raises(AssertionError):
        hash_pinned_requirements(broken)


# --- the image as the pods run it --------------------------------------------------------

WORKLOADS = [
    "auth",
    "course",
    "ai-orchestrator",
    "generation-worker",
    "indexer-worker",
    "analytics-sink",
]


@pytest.mark.parametrize("name", WORKLOADS)
def test_each_pod_runs_a_valid_eduscale_command(dev_graph: Graph, dockerfile_text: str, name: str):
    (deployment,) = [
        d
        for d in dev_graph.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["name"] == name
    ]
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    # The image this repository's Dockerfile builds, as pushed: pinned by its digest.
    assert container["image"] == dev_graph.outputs["servicesImage"]
    assert "@sha256:" in container["image"]
    assert "command" not in container, "the pod must keep the image's entry point"
    entrypoint = parse(dockerfile_text).final.last("ENTRYPOINT").exec_form()
    eduscale_command([*entrypoint, *container["args"]])
