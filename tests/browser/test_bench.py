"""A short run of ``spotter bench dashboard``: its JSON has the shape the CLI prints, and
every event reached every page. The latencies are figures for the README, not judged here:
the suite must pass while other processes keep the cores busy."""

from __future__ import annotations

import json

import pytest

from monitor.bench.dashboard import bench_dashboard, percentile

pytestmark = pytest.mark.browser


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7


@pytest.mark.timeout(120)
def test_short_bench_reports_p50_and_p99_per_client_count() -> None:
    result = bench_dashboard(clients=(1, 3), duration_s=17, speed=2, period_s=3)
    json.dumps(result)  # it is printed as JSON
    assert result["benchmark"] == "dashboard"
    assert result["unit"] == "ms"
    assert [run["clients"] for run in result["runs"]] == [1, 3]
    for run in result["runs"]:
        assert run["events"] >= 3, run
        assert run["missing"] == 0, run
        assert run["samples"] == run["events"] * run["clients"]
        assert 0 <= run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], run
