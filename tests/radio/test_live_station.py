"""The station's real BLE path (bleak + bleak-retry-connector) against simulated sensors.

Every shipped scenario runs live over the in-process virtual radio (at its ``[live]`` speed)
and its alarms must match the replay of the trace the live run recorded, and the scenario's
declared alarms exactly. The player drives the station's clock (lock-step), so how busy the
machine is changes how long a run takes, never what the station sees.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.generate import records as records_of
from firmware_sim.radio import Radio
from firmware_sim.scenario import Scenario, builtin_names, load_scenario
from monitor.ble.backend import BleBackend
from monitor.ble.link import LinkStatus, SensorLink
from monitor.core.alarms import AlarmEvent
from monitor.core.engine import SafetyCore
from monitor.core.gatt import BATTERY_LEVEL
from monitor.core.profiles import BUILTIN
from monitor.core.replay import core_for, replay
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.core.trace import LinkChange, Notification, TraceReader
from monitor.settings import BleConfig, SensorConfig
from monitor.station.simrun import run_simulation, source_of
from monitor.station.station import Station, StationClock

pytestmark = pytest.mark.radio
RECONNECT_S = 2.0
"""Real seconds a simulated sensor's reconnect may take on a busy machine (scan, connect,
discovery); the only real time that shows in a lock-step run's station time."""


def replayed(path: Path, scenario_name: str) -> list[AlarmEvent]:
    scenario = load_scenario(scenario_name)
    with open(path, encoding="utf-8") as fh:
        reader = TraceReader(fh, str(path))
        core = core_for(reader, scenario.profile, scenario.model.age)
        return list(replay(reader, core))


def link_changes(path: Path, sensor: str) -> list[LinkChange]:
    with open(path, encoding="utf-8") as fh:
        return [
            r
            for r in TraceReader(fh, str(path))
            if isinstance(r, LinkChange) and r.sensor == sensor
        ]


def assert_declared(got: list[tuple[str, str, str]], declared: list[tuple[str, str, str]]) -> None:
    """A live run raised exactly the declared alarm events, in order: nothing missing, nothing
    extra (lock-step time: a loaded machine cannot make a sensor look silent)."""
    assert got == declared, f"live {got}\ndeclared {declared}"


def assert_on_time(events: list[AlarmEvent], scenario: Scenario, origin: float) -> None:
    """Each live event at its declared time (scenario seconds) within the scenario's
    tolerance. A scenario whose link drops and comes back may be later by the real time a
    reconnect takes (scan, connect, discovery: ``RECONNECT_S`` at its speed), from then on."""
    records = records_of(scenario)
    reconnect = min(
        (r.t for r in records if isinstance(r, LinkChange) and r.connected and r.t > 0),
        default=None,
    )
    slack = 0.0
    for event, want in zip(events, scenario.model.expect, strict=True):
        if reconnect is not None and want.t >= reconnect:
            slack = RECONNECT_S * scenario.model.live.speed
        assert want.t - scenario.model.tolerance_s <= event.t - origin, (event, want)
        assert event.t - origin <= want.t + scenario.model.tolerance_s + slack, (event, want)


BATTERY = str(BATTERY_LEVEL)


def notifications(path: Path, sensor: str) -> list[Notification]:
    """The readings of ``sensor`` in a trace (not its battery level)."""
    with open(path, encoding="utf-8") as fh:
        return [
            r
            for r in TraceReader(fh, str(path))
            if isinstance(r, Notification) and r.sensor == sensor and r.char != BATTERY
        ]


def key(events: list[AlarmEvent]) -> list[tuple[str, str, str]]:
    return [(e.id, e.event.value, e.priority.label) for e in events]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.asyncio
@pytest.mark.parametrize("name", builtin_names())
async def test_live_alarms_match_the_replay_of_the_recorded_trace(
    name: str, tmp_path: Path
) -> None:
    scenario = load_scenario(name).live_variant()
    run = await run_simulation(
        source_of(scenario),
        profile=scenario.profile,
        age_years=scenario.model.age,
        data_dir=tmp_path,
        speed=scenario.model.live.speed,
    )
    assert run.trace_path is not None
    assert run.origin is not None
    again = replayed(run.trace_path, name)
    assert [(*k, e.t) for k, e in zip(key(run.events), run.events, strict=True)] == [
        (*k, e.t) for k, e in zip(key(again), again, strict=True)
    ]
    # The radio carried the scenario faithfully: its declared alarms, in order, on time.
    assert_declared(
        key(run.events), [(x.id, x.event.value, x.priority) for x in scenario.model.expect]
    )
    assert_on_time(run.events, scenario, run.origin)
    assert run.play is not None
    assert run.play.written_off == 0
    assert run.station is not None
    malformed = sum(s.malformed for s in run.station.core.stats.sensors.values())
    assert malformed == scenario.model.expect_stats.get("malformed", 0)


@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_disconnect_mid_inversion_alarms_2_s_after_the_last_reading_and_reconnects(
    tmp_path: Path,
) -> None:
    scenario = load_scenario("tilt-disconnect")
    speed = 4.0
    run = await run_simulation(
        source_of(scenario),
        profile=scenario.profile,
        age_years=None,
        data_dir=tmp_path,
        speed=speed,
    )
    assert run.trace_path is not None
    assert run.origin is not None
    origin = run.origin
    lost = [e for e in run.events if e.id == "tilt.signal_lost"]
    assert [(e.event.value, e.priority.label) for e in lost][:3] == [
        ("raised", "medium"),
        ("escalated", "high"),
        ("cleared", "high"),
    ]
    # Judged on the station's clock, whatever the load: raised 2 s after the last reading the
    # station got (on its 0.1 s grid), cleared by the first reading after the link came back.
    assert lost[0].value is not None
    assert 2.0 <= lost[0].value <= 2.0 + 0.1 + 1e-6
    links = link_changes(run.trace_path, "tilt")
    down = [r.t - origin for r in links if not r.connected]
    up = [r.t - origin for r in links if r.connected]
    assert len(down) == 2
    assert len(up) == 2
    readings = [r.t - origin for r in notifications(run.trace_path, "tilt")]
    cleared = lost[2].t - origin
    first_back = min(t for t in readings if t >= up[1])
    assert first_back <= cleared <= first_back + 0.1 + 1e-6  # readings flow: it clears at once
    # The sensor dropped the link at scenario t = 25 s (lock-step time: exactly then, whatever
    # the load) and came back at 40 s; the reconnect itself takes real time (back-off, scan).
    assert 25 <= down[0] <= 25 + 0.5
    assert up[1] >= 40
    assert lost[-2:][0].event.value == "acknowledged"  # latched (high) until acknowledged


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_an_absent_sensor_keeps_the_station_searching_responsive_and_stoppable(
    tmp_path: Path,
) -> None:
    ble = BleConfig(backend="sim", scan_timeout_s=0.3, connect_timeout_s=0.5, max_backoff_s=0.2)
    async with Radio() as radio:
        sim = await SimBackend.on_radio(radio)
        try:
            backend = BleBackend(sim.scanner_class, sim.client_class)
            sensors = {"tilt": SensorSpec(SensorKind.SPOTTER_TILT)}
            core = SafetyCore(sensors, BUILTIN["beginner"])
            station = Station(core, StationClock())
            link = SensorLink(
                "tilt", SensorConfig(kind=SensorKind.SPOTTER_TILT), ble, backend, station
            )
            stop = asyncio.Event()
            running = asyncio.create_task(station.run([link], stop))
            from monitor.core.trace import InputKind

            await asyncio.sleep(1.5)
            station.user_input(InputKind.SESSION_START)
            await asyncio.sleep(2.5)
            assert link.state.status is LinkStatus.SEARCHING
            assert core.t >= 3.5  # the safety loop kept ticking
            assert "tilt.signal_lost" in core.alarms.alarms  # silence is an alarm, in a session
            stop.set()
            await asyncio.wait_for(running, timeout=5)
        finally:
            await sim.close()


@pytest.mark.timeout(120)
def test_spotter_run_sim_json_prints_alarms_in_scenario_time(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"SPOTTER_STATION__DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli.main",
            "run",
            "--sim",
            "symptom",
            "--json",
            "--speed",
            "8",
        ],
        capture_output=True,
        timeout=100,
        env=env,
    )
    assert result.returncode == 0, result.stderr.decode()
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    expected = load_scenario("symptom").model.expect
    assert_declared(
        [(e["id"], e["event"], e["priority"]) for e in events],
        [(x.id, x.event.value, x.priority) for x in expected],
    )
    symptom = [e for e in events if e["id"] == "user.symptom"]
    tolerance_s = load_scenario("symptom").model.tolerance_s
    for e, x in zip(symptom, expected, strict=True):
        assert abs(e["t"] - x.t) <= tolerance_s
    assert list(tmp_path.glob("traces/*.jsonl"))
