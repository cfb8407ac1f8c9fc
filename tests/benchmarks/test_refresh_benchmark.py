"""The `auth_refresh` benchmark measures rotations: each request spends one token, once.

A refresh token is single-use and a reuse revokes its family, so a load generator that
cycled tokens (as the other endpoints cycle requests), or a server that stopped rotating,
would yield a rate of refusals or of no-ops. These tests drive `lua/refresh.lua` with the
real wrk: against a server that keeps the single-use rule and records every token it is
sent, against servers that stop rotating (the run must be refused), and against the real
Auth service on PostgreSQL, where the database must have spent one token per answer.
Measured right after `auth_login` on the same CPU, the figure also needs the suite to wait
until the login server drained its queue (`wait_idle`).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from benchmarks import http_endpoints as suite
from benchmarks.embeddings_server import send_json
from benchmarks.harness import fresh_database
from benchmarks.refresh_rotation import (
    REFRESH_SCRIPT,
    RESERVE_PER_CONNECTION,
    StoredRotations,
    check_rotations,
    check_stored_rotations,
    write_reserves,
)
from benchmarks.seed import seed_users
from benchmarks.servers import Server, running_server, service_command, wait_idle
from benchmarks.wrk import WrkError, WrkLoad, WrkResult, parse_wrk_output, run_wrk

SAMPLES = Path(__file__).parent / "wrk_samples"
needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def _result(requests: int, **counts: int) -> WrkResult:
    base = {"rotated": requests, "non_200": 0, "stale": 0, "from_reserve": 4, "exhausted": 0}
    return WrkResult(requests, 1.0, float(requests), 1, 1, 1, 1, script_counts=base | counts)


def test_the_scripts_counts_are_read_from_the_wrk_report():
    # Captured from wrk 4.1 driving the Auth service (8 connections, 2 threads, 2 s).
    result = parse_wrk_output((SAMPLES / "refresh.txt").read_text())
    assert result.requests == 905
    assert result.script_counts == {
        "rotated": 905,
        "non_200": 0,
        "stale": 0,
        "from_reserve": 9,
        "exhausted": 0,
    }
    check_rotations(result)


def test_a_run_where_every_answer_rotated_a_token_is_accepted():
    check_rotations(_result(500))


@pytest.mark.parametrize(
    ("counts", "said"),
    [
        ({"rotated": 499}, "500 answers, but 499 rotations"),
        ({"rotated": 480, "non_200": 20}, "20 non-200"),
        ({"rotated": 490, "stale": 10}, "10 200s without a new token"),
        ({"exhausted": 3}, "3 requests without a token left"),
    ],
)
def test_a_run_that_did_not_rotate_on_every_request_is_refused(counts, said):
    with pytest.raises(WrkError, match=said):
        check_rotations(_result(500, **counts))


def test_a_run_driven_by_another_script_is_refused():
    with pytest.raises(WrkError, match="counts are missing"):
        check_rotations(WrkResult(500, 1.0, 500.0, 1, 1, 1, 1))


def test_the_database_must_have_spent_a_token_per_answer_and_revoked_none():
    check_stored_rotations(StoredRotations(spent=510, revoked_families=0), 500, in_flight=32)
    with pytest.raises(WrkError, match="1 refresh-token families were revoked"):
        check_stored_rotations(StoredRotations(spent=500, revoked_families=1), 500, in_flight=32)
    with pytest.raises(WrkError, match="spent 499 refresh tokens for 500 answers"):
        check_stored_rotations(StoredRotations(spent=499, revoked_families=0), 500, in_flight=32)
    with pytest.raises(WrkError, match="spent 533 refresh tokens"):
        check_stored_rotations(StoredRotations(spent=533, revoked_families=0), 500, in_flight=32)


def test_each_run_starts_from_its_own_tokens(tmp_path):
    tokens = [f"token-{n}" for n in range(12)]
    files = write_reserves(tmp_path, "refresh", tokens, runs=3)
    shares = [path.read_text().split() for path in files]
    assert [len(share) for share in shares] == [4, 4, 4]
    assert sorted(token for share in shares for token in share) == sorted(tokens)  # each once
    with pytest.raises(ValueError, match="cannot start"):
        write_reserves(tmp_path, "refresh", tokens[:2], runs=3)


class _Refresher(BaseHTTPRequestHandler):
    """POST /auth/refresh with the single-use rule; `mode` makes it stop rotating."""

    protocol_version = "HTTP/1.1"
    mode: ClassVar[str] = "rotate"
    live: ClassVar[set[str]] = set()
    sent: ClassVar[list[str]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        token = json.loads(body)["refresh_token"] if self.path == "/auth/refresh" else ""
        with self.lock:
            self.sent.append(token)
            valid = token in self.live
            if self.mode != "echo":  # "echo" answers with the token it was sent, still valid
                self.live.discard(token)
            successor = token if self.mode == "echo" else secrets.token_urlsafe(32)
            if valid and self.mode == "rotate":
                self.live.add(successor)
        if not valid or self.mode == "refuse":
            self._answer(401, {"detail": "The refresh token is not valid; log in again"})
            return
        self._answer(200, {"access_token": "a", "refresh_token": successor, "expires_in": 1})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        send_json(self, status, document)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        del format, args


@contextmanager
def _refresher(mode: str, tokens: list[str]) -> Iterator[str]:
    _Refresher.mode, _Refresher.live, _Refresher.sent = mode, set(tokens), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refresher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@needs_wrk
@pytest.mark.server  # runs wrk
def test_every_token_is_sent_once_and_the_next_one_comes_from_the_answer(tmp_path):
    tokens = [secrets.token_urlsafe(32) for _ in range(8)]
    (reserve,) = write_reserves(tmp_path, "refresh", tokens, runs=1)
    load = WrkLoad(seconds=1, connections=4, threads=2)
    with _refresher("rotate", tokens) as url:
        result = run_wrk(url, load, reserve, method="POST", script=REFRESH_SCRIPT)
    sent = _Refresher.sent
    assert len(sent) == len(set(sent))  # never a token twice: no family would be revoked
    assert result.requests > len(tokens)  # more requests than the file held: chained
    # One chain per connection, and one token wrk's first thread takes before the run to
    # check the script's request (never sent).
    assert result.script_counts["from_reserve"] == load.connections + 1
    assert result.script_counts["rotated"] == result.requests
    assert result.requests <= len(sent) <= result.requests + 4
    check_rotations(result)


def _short_run(url: str, reserve: Path, *, check: bool) -> WrkResult:
    """One second of the refresh script on two connections."""
    return run_wrk(url, WrkLoad(1, 2), reserve, method="POST", script=REFRESH_SCRIPT, check=check)


@contextmanager
def _misbehaving(tmp_path: Path, mode: str) -> Iterator[tuple[str, Path]]:
    """A refresher in `mode` and a reserve of four tokens it knows."""
    tokens = [secrets.token_urlsafe(32) for _ in range(4)]
    (reserve,) = write_reserves(tmp_path, "refresh", tokens, runs=1)
    with _refresher(mode, tokens) as url:
        yield url, reserve


@needs_wrk
@pytest.mark.server  # runs wrk
def test_a_server_answering_200_without_rotating_voids_the_run(tmp_path):
    with _misbehaving(tmp_path, "echo") as (url, reserve):
        result = _short_run(url, reserve, check=False)
    assert result.script_counts["stale"] > 0
    assert result.script_counts["rotated"] == 0
    with pytest.raises(WrkError, match="200s without a new token"):
        check_rotations(result)


@needs_wrk
@pytest.mark.server  # runs wrk
def test_refusals_are_counted_and_void_the_run(tmp_path):
    with _misbehaving(tmp_path, "refuse") as (url, reserve):
        with pytest.raises(WrkError, match=r"script non_200 [1-9]"):
            _short_run(url, reserve, check=True)
        result = _short_run(url, reserve, check=False)
    assert result.script_counts["non_200"] == result.requests > 0
    with pytest.raises(WrkError, match="non-200"):
        check_rotations(result)


@needs_wrk
@pytest.mark.server  # the Auth service on PostgreSQL and Redis, and wrk
def test_the_suites_figure_counts_a_rotation_by_the_auth_service_for_every_request(tmp_path):
    """The http suite's own `auth_refresh` endpoint, driven as `run` drives it, briefly."""
    runs = 2  # the warm-up and one round
    with fresh_database("bench_refresh") as url:
        users = seed_users(url, runs * suite.CONNECTIONS * RESERVE_PER_CONNECTION)
        endpoint = suite._refresh_endpoint(url, users, rounds=runs - 1, scratch=tmp_path)
        environ = suite._environ(url, {}, kafka={})  # Auth emits no events: no broker
        with running_server(service_command("auth"), environ, pinned=False) as server:
            suite._drive(endpoint, server, 1, endpoint.requests.warmup)
            endpoint.rounds.append(suite._drive(endpoint, server, 1, endpoint.requests.rounds[0]))
        rotations = suite._rotations(endpoint, url)  # refuses a count the database denies
    figure = suite._figure(endpoint, None, rotations)
    assert (figure.key, figure.reference, figure.unit) == ("auth_refresh", "auth_login", "req/s")
    assert figure.value > 0
    assert endpoint.rounds[0].script_counts["rotated"] == endpoint.rounds[0].requests
    assert endpoint.sent > runs * suite.CONNECTIONS * RESERVE_PER_CONNECTION  # chained
    assert (figure.extra["non_200"], figure.extra["families_revoked"]) == (0, 0)
    spent = figure.extra["rotations_in_db"]
    assert isinstance(spent, int)
    assert endpoint.sent <= spent <= endpoint.sent + runs * suite.CONNECTIONS


@pytest.mark.server  # starts a process
def test_the_next_run_waits_until_the_server_drained_its_queue(tmp_path):
    """A server still busy after wrk stopped (queued logins) would slow the next endpoint."""
    busy_seconds = 1.0
    script = f"import time\nend = time.monotonic() + {busy_seconds}\n"
    script += "while time.monotonic() < end: pass\ntime.sleep(60)\n"
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        started = time.monotonic()
        wait_idle(Server("http://unused", process, tmp_path / "log"))
        waited = time.monotonic() - started
        assert process.poll() is None  # still running, but idle
    finally:
        process.kill()
        process.wait()
    assert busy_seconds * 0.5 < waited < busy_seconds + 5
