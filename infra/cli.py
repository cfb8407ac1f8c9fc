"""The `eduscale` command line.

`eduscale preview --stack dev|prod` runs the real Pulumi program offline, on the SDK's
mock engine, with the stack's own config file, and reports the resource graph the engine
would receive: what `cdk synth` is to CDK. No cloud account or Pulumi CLI is needed, so
CI can review (and later policy-check) the whole topology on every change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from infra.capacity.command import add_capacity_command, capacity
from infra.dev.commands import add_dev_commands, dev
from infra.service_commands import add_service_commands, dlq, migrate, serve, worker
from services.runtime.migrations import MigrationError
from services.runtime.schema_job import MasterSecretError
from services.runtime.settings import SettingsError

if TYPE_CHECKING:
    from infra.graph import Graph

# The deploy-time modules (stacks, the Pulumi SDKs) load lazily, inside the commands that
# use them: `eduscale serve` starts every pod and should not pay a second for them, and the
# services' image does not have them at all (they come with the `infra` extra).

__all__ = ["main"]

EXIT_OK = 0
EXIT_PROGRAM_FAILED = 1
EXIT_BAD_INPUT = 2

DEPLOY_COMMANDS = frozenset({"preview", "policy", "capacity"})
"""The commands that run the Pulumi program or read its config: they need `eduscale[infra]`."""
_INFRA_EXTRA_MODULES = frozenset({"pulumi", "pydantic", "yaml"})
"""Top-level modules of the infra extra (with every `pulumi_*` provider) the commands import."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eduscale", description="Deploy-time tooling for the eduscale platform."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    preview = commands.add_parser(
        "preview",
        help="record a stack's resource graph offline (no cloud account needed)",
        description="Run the Pulumi program on the mock engine with Pulumi.<STACK>.yaml "
        "and print the component tree and resource counts.",
    )
    preview.add_argument("--stack", "-s", required=True, help="stack name, e.g. dev or prod")
    preview.add_argument("--json", type=Path, metavar="FILE", help="write the graph as JSON")
    preview.add_argument(
        "--diagram", type=Path, metavar="FILE", help="write a Mermaid flowchart of the components"
    )
    preview.add_argument(
        "--manifests",
        type=Path,
        metavar="DIR",
        help="write every Kubernetes object as YAML, one file each (secrets masked); DIR must "
        "be new, empty or an earlier --manifests output, which is replaced",
    )
    preview.add_argument(
        "--project-dir",
        type=Path,
        metavar="DIR",
        help="directory holding Pulumi.yaml (default: the nearest one at or above .)",
    )
    policy = commands.add_parser(
        "policy",
        help="check a stack's resource graph against the policy pack, offline",
        description="Run the CrossGuard pack in policies/ on the recorded graph of a stack "
        "(or on a graph saved with `eduscale preview --json`). Exits 1 when a mandatory rule "
        "is broken.",
    )
    source = policy.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", "-s", help="record this stack first, e.g. dev or prod")
    source.add_argument("--graph", type=Path, metavar="FILE", help="a saved `--json` graph")
    policy.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="policy config (`--policy-pack-config` format; default: policies/config/<stack>.json)",
    )
    policy.add_argument("--json", type=Path, metavar="FILE", help="write the violations as JSON")
    policy.add_argument("--project-dir", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    add_capacity_command(commands)
    add_service_commands(commands)
    add_dev_commands(commands)
    return parser


def _record(stack: str, project_dir: Path | None) -> Graph:
    from infra.engine import run_offline  # noqa: PLC0415
    from infra.program import program  # noqa: PLC0415
    from infra.stack_files import find_project_dir, load_stack  # noqa: PLC0415
    from stacks.config import parse_stack_config  # noqa: PLC0415

    directory = project_dir or find_project_dir(Path.cwd())
    files = load_stack(directory, stack)
    config = parse_stack_config(files.config)  # fail fast, before any resource
    print(f"Previewing stack {files.stack} of {files.project} offline ...", file=sys.stderr)
    return run_offline(
        program,
        project=files.project,
        stack=files.stack,
        config=files.config,
        secret_keys=files.secret_keys,
        region=config.region,
    )


def _policy(args: argparse.Namespace) -> int:
    from infra.graph import Graph  # noqa: PLC0415
    from infra.policy_check import check_graph, load_policy_config  # noqa: PLC0415
    from infra.policy_report import render_report  # noqa: PLC0415
    from infra.stack_files import StackFileError  # noqa: PLC0415
    from policies.catalogue import ALL_POLICIES  # noqa: PLC0415
    from policies.waivers import WAIVERS  # noqa: PLC0415

    if args.json is not None and not args.json.parent.is_dir():
        raise StackFileError(f"cannot write {args.json}: {args.json.parent} is not a directory")
    if args.graph is not None:
        if not args.graph.is_file():
            raise StackFileError(
                f"no graph file {args.graph}; write one with eduscale preview --json"
            )
        try:
            graph = Graph.read_json(args.graph)
        except (ValueError, KeyError) as exc:
            raise StackFileError(
                f"{args.graph} is not a graph written by eduscale preview --json ({exc})"
            ) from None
    else:
        graph = _record(args.stack, args.project_dir)
    config_path = (
        args.config
        or Path(__file__).resolve().parent.parent / "policies" / "config" / f"{graph.stack}.json"
    )
    config = load_policy_config(config_path, ALL_POLICIES)
    violations = check_graph(graph, ALL_POLICIES, config, WAIVERS)
    print(render_report(graph.stack, violations, rules=len(ALL_POLICIES), waived=len(WAIVERS)))
    if args.json is not None:
        args.json.write_text(json.dumps([v.to_json() for v in violations], indent=2) + "\n")
    return EXIT_PROGRAM_FAILED if any(v.mandatory for v in violations) else EXIT_OK


def _preview(args: argparse.Namespace) -> int:
    # Imported here: loading the provider SDKs takes seconds, `--help` should not.
    from infra.diagram import render_mermaid  # noqa: PLC0415
    from infra.engine import run_offline  # noqa: PLC0415
    from infra.manifests import check_output_dir, write_manifests  # noqa: PLC0415
    from infra.program import program  # noqa: PLC0415
    from infra.stack_files import StackFileError, find_project_dir, load_stack  # noqa: PLC0415
    from infra.summary import render_summary  # noqa: PLC0415
    from stacks.config import parse_stack_config  # noqa: PLC0415

    for target in (args.json, args.diagram):
        if target is not None and not target.parent.is_dir():
            # Checked first: finding out after a minute-long preview wastes the minute.
            raise StackFileError(f"cannot write {target}: {target.parent} is not a directory")
    if args.manifests is not None:
        check_output_dir(args.manifests)
    project_dir = args.project_dir or find_project_dir(Path.cwd())
    files = load_stack(project_dir, args.stack)
    config = parse_stack_config(files.config)  # fail fast, before any resource
    print(f"Previewing stack {files.stack} of {files.project} offline ...", file=sys.stderr)
    started = time.perf_counter()
    graph = run_offline(
        program,
        project=files.project,
        stack=files.stack,
        config=files.config,
        secret_keys=files.secret_keys,
        region=config.region,
    )
    elapsed = time.perf_counter() - started
    print(render_summary(graph))
    print(f"\nRecorded in {elapsed:.1f} s.", file=sys.stderr)
    if args.json is not None:
        graph.write_json(args.json)
        print(f"Wrote the resource graph to {args.json}", file=sys.stderr)
    if args.diagram is not None:
        args.diagram.write_text(render_mermaid(graph))
        print(f"Wrote the diagram to {args.diagram}", file=sys.stderr)
    if args.manifests is not None:
        count = write_manifests(graph, args.manifests)
        print(f"Wrote {count} Kubernetes manifests to {args.manifests}", file=sys.stderr)
    return EXIT_OK


def _deploy_errors(command: str) -> tuple[type[Exception], ...]:
    """Bad-input errors of the deploy-time commands (imported only for them)."""
    if command not in DEPLOY_COMMANDS:
        return ()
    from infra.capacity.errors import CapacityInputError  # noqa: PLC0415
    from infra.manifests import ManifestDirError  # noqa: PLC0415
    from infra.policy_check import PolicyConfigError  # noqa: PLC0415
    from infra.stack_files import StackFileError  # noqa: PLC0415
    from stacks.config import ConfigError  # noqa: PLC0415

    return (StackFileError, ConfigError, PolicyConfigError, CapacityInputError, ManifestDirError)


def _infra_extra_missing(command: str, error: ModuleNotFoundError) -> str | None:
    """The line to print when a deploy-time command lacks the infra extra, else None."""
    top = (error.name or "").partition(".")[0]
    if command not in DEPLOY_COMMANDS:
        return None
    if top not in _INFRA_EXTRA_MODULES and not top.startswith("pulumi_"):
        return None
    return (
        f"eduscale {command}: the deploy-time commands ({', '.join(sorted(DEPLOY_COMMANDS))}) "
        f"need the infra extra, which is not installed (no module named {error.name!r}): "
        'pip install "eduscale[infra]", or `uv sync` in a checkout of the repository'
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ModuleNotFoundError as exc:
        # The services' image has no Pulumi: a deploy-time command there gets the fix in
        # one line. Any other missing module is a failure like any other.
        missing = _infra_extra_missing(args.command, exc)
        if missing is None:
            return _failed(exc)
        print(missing, file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace) -> int:
    commands = {
        "capacity": capacity,
        "policy": _policy,
        "preview": _preview,
        "serve": serve,
        "migrate": migrate,
        "worker": worker,
        "dlq": dlq,
        "dev": dev,
    }
    bad_input: tuple[type[Exception], ...] = (
        SettingsError,
        MigrationError,
        *_deploy_errors(args.command),
    )
    try:
        return commands[args.command](args)
    except bad_input as exc:
        print(f"eduscale: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except psycopg.OperationalError as exc:
        print(f"eduscale: cannot reach the database: {exc}".rstrip(), file=sys.stderr)
        return EXIT_PROGRAM_FAILED
    except MasterSecretError as exc:
        print(f"eduscale: {exc}", file=sys.stderr)
        return EXIT_PROGRAM_FAILED
    except OSError as exc:
        print(f"eduscale: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ModuleNotFoundError:
        raise  # main tells a missing infra extra from a failure
    except Exception as exc:  # noqa: BLE001 - a user gets one line, not a traceback
        return _failed(exc)


def _failed(exc: Exception) -> int:
    print(f"eduscale: the program failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    return EXIT_PROGRAM_FAILED


if __name__ == "__main__":
    sys.exit(main())
