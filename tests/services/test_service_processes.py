"""The services as a user starts them: uvicorn processes configured only by environment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from child_process import running, wait_ready
from service_harness import JWT_SECRET, REDIS_URL

pytestmark = pytest.mark.usefixtures("redis_client")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, as Kubernetes sends; the server drains, shuts the app down and exits.

    uvicorn re-raises the signal after its graceful shutdown, so the status is -SIGTERM.
    """
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=25) in {0, -signal.SIGTERM}
    output = process.stdout.read() if process.stdout else ""
    assert "Application shutdown complete" in output, output
    return output


def environment(database_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "INFO",
    }


def test_eduscale_serve_runs_auth_and_stops_cleanly_on_sigterm(core_db: str) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "infra.cli",
        "serve",
        "auth",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with running(command, environment(core_db)) as process:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", process)
        registered = httpx.post(
            f"http://127.0.0.1:{port}/auth/register",
            json={
                "email": "proc@example.com",
                "password": "long enough password",
                "display_name": "P",
            },
            headers={"X-Request-ID": "req-from-test-1"},
            timeout=10,
        )
        assert registered.status_code == 201
        assert registered.headers["x-request-id"] == "req-from-test-1"
        output = stop(process)
    access = [line for line in output.splitlines() if '"req-from-test-1"' in line]
    assert len(access) == 1, output  # one JSON access line carries the caller's request id
    line = json.loads(access[0])
    assert line["path"] == "/auth/register"
    assert (line["status"], line["message"], line["service"]) == (201, "request", "auth")
    assert "long enough password" not in output


def test_uvicorn_runs_the_course_app_from_the_environment(core_db: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "services.course.app:app", "--port", str(port)]
    with running(command, environment(core_db)) as process:
        ready = wait_ready(f"http://127.0.0.1:{port}/health/ready", process)
        assert ready.json()["checks"] == {"writer": True, "redis": True}
        assert httpx.get(f"http://127.0.0.1:{port}/courses", timeout=5).json()["items"] == []
        stop(process)


@pytest.mark.parametrize("module", ["services.auth.app:app", "services.course.app:app"])
def test_a_missing_variable_stops_start_up_with_one_line(core_db: str, module: str) -> None:
    env = environment(core_db)
    del env["JWT_SECRET"]
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", module, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "JWT_SECRET" in line]
    assert errors == [
        "eduscale: configuration error: JWT_SECRET is not set: expected a random string of at least 32 characters"
    ]
    assert "Traceback" not in result.stderr


def test_serve_with_the_writer_unreachable_exits_at_once_with_one_line() -> None:
    dead = free_port()  # bound and released: nothing listens there
    env = environment(f"postgresql://postgres@127.0.0.1:{dead}/test")
    env["DATABASE_POOL_TIMEOUT_SECONDS"] = "1"
    command = [sys.executable, "-m", "infra.cli", "serve", "auth", "--port", str(free_port())]
    # psycopg's own wait is 30 s; the configured 1 s must be what bounds start-up.
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode != 0
    expected = (
        f"eduscale: cannot start auth: the writer database (DATABASE_URL, 127.0.0.1:{dead}/test)"
        " did not accept a connection within 1 s; is PostgreSQL running there, and does the"
        " database exist?"
    )
    assert result.stderr.strip().splitlines() == [expected]
    assert "Application startup complete" not in result.stdout
