"""The fast lane (`scripts/check --fast`) leaves out every test that needs a server."""

import os
import subprocess
import sys

import pytest
import redis
from lanes import SERVER_MARK, WITHOUT_SERVERS, ProcessGuard, require_servers


def test_a_test_that_takes_a_server_fixture_is_in_the_server_lane(
    request: pytest.FixtureRequest, redis_client: redis.Redis
) -> None:
    assert redis_client.ping()
    assert request.node.get_closest_marker(SERVER_MARK) is not None


def test_a_test_without_one_is_in_the_fast_lane(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker(SERVER_MARK) is None


def test_in_the_fast_lane_starting_a_server_names_the_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WITHOUT_SERVERS, "1")
    with pytest.raises(RuntimeError, match=r"needs PostgreSQL.*mark it @pytest\.mark\.server"):
        require_servers("PostgreSQL")
    monkeypatch.delenv(WITHOUT_SERVERS)
    require_servers("PostgreSQL")  # in the full lane: nothing to refuse


def test_in_the_fast_lane_starting_a_process_during_a_test_names_the_mark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guard = ProcessGuard()
    guard("subprocess.Popen", ("eduscale", ["eduscale"]))  # not armed: allowed
    monkeypatch.setenv(WITHOUT_SERVERS, "1")
    with guard.arming(), pytest.raises(RuntimeError, match=r"process of its own"):
        guard("subprocess.Popen", ("eduscale", ["eduscale", "preview"]))
    guard("subprocess.Popen", ("eduscale", ["eduscale"]))  # disarmed after the test
    with guard.arming():
        guard("open", ("file", "r"))  # other events pass


def test_the_fast_lane_refuses_a_real_process_for_an_unmarked_test() -> None:
    # This test runs in both lanes; in the fast lane the guard is armed around it.
    if not os.environ.get(WITHOUT_SERVERS):
        pytest.skip("runs in the fast lane only (scripts/check --fast)")
    with pytest.raises(RuntimeError, match=r"mark it @pytest\.mark\.server"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
