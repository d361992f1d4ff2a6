"""A test rig: drive the real core with synthetic readings through the replay path."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime

from monitor.core import gatt
from monitor.core.alarms import AlarmEvent
from monitor.core.codecs import battery, heart_rate, spotter_tilt
from monitor.core.codecs.heart_rate import Contact, HeartRateMeasurement
from monitor.core.engine import SafetyCore
from monitor.core.profiles import BUILTIN, Profile
from monitor.core.replay import replay
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.core.trace import End, InputKind, LinkChange, Notification, Record, UserInput

Curve = Callable[[float], float | None]
"""A value at each time; None means the sensor sends nothing then."""


def tilt_payload(
    seq: int,
    theta: float,
    accel_g: tuple[float, float, float] | None = None,
    gyro_dps: float | None = None,
) -> bytes:
    return spotter_tilt.encode(
        spotter_tilt.TiltMeasurement(
            seq=seq & 0xFFFF,
            sensor_ms=0,
            pitch_deg=round(theta, 2),
            accel_g=accel_g,
            gyro_dps=None if gyro_dps is None else (0.0, round(gyro_dps, 1), 0.0),
        )
    )


def hr_payload(bpm: int, contact: Contact = Contact.DETECTED) -> bytes:
    return heart_rate.encode(HeartRateMeasurement(bpm=bpm, contact=contact, wide=bpm > 255))


def tilt_stream(
    theta: Curve,
    until: float,
    hz: float = 50,
    accel: Callable[[float], float] | None = None,
    gyro: Curve | None = None,
    start: float = 0.0,
) -> Iterator[Record]:
    k = 0
    while (t := round(start + k / hz, 6)) <= until:
        k += 1
        value = theta(t)
        if value is None:
            continue
        a = None if accel is None else (0.0, 0.0, accel(t))
        g = None if gyro is None else gyro(t)
        yield Notification(t, "tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, value, a, g))


def hr_stream(bpm: Curve, until: float, every: float = 1.0, start: float = 0.5) -> Iterator[Record]:
    k = 0
    while (t := round(start + k * every, 6)) <= until:
        k += 1
        value = bpm(t)
        if value is None:
            continue
        yield Notification(t, "hr", gatt.HEART_RATE_MEASUREMENT, hr_payload(round(value)))


def battery_read(t: float, sensor: str, percent: int) -> Record:
    return Notification(
        t, sensor, gatt.BATTERY_LEVEL, battery.encode(battery.BatteryLevel(percent))
    )


def ack(t: float, alarm: str, by: str = "tester") -> Record:
    return UserInput(t, InputKind.ACKNOWLEDGE, alarm, by)


def press(t: float, kind: InputKind, alarm: str | None = None) -> Record:
    return UserInput(t, kind, alarm, None)


def link(t: float, sensor: str, up: bool) -> Record:
    return LinkChange(t, sensor, up)


def make_core(
    profile: Profile | str = "beginner",
    *,
    tilt: bool = True,
    hr: bool = True,
    age: float | None = None,
    started_at: datetime | None = None,
    day_inverted_before_s: float = 0.0,
) -> SafetyCore:
    sensors: dict[str, SensorSpec] = {}
    if tilt:
        sensors["tilt"] = SensorSpec(SensorKind.SPOTTER_TILT)
    if hr:
        sensors["hr"] = SensorSpec(SensorKind.HEART_RATE)
    chosen = BUILTIN[profile] if isinstance(profile, str) else profile
    return SafetyCore(
        sensors,
        chosen,
        age_years=age,
        started_at=started_at,
        day_inverted_before_s=day_inverted_before_s,
    )


def run(
    core: SafetyCore, *streams: Iterator[Record] | list[Record], until: float
) -> list[AlarmEvent]:
    """Merge the streams by time and replay them through the core, ending at ``until``."""
    import heapq

    merged = heapq.merge(*(iter(s) for s in streams), key=lambda r: r.t)
    return list(replay([*merged, End(until)], core))


def of(events: list[AlarmEvent], alarm_id: str) -> list[tuple[str, str, float]]:
    """(event, priority, t) of one alarm's events."""
    return [(e.event.value, e.priority.label, e.t) for e in events if e.id == alarm_id]


def ids(events: list[AlarmEvent]) -> set[str]:
    return {e.id for e in events}


def steady(value: float) -> Curve:
    return lambda t: value


def steps(*points: tuple[float, float | None]) -> Curve:
    """A step function: each (t, value) holds from t until the next point."""

    def curve(t: float) -> float | None:
        current: float | None = None
        for start, value in points:
            if t >= start:
                current = value
        return current

    return curve


def ramp(*points: tuple[float, float]) -> Curve:
    """Piecewise linear through the points."""

    def curve(t: float) -> float:
        if t <= points[0][0]:
            return points[0][1]
        for (t0, v0), (t1, v1) in itertools.pairwise(points):
            if t0 <= t <= t1:
                return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        return points[-1][1]

    return curve


def scenario_trace(name: str) -> bytes:
    """The trace of a shipped scenario, as `spotter sim trace NAME` writes it."""
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", "sim", "trace", name],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
