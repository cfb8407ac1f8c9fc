"""A bad setting stops every entry point at start: exit code 2, one stderr line naming it.

Each case is a real process, started as a pod or a developer starts it, with an otherwise
complete environment, so the one bad variable is what stops it (before any connection).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR

# Each case starts the real entry point as its own process.
pytestmark = pytest.mark.server

CORE = {
    "DATABASE_URL": "postgresql://app@127.0.0.1:1/eduscale",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "JWT_SECRET": "k" * 40,
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
}
CLI = [sys.executable, "-m", "infra.cli"]
UPSTREAMS = "auth=http://127.0.0.1:1,course=http://127.0.0.1:2,ai-orchestrator=http://127.0.0.1:3"


@pytest.mark.parametrize(
    ("command", "bad", "expected"),
    [
        (
            [*CLI, "worker", "generation"],
            {"GENERATION_MAX_ATTEMPTS": "2.9"},
            "GENERATION_MAX_ATTEMPTS='2.9' is not allowed: use a whole number from 1 to 50",
        ),
        (
            [*CLI, "worker", "indexer"],
            {"HEALTH_PORT": "abc"},
            "HEALTH_PORT='abc' is not allowed: use a whole number from 0 to 65535",
        ),
        (
            [*CLI, "worker", "analytics"],
            {"HEALTH_PORT": "abc"},
            "HEALTH_PORT='abc' is not allowed: use a whole number from 0 to 65535",
        ),
        (
            [*CLI, "serve", "ai-orchestrator"],
            {"OPENAI_EMBEDDING_DIMENSIONS": "300.7"},
            "OPENAI_EMBEDDING_DIMENSIONS='300.7' is not allowed: use a whole number from 8 to 3072",
        ),
        (
            [*CLI, "serve", "auth"],
            {"DATABASE_POOL_MAX_SIZE": "0"},
            "DATABASE_POOL_MAX_SIZE='0' is not allowed: use a whole number from 1 to 200",
        ),
        (
            [*CLI, "serve", "course"],
            {"JWT_SECRET": ""},
            "JWT_SECRET is not set: expected a random string of at least 32 characters",
        ),
        (
            [*CLI, "migrate"],
            {"DATABASE_MASTER_SECRET_ARN": "secret"},
            (
                "DATABASE_MASTER_SECRET_ARN='secret' is not allowed: use a Secrets Manager ARN "
                "(arn:aws:secretsmanager:...)"
            ),
        ),
        (
            [sys.executable, "-m", "services.gateway"],
            {"GATEWAY_UPSTREAMS": UPSTREAMS, "GATEWAY_MAX_BODY_MB": "2.9"},
            "GATEWAY_MAX_BODY_MB='2.9' is not allowed: use a whole number from 1 to 1000000",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bad_setting_stops_the_process_with_one_line(
    command: list[str], bad: dict[str, str], expected: str
) -> None:
    env = {"PATH": os.environ["PATH"], **CORE, **bad}
    result = subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # one line: no traceback, no log noise
    assert line.endswith(expected)
