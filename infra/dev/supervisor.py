"""Child processes of `eduscale dev up`: started, their logs prefixed, and all stopped.

Each child runs in its own process group, so the terminal's Ctrl-C reaches only the
supervisor, which then stops the children in order (the gateway first, the broker last)
instead of every process racing to shut down at once. A child's whole group is signalled,
so nothing it spawned survives, and whatever is still alive after the grace period is
killed. On Linux each child also asks the kernel to SIGTERM it when the supervisor dies
(`PR_SET_PDEATHSIG`), so even a `kill -9` of the supervisor leaves no orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Child", "Supervisor", "render_line"]

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_QUIET_KEYS = frozenset({"timestamp", "service", "level", "message", "logger"})
_LINE_LIMIT = 1024 * 1024  # a traceback in one JSON line can be long
_COLOURS = ("36", "32", "35", "33", "34", "96", "92", "95", "93", "94")


@dataclass
class Child:
    """One running child and the task copying its output."""

    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]
    stop_signal: int

    @property
    def pid(self) -> int:
        """Its process id, which is also its process group id."""
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether it has not exited yet."""
        return self.process.returncode is None


def _dies_with(parent: int) -> Callable[[], None]:
    """Run in the child before exec: be signalled when `parent` goes away."""

    def setup() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return setup


def render_line(line: str) -> str:
    """A JSON log line as `LEVEL message key=value ...`; anything else unchanged."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line.rstrip()
    try:
        record = json.loads(stripped)
    except ValueError:
        return line.rstrip()
    if not isinstance(record, dict) or "message" not in record:
        return line.rstrip()
    extras = " ".join(f"{k}={v}" for k, v in record.items() if k not in _QUIET_KEYS)
    level = str(record.get("level", "info")).upper()
    return f"{level:<7} {record['message']} {extras}".rstrip()


class Supervisor:
    """Starts children and stops them; writes their output, prefixed, to `out`."""

    def __init__(self, out: TextIO = sys.stdout, *, prefix_width: int = 12) -> None:
        self._out = out
        self._width = prefix_width
        self._colour = out.isatty() and "NO_COLOR" not in os.environ
        self.children: list[Child] = []

    def say(self, name: str, text: str) -> None:
        """Write one line with `name` as its prefix."""
        prefix = f"{name:<{self._width}}|"
        if self._colour:
            colour = _COLOURS[sum(map(ord, name)) % len(_COLOURS)]
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        self._out.write(f"{prefix} {text}\n")
        self._out.flush()

    async def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        stop_signal: int = signal.SIGTERM,
    ) -> Child:
        """Start `argv` in a new process group, its output prefixed by `name`."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            process_group=0,
            preexec_fn=_dies_with(os.getpid()),
            limit=_LINE_LIMIT,
        )
        child = Child(name, process, asyncio.create_task(self._pump(name, process)), stop_signal)
        self.children.append(child)
        return child

    async def _pump(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None  # noqa: S101 - started with a pipe
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line over the limit was dropped: say so, go on
                self.say(name, "(a log line over 1 MiB was dropped)")
                continue
            if not raw:
                return
            record = raw.decode(errors="replace")
            self.say(_service_of(record) or name, render_line(record))

    async def first_exit(self) -> Child:
        """Wait until any child exits; that child."""
        waits = {
            asyncio.ensure_future(child.process.wait()): child
            for child in self.children
            if child.running
        }
        if not waits:
            raise RuntimeError("no child is running")
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return waits[next(iter(done))]

    async def stop(self, children: Sequence[Child], grace_seconds: float) -> None:
        """Signal `children` together, wait up to `grace_seconds`, then kill the rest."""
        for child in children:
            if child.running:
                _signal_group(child.pid, child.stop_signal)
        waiting = [asyncio.ensure_future(c.process.wait()) for c in children]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=grace_seconds)
            for wait in late:
                wait.cancel()
        for child in children:
            if child.running:
                self.say(child.name, f"did not stop within {grace_seconds:g} s: killed")
            _signal_group(child.pid, signal.SIGKILL)  # also whatever it left behind
            await child.process.wait()
            with contextlib.suppress(asyncio.CancelledError):
                await child.pump

    def kill_all(self) -> None:
        """SIGKILL every child's group at once (a second Ctrl-C)."""
        for child in self.children:
            _signal_group(child.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _service_of(line: str) -> str | None:
    """The `service` a JSON log line names (one process may host several)."""
    if '"service"' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    service = record.get("service") if isinstance(record, dict) else None
    return service if isinstance(service, str) and service else None
