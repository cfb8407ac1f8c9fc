"""The test lanes: the full suite (CI), and the fast lane of the tests that need no server.

`scripts/check --fast` runs `pytest -m "not server"`: tests that run in the pytest
process alone, with no PostgreSQL, Redis or Kafka and no process of their own (a server,
the broker, the CLI, the component plugin, a fresh interpreter). A test is in the
`server` lane when it takes a fixture that provides a server (`SERVER_FIXTURES`, marked
in conftest.py, so a new test that takes one is marked without a thought), or when it
says so with `@pytest.mark.server` (a module: `pytestmark = pytest.mark.server`) because
it starts something itself.

Nothing escapes the mark silently. In the fast lane the harnesses that start servers
call `require_servers` first, and conftest.py installs an audit hook (`sys.addaudithook`,
Python's own interception point, not a patch) that refuses to start a process during a
test: an unmarked test that needs either fails at once, naming the mark.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

SERVER_MARK = "server"
SERVER_FIXTURES = frozenset(
    {"core_db", "replica_db", "redis_client", "redis_cluster", "kafka_broker"}
)
"""Fixtures that start or connect to a server; a test that takes one is in the server lane."""
WITHOUT_SERVERS = "EDUSCALE_TESTS_WITHOUT_SERVERS"
"""Set (by conftest.py) while pytest runs the lane without servers."""


def require_servers(what: str) -> None:
    """Refuse to start `what` in the fast lane, saying how to put the test in its lane."""
    if os.environ.get(WITHOUT_SERVERS):
        raise RuntimeError(
            f"this test needs {what}, but runs in the lane without servers "
            f'(pytest -m "not {SERVER_MARK}"): mark it @pytest.mark.{SERVER_MARK}, or take '
            f"one of the fixtures {', '.join(sorted(SERVER_FIXTURES))}"
        )


SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec"})
"""Audit events (docs.python.org/3/library/audit_events.html) that start a process."""


class ProcessGuard:
    """An audit hook that refuses to start a process while `armed` (during a fast-lane test)."""

    def __init__(self) -> None:
        self.armed = False

    @contextmanager
    def arming(self) -> Iterator[None]:
        """Armed for the block, in the lane without servers."""
        self.armed = bool(os.environ.get(WITHOUT_SERVERS))
        try:
            yield
        finally:
            self.armed = False

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if self.armed and event in SPAWN_EVENTS:
            self.armed = False  # let the failure report itself
            require_servers(f"a process of its own ({event} {args[:2]!r})")
