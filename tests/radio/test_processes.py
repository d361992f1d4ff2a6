"""The station as real life runs it: radio hub, sensors and daemon as separate processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from monitor.core.trace import End, LinkChange, TraceReader
from tests.radio.conftest import SPOTTER, env, write_config

pytestmark = [pytest.mark.radio, pytest.mark.slow]

SCENARIO = """\
name = "xproc"
description = "a short hold past a 5 s limit"
duration_s = 16
profile = { base = "beginner", max_hold_s = 5 }
theta = [[0, 0], [2, 0], [4, 25], [10, 25], [11, 0], [16, 0]]
hr = [[0, 70], [16, 70]]

[sensors.tilt]
kind = "spotter_tilt"
rate_hz = 50

[sensors.hr]
kind = "heart_rate"
"""


def trace_of(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "traces").glob("xproc-*.jsonl")
    return path


@pytest.mark.timeout(120)
def test_hub_sensors_and_daemon_as_three_processes(tmp_path: Path, hub: int) -> None:
    scenario = tmp_path / "xproc.toml"
    scenario.write_text(SCENARIO)
    profile = tmp_path / "short.toml"
    profile.write_text('base = "beginner"\nmax_hold_s = 5\n')
    sensors = subprocess.Popen(
        [*SPOTTER, "sim", "run", str(scenario), "--hub", str(hub)],
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        daemon = subprocess.run(
            [
                *SPOTTER,
                "run",
                "--config",
                str(write_config(tmp_path, hub, str(profile))),
                "--json",
                "--for",
                "22",
            ],
            capture_output=True,
            timeout=90,
            env=env(),
        )
        assert daemon.returncode == 0, daemon.stderr.decode()
        _, err = sensors.communicate(timeout=30)
    finally:
        sensors.kill()
        sensors.wait()
        assert sensors.stderr is not None
        sensors.stderr.close()
    assert sensors.returncode == 0, err.decode()
    events = [json.loads(line) for line in daemon.stdout.decode().splitlines()]
    hold = [(e["event"], e["priority"]) for e in events if e["id"] == "inversion.hold_limit"]
    assert hold[:3] == [("raised", "medium"), ("cleared", "medium"), ("resolved", "medium")]
    with open(trace_of(tmp_path), encoding="utf-8") as fh:
        records = list(TraceReader(fh, "trace"))
    assert {r.sensor for r in records if isinstance(r, LinkChange) and r.connected} == {
        "tilt",
        "hr",
    }
    assert isinstance(records[-1], End)
    assert "notifications delivered" in err.decode()


@pytest.mark.timeout(60)
def test_absent_sensors_daemon_keeps_searching_and_exits_cleanly_on_sigterm(
    tmp_path: Path, hub: int
) -> None:
    daemon = subprocess.Popen(
        [*SPOTTER, "run", "--config", str(write_config(tmp_path, hub)), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "spotter.db").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # several scans come up empty meanwhile
        assert daemon.poll() is None, "the daemon must keep running without its sensors"
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=15)
    finally:
        daemon.kill()
        daemon.wait()
    assert daemon.returncode == 0, err.decode()
    assert out == b""  # no session: a missing sensor is status, not an alarm
    assert not list((tmp_path / "traces").glob("*.jsonl"))  # traces are per session
    from monitor.store.station_store import Store

    store = Store.open(tmp_path / "spotter.db")
    try:
        assert store.sessions() == []
    finally:
        store.close()


@pytest.mark.timeout(60)
def test_bench_live_reports_what_it_measured() -> None:
    from monitor.bench.runs import bench_live

    report = bench_live(10)
    assert report["notifications_per_s"] > 50  # tilt at 100 Hz reached the daemon
    assert report["alarm_events_measured"] >= 1
    assert (
        0
        < report["latency_ms"]["p50"]
        <= report["latency_ms"]["p99"]
        <= report["latency_ms"]["max"]
    )
    assert report["cpu_percent_of_one_core"] > 0
    assert report["peak_rss_mb"] > 0
