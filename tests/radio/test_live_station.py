"""The station's real BLE path (bleak + bleak-retry-connector) against simulated sensors.

Every shipped scenario runs live over the in-process virtual radio (at its ``[live]`` speed)
and its alarms must match the replay of the trace the live run recorded.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import pytest

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.radio import Radio
from firmware_sim.scenario import Scenario, TiltSensorSpec, builtin_names, load_scenario
from monitor.alarms import AlarmEvent
from monitor.ble.backend import BleBackend
from monitor.ble.link import LinkStatus, SensorLink
from monitor.config import BleConfig, SensorConfig
from monitor.core import SafetyCore
from monitor.gatt import BATTERY_LEVEL
from monitor.profiles import BUILTIN
from monitor.replay import core_for, replay
from monitor.sensors import SensorKind, SensorSpec
from monitor.simrun import run_simulation, source_of
from monitor.station import Station, StationClock
from monitor.trace import LinkChange, Notification, TraceReader

pytestmark = pytest.mark.radio


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
    """The declared alarms appear in order; anything extra is a signal-lost alarm."""
    live = iter(got)
    extra = []
    for want in declared:
        for event in live:
            if event == want:
                break
            extra.append(event)
        else:
            raise AssertionError(f"declared {want} missing from {got}")
    extra += list(live)
    assert all(alarm.endswith("signal_lost") for alarm, _, _ in extra), extra


BATTERY = str(BATTERY_LEVEL)


def notifications(path: Path, sensor: str) -> list[Notification]:
    """The readings of ``sensor`` in a trace (not its battery level)."""
    with open(path, encoding="utf-8") as fh:
        return [
            r
            for r in TraceReader(fh, str(path))
            if isinstance(r, Notification) and r.sensor == sensor and r.char != BATTERY
        ]


KEPT_PACE_S = 0.3
"""Readings at most this late on the station's clock: the run played the scenario as written."""


def lateness_s(trace: Path, origin: float, scenario: Scenario) -> float:
    """How late, at most, the scenario's tilt readings reached the station, on its clock.

    The station's clock runs at the scenario's speed whatever the machine does; a busy machine
    only delivers readings late (20x faster, a loop held up 50 ms is a reading 1 s late), and
    the station then rightly alarms on what it got (the replay of its trace says the same).
    Judged on the tilt stream (10-100 Hz), reading by reading (matched by their bytes); a
    heart-rate strap repeats its last value, which says less. Infinite if no reading could
    be matched (a sensor whose frames the radio splits): then the pace is not known.
    """
    tilts = {n for n, s in scenario.model.sensors.items() if isinstance(s, TiltSensorSpec)}
    sent: dict[tuple[str, str], list[Notification]] = defaultdict(list)
    for record in source_of(scenario).records():
        if isinstance(record, Notification) and record.sensor in tilts and record.char != BATTERY:
            sent[(record.sensor, record.char)].append(record)
    done = dict.fromkeys(sent, 0)
    late = -math.inf
    with open(trace, encoding="utf-8") as fh:
        for got in TraceReader(fh, str(trace)):
            if not isinstance(got, Notification) or (got.sensor, got.char) not in sent:
                continue  # heart rate, and the battery (read at every connect)
            queue, first = sent[(got.sensor, got.char)], done[(got.sensor, got.char)]
            at = got.t - origin
            # The latest reading not yet matched with these bytes, sent by then (the origin is
            # taken as the player starts: allow it to lag the player a little).
            last = first
            while last < len(queue) and queue[last].t <= at + 0.5:
                last += 1
            match = next(
                (i for i in range(last - 1, first - 1, -1) if queue[i].data == got.data), None
            )
            if match is None:
                continue  # not one of the scenario's frames as such (split by the radio)
            late = max(late, at - queue[match].t)
            done[(got.sensor, got.char)] = match + 1
    return late if math.isfinite(late) else math.inf


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
    assert key(run.events) == key(again)
    for live, rep in zip(run.events, again, strict=True):
        assert abs(live.t - rep.t) <= 0.3, (live, rep)
    # The radio carried the scenario's readings faithfully (whatever the load), and when they
    # came on time by the station's clock, its declared alarms came, in order. At these speeds
    # a loaded machine can hold the loop up long enough for a sensor to look silent for a
    # moment (the replay above agrees that it did); only such signal-lost alarms may be extra.
    if lateness_s(run.trace_path, run.origin, scenario) <= KEPT_PACE_S:
        assert_declared(
            key(run.events), [(x.id, x.event.value, x.priority) for x in scenario.model.expect]
        )
    malformed = sum(s.malformed for s in run.station.core.stats.sensors.values())  # type: ignore[union-attr]
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
    # The sensor dropped the link at scenario t = 25 s and came back at 40 s: never earlier,
    # and on time when the readings reached the station on time (a busy machine is late).
    assert down[0] >= 25
    assert up[1] >= 40
    if lateness_s(run.trace_path, origin, scenario) <= KEPT_PACE_S:
        assert down[0] <= 25 + 0.5
        assert up[1] <= 40 + 10
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
            from monitor.trace import InputKind

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
        [sys.executable, "-m", "monitor.cli", "run", "--sim", "symptom", "--json", "--speed", "8"],
        capture_output=True,
        timeout=100,
        env=env,
    )
    assert result.returncode == 0, result.stderr.decode()
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    (trace,) = tmp_path.glob("traces/*.jsonl")
    found = re.search(r"scenario time 0 = station time ([0-9.]+) s", result.stderr.decode())
    assert found is not None, result.stderr.decode()
    scenario = load_scenario("symptom")
    expected = scenario.model.expect
    # The user's inputs are played on the scenario's clock; the alarms are judged there when
    # the station kept pace with the scenario (on its own clock: see lateness_s).
    if lateness_s(trace, float(found.group(1)), scenario) <= KEPT_PACE_S:
        assert_declared(
            [(e["id"], e["event"], e["priority"]) for e in events],
            [(x.id, x.event.value, x.priority) for x in expected],
        )
        symptom = [e for e in events if e["id"] == "user.symptom"]
        for e, x in zip(symptom, expected, strict=True):
            assert abs(e["t"] - x.t) <= 0.5
    else:  # late, but the user's STOP still raised its alarm
        assert ("user.symptom", "raised") in [(e["id"], e["event"]) for e in events]
