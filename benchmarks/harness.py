"""The test harness's real backing services, reused by the benchmarks.

Fresh PostgreSQL databases (migrated, dropped afterwards), the Redis database and the
Tansu broker are set up exactly as the tests set them up (`tests/service_harness.py`,
`tests/kafka_broker.py`), so `TEST_POSTGRES_URL` and `TEST_REDIS_URL` choose them here
too. The benchmarks FLUSH the Redis database of `TEST_REDIS_URL` (default db 9).
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from kafka_broker import Broker  # noqa: E402
from service_harness import (  # noqa: E402
    JWT_SECRET,
    POSTGRES_URL,
    REDIS_URL,
    database_url,
    flushed_redis,
    fresh_database,
)

__all__ = [
    "JWT_SECRET",
    "POSTGRES_URL",
    "REDIS_URL",
    "Broker",
    "database_url",
    "flushed_redis",
    "fresh_database",
]
