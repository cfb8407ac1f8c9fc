"""A program a test starts as a process of its own, as a pod would: run it, wait until it
serves, and never leave it running.

The output (stdout and stderr together) is kept in a pipe, so a test can read what the
process logged, and a start-up failure shows it in the test's failure message.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

__all__ = ["running", "wait_ready"]


@contextmanager
def running(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`command` running while the block runs; stopped on leaving it if it still runs.

    Stopped as Kubernetes stops a pod: SIGTERM first, so the process shuts down as it
    would in the cluster (flushing spans, draining), and SIGKILL only after 20 s.
    """
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        try:
            yield child
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=10)


def wait_ready(url: str, child: subprocess.Popen[str]) -> httpx.Response:
    """The first 200 answer of `url`; fails the test with the output if the process exits."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.poll() is not None:
            output = child.stdout.read() if child.stdout else ""
            pytest.fail(f"the process exited with {child.returncode}:\n{output}")
        try:
            response = httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if response.status_code == 200:
            return response
        time.sleep(0.1)
    pytest.fail(f"{url} did not become ready within 30 s")
