"""The replay benchmark reports what it measured (its speed is for the README, not a test)."""

from __future__ import annotations

import pytest

from monitor.bench.runs import bench_replay


def test_bench_replay_measures_a_ten_minute_session() -> None:
    report = bench_replay(repeat=1)
    assert report["session_s"] == 600.0
    assert report["notifications"] == 60001 + 600  # tilt at 100 Hz, HR at 1 Hz
    assert report["realtime_factor"] == pytest.approx(600.0 / report["seconds"], rel=0.01)
    assert report["notifications_per_s"] > 0
