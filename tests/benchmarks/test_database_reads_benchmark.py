"""The read-cost suite measures the services' own queries, and only its own backends."""

from __future__ import annotations

import pytest

from benchmarks import database_reads

pytestmark = pytest.mark.server


def test_each_read_path_is_measured_and_the_costliest_is_the_plans_figure():
    figures = {figure.key: figure for figure in database_reads.run(quick=True)}
    paths = {key: f.value for key, f in figures.items() if key != "database_reads"}
    assert set(paths) == {
        "database_reads_course",
        "database_reads_catalogue",
        "database_reads_profile",
    }
    assert all(rate > 100 for rate in paths.values())  # queries per CPU-second of a core
    costliest = figures["database_reads"]
    assert costliest.value == min(paths.values())
    assert f"database_reads_{costliest.extra['path']}" in paths
