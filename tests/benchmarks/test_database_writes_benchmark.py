"""The write-cost suite runs the services' own write transactions, each really committed."""

from __future__ import annotations

import pytest

from benchmarks import database_writes

pytestmark = pytest.mark.server


def test_each_write_path_is_measured_and_the_costliest_is_named():
    figures = {figure.key: figure for figure in database_writes.run(quick=True)}
    paths = {key: f.value for key, f in figures.items() if key != "database_writes"}
    assert set(paths) == {"database_writes_quiz_attempt", "database_writes_refresh"}
    assert all(rate > 100 for rate in paths.values())  # transactions per CPU-second
    costliest = figures["database_writes"]
    assert costliest.value == min(paths.values())
    assert f"database_writes_{costliest.extra['path']}" in paths
