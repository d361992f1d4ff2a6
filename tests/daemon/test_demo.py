"""The demo's ending, as the README runs it (``spotter run --sim ... --stay``): after the
scenario the simulated person steps off, the session ends, the sensors keep streaming a calm
upright state, and the station stays quiet; a browser that hangs up and the shutdown leave
no pending task behind. Then ``spotter history --sim`` shows the demo's session.

A real ``spotter`` process (its real BLE code against simulated sensors on the in-process
virtual radio), a real HTTP client on its dashboard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from dashboard.auth import COOKIE
from monitor.bench.harness import SimDaemon, scenario_toml

SPOTTER = [sys.executable, "-m", "monitor.cli.main"]
DURATION_S = 30.0
CALM_S = 150.0
"""Station seconds to watch after the scenario: at speed 20 that is at least 7.5 s of real
time, longer than the 5 s after which a silent sensor's link is logged and rescanned."""
ENOUGH_S = 120.0
"""Generous real-time bounds for a loaded machine; the test waits on events, not on these."""


def wait_state(client: httpx.Client, until: Any) -> dict[str, Any]:
    """Poll the station's state until ``until(state)``; the station's own clock decides."""
    deadline = time.monotonic() + ENOUGH_S
    while True:
        state: dict[str, Any] = client.get("/api/state").raise_for_status().json()
        if until(state):
            return state
        assert time.monotonic() < deadline, f"state never came: {state}"
        time.sleep(0.2)


def test_the_demo_ends_quiet_with_a_finished_session(tmp_path: Path) -> None:
    scenario = tmp_path / "short.toml"
    theta = [(0.0, 0.0), (3.0, 0.0), (6.0, 20.0), (18.0, 20.0), (21.0, 0.0), (DURATION_S, 0.0)]
    scenario.write_text(scenario_toml("short", duration_s=DURATION_S, theta=theta, tilt_rate_hz=50))
    data = tmp_path / "data"
    with SimDaemon(scenario, data, speed=20, stay=True) as daemon:
        url = daemon.start(timeout_s=ENOUGH_S)
        with httpx.Client(base_url=daemon.base_url, timeout=30) as client:
            paired = client.get(url)
            assert paired.status_code == 303, paired.text
            client.cookies.set(COOKIE, paired.cookies[COOKIE])
            for _ in range(2):  # a browser that opens the live stream and hangs up
                with client.stream("GET", "/api/stream") as stream:
                    assert stream.status_code == 200
                    for line in stream.iter_lines():
                        if line.startswith("data:"):
                            break
            inverted = wait_state(client, lambda s: s["phase"] == "inverted")
            origin = inverted["t"] - 6.0  # station time of the scenario's 0, to within a step
            calm = wait_state(client, lambda s: s["t"] >= origin + DURATION_S + CALM_S)
        code = daemon.stop(signal.SIGINT, timeout_s=ENOUGH_S)
        log = daemon.stderr()
        events = [line.event for line in daemon.lines()]

    assert code == 0, log
    assert calm["phase"] == "idle", calm  # the session was ended, not left open
    assert calm["alarms"] == [], calm
    assert calm["theta_deg"] is not None, calm
    assert abs(calm["theta_deg"]) < 1, calm
    assert calm["hr_bpm"] == 70, calm
    assert {s["name"]: s["link"] for s in calm["sensors"]} == {
        "tilt": "streaming",
        "hr": "streaming",
    }, calm
    assert not [e for e in events if e["id"].endswith("signal_lost")], events
    # no pending-task dump, no crash, no silent sensor being reconnected over and over, and
    # the pairing URL printed as information (not a WARNING); a write-off the player reports
    # when the machine stalls for seconds is a real warning and may appear
    for bad in ("Task was destroyed", "Traceback", "ERROR", "no data for", "WARNING dashboard"):
        assert bad not in log, log
    assert "Dashboard: http://127.0.0.1:" in log

    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    env["SPOTTER_CONFIG"] = str(data / "spotter.toml")
    env["SPOTTER_STATION__DATA_DIR"] = str(data)
    env["COLUMNS"] = "200"  # one table row per session
    history = subprocess.run(
        [*SPOTTER, "history", "--sim"], capture_output=True, text=True, env=env, timeout=60
    )
    assert history.returncode == 0, history.stderr
    sessions = [r for r in history.stdout.splitlines() if r.startswith("│ 1 ")]
    assert len(sessions) == 1, history.stdout
    assert "ended by the user" in sessions[0], history.stdout  # by the demo's closing step
    assert "20°" in sessions[0], history.stdout
    real = subprocess.run(
        [*SPOTTER, "history"], capture_output=True, text=True, env=env, timeout=60
    )
    assert real.returncode == 0, real.stderr
    assert not [r for r in real.stdout.splitlines() if r.startswith("│ 1 ")], real.stdout
