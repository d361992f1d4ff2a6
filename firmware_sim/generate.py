"""Turns a scenario into a time-ordered stream of trace records, through the real encoders.

The stream is what the sensors would send and the user would do: notifications with their
bytes, link changes, inputs, the end marker. ``spotter sim trace`` writes it as a trace; the
simulated peripherals play the same stream over the virtual radio. It is produced lazily, so
a long scenario never sits whole in memory.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from typing import TextIO

import numpy as np
import numpy.typing as npt

from firmware_sim.scenario import Fault, HeartRateSensorSpec, Scenario, TiltSensorSpec
from monitor.core import gatt
from monitor.core.codecs import battery, heart_rate, spotter_tilt, witmotion
from monitor.core.codecs.heart_rate import Contact, HeartRateMeasurement
from monitor.core.sensors import Calibration, SensorKind, SensorSpec
from monitor.core.trace import (
    End,
    LinkChange,
    Notification,
    Record,
    TraceHeader,
    TraceWriter,
    UserInput,
)

CHUNK = 2000
HR_FIRST_S = 0.5
FREEFALL_FRACTION_G = 0.2
SPLIT_SIZES = (13, 20, 7, 20, 16, 4, 20, 11)
"""Sizes WitMotion notifications are cut to, cycling, when a scenario splits frames."""


def calibration_of(spec: TiltSensorSpec) -> Calibration:
    """The station calibration a scenario's tilt sensor declares."""
    c = spec.calibration
    axis = c.axis or ("pitch" if spec.kind == "spotter_tilt" else "y")
    return Calibration(c.offset_deg, c.sign, axis)


def header_of(scenario: Scenario) -> TraceHeader:
    """The trace header for a scenario's station."""
    sensors: dict[str, SensorSpec] = {}
    for name, spec in scenario.model.sensors.items():
        if isinstance(spec, TiltSensorSpec):
            sensors[name] = SensorSpec(SensorKind(spec.kind), calibration_of(spec))
        else:
            sensors[name] = SensorSpec(SensorKind.HEART_RATE)
    m = scenario.model
    extra = {"scenario": m.name}
    return TraceHeader(sensors, m.station, m.started_at, extra)


def _windows(faults: list[Fault], kind: str) -> list[tuple[float, float]]:
    return [
        (f.start, f.end)
        for f in faults
        if f.kind == kind
        if f.start is not None and f.end is not None
    ]


def _inside(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in windows)


class _Curve:
    """Piecewise-linear values over time, and their slope."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.t = np.array([p[0] for p in points], dtype=float)
        self.v = np.array([p[1] for p in points], dtype=float)

    def at(self, times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = np.interp(times, self.t, self.v)
        return out

    def slope(self, times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if len(self.t) < 2:
            return np.zeros_like(times)
        dt = np.diff(self.t)
        dv = np.diff(self.v)
        seg_slope = np.divide(dv, dt, out=np.zeros_like(dv), where=dt > 0)
        idx = np.clip(np.searchsorted(self.t, times, side="right") - 1, 0, len(seg_slope) - 1)
        out: npt.NDArray[np.float64] = np.where(
            (times >= self.t[0]) & (times < self.t[-1]), seg_slope[idx], 0.0
        )
        return out


def _link_records(
    name: str, stream_char: str, faults: list[Fault], battery_percent: int | None
) -> list[Record]:
    """Link changes, battery reads and injected raw payloads of one sensor."""

    def battery_read(t: float) -> list[Record]:
        if battery_percent is None:
            return []
        level = battery.encode(battery.BatteryLevel(battery_percent))
        return [Notification(t, name, gatt.BATTERY_LEVEL, level)]

    out: list[Record] = [LinkChange(0.0, name, True), *battery_read(0.0)]
    for start, end in sorted(_windows(faults, "disconnect")):
        out += [LinkChange(start, name, False), LinkChange(end, name, True), *battery_read(end)]
    for f in faults:
        if f.kind == "battery" and f.t is not None and f.percent is not None:
            out.append(
                Notification(
                    f.t, name, gatt.BATTERY_LEVEL, battery.encode(battery.BatteryLevel(f.percent))
                )
            )
        elif f.kind == "malformed" and f.t is not None and f.hex is not None:
            out.append(Notification(f.t, name, stream_char, bytes.fromhex(f.hex)))
    return sorted(out, key=lambda r: r.t)


def _quiet(t: float, faults: list[Fault]) -> bool:
    """True when the sensor sends nothing at ``t`` (silent or disconnected)."""
    return _inside(t, _windows(faults, "silence")) or _inside(t, _windows(faults, "disconnect"))


def _gravity(angle_deg: float, axis: int, magnitude: float) -> tuple[float, float, float]:
    a = math.radians(angle_deg)
    s, c = math.sin(a) * magnitude, math.cos(a) * magnitude
    if axis == 0:
        return (0.0, s, c)
    if axis == 1:
        return (s, 0.0, c)
    return (c, s, 0.0)


def _accel_magnitude(t: float, impacts: list[Fault], glitch: Fault | None) -> float:
    if glitch is not None and glitch.accel_g is not None:
        return glitch.accel_g
    for f in impacts:
        assert f.t is not None
        if f.t <= t < f.t + f.freefall_s:
            return FREEFALL_FRACTION_G
        if f.t + f.freefall_s <= t < f.t + f.freefall_s + f.peak_s:
            return f.peak_g
    return 1.0


def _tilt_samples(
    scenario: Scenario, spec: TiltSensorSpec, faults: list[Fault]
) -> Iterator[tuple[float, float, float, tuple[float, float, float], bool]]:
    """(t, sensor angle, sensor angular rate, acceleration, dropped) per sample."""
    m = scenario.model
    cal = calibration_of(spec)
    theta = _Curve(m.theta)
    rng = np.random.default_rng(m.seed)
    period = 1.0 / spec.rate_hz
    n = math.floor(m.duration_s * spec.rate_hz + 1e-9) + 1
    glitches = {round(f.t / period): f for f in faults if f.kind == "glitch" and f.t is not None}
    impacts = [f for f in faults if f.kind == "impact"]
    loss = [f for f in faults if f.kind == "packet_loss"]
    for start in range(0, n, CHUNK):
        k = np.arange(start, min(n, start + CHUNK))
        times: npt.NDArray[np.float64] = k.astype(np.float64) * period
        th = theta.at(times)
        if spec.noise_deg:
            th = th + rng.normal(0.0, spec.noise_deg, len(times))
        rate = theta.slope(times)
        for i, kk in enumerate(k.tolist()):
            t = float(times[i])
            glitch = glitches.get(kk)
            value = float(th[i])
            if glitch is not None and glitch.theta_deg is not None:
                value = glitch.theta_deg
            angle = max(-179.99, min(179.99, cal.sensor_angle(value)))
            accel = _gravity(angle, cal.axis_index, _accel_magnitude(t, impacts, glitch))
            dropped = any(
                f.start is not None
                and f.end is not None
                and f.start <= t < f.end
                and kk % f.every == 0
                for f in loss
            )
            yield t, angle, cal.sign * float(rate[i]), accel, dropped


def _spotter_tilt_records(
    scenario: Scenario, name: str, spec: TiltSensorSpec, faults: list[Fault]
) -> Iterator[Record]:
    lock = spotter_tilt.AnkleLock(spec.ankle_lock) if spec.ankle_lock else None
    seq = 0
    for t, angle, rate, accel, dropped in _tilt_samples(scenario, spec, faults):
        if _quiet(t, faults):
            continue
        m = spotter_tilt.TiltMeasurement(
            seq=seq,
            sensor_ms=round(t * 1000) & 0xFFFF,
            pitch_deg=round(angle, 2),
            accel_g=tuple(round(a, 3) for a in accel) if spec.accel else None,  # type: ignore[arg-type]
            gyro_dps=(0.0, round(rate, 1), 0.0) if spec.gyro else None,
            lock=lock,
        )
        seq = (seq + 1) & 0xFFFF
        if not dropped:
            yield Notification(t, name, gatt.TILT_MEASUREMENT, spotter_tilt.encode(m))


REGISTER_REPLY = bytes([0x55, 0x71]) + bytes(18)
STRAY = bytes([0x01, 0x02])
NOTIFY_MAX = 20
"""The most a notification carries at the default ATT MTU (23)."""


def _witmotion_records(
    scenario: Scenario, name: str, spec: TiltSensorSpec, faults: list[Fault]
) -> Iterator[Record]:
    """One frame per notification; with ``split_frames`` the byte stream is cut into chunks of
    cycling sizes (at most 20 bytes), so frames are split across notifications and the tail
    of one shares a notification with the head of the next."""
    axis = calibration_of(spec).axis_index
    buffer = bytearray()
    cut = 0
    next_reply = spec.register_reply_every_s
    for t, angle, rate, accel, dropped in _tilt_samples(scenario, spec, faults):
        if _quiet(t, faults):
            buffer.clear()
            continue
        angles = [0.0, 0.0, 0.0]
        gyro = [0.0, 0.0, 0.0]
        angles[axis] = angle
        gyro[axis] = rate if spec.gyro else 0.0
        frame = witmotion.encode_frame(
            witmotion.WitMotionFrame(
                accel if spec.accel else (0.0, 0.0, 1.0),
                (gyro[0], gyro[1], gyro[2]),
                (angles[0], angles[1], angles[2]),
            )
        )
        if dropped:
            continue
        extra = b""
        if next_reply is not None and t >= next_reply:
            extra = REGISTER_REPLY + STRAY
            next_reply += spec.register_reply_every_s or 0.0
        if not spec.split_frames:
            for chunk in (frame, extra[:20], extra[20:]):
                if chunk:
                    yield Notification(t, name, gatt.WITMOTION_NOTIFY, chunk)
            continue
        buffer += frame + extra
        while len(buffer) >= SPLIT_SIZES[cut % len(SPLIT_SIZES)]:
            size = SPLIT_SIZES[cut % len(SPLIT_SIZES)]
            cut += 1
            yield Notification(t, name, gatt.WITMOTION_NOTIFY, bytes(buffer[:size]))
            del buffer[:size]


def _heart_rate_records(
    scenario: Scenario, name: str, spec: HeartRateSensorSpec, faults: list[Fault]
) -> Iterator[Record]:
    m = scenario.model
    curve = _Curve(m.hr)
    contact_loss = _windows(faults, "contact_loss")
    loss = [f for f in faults if f.kind == "packet_loss"]
    artifacts = sorted(
        (f.t, f.bpm)
        for f in faults
        if f.kind == "artifact"
        if f.t is not None and f.bpm is not None
    )
    k = 0
    energy = 0.0
    while True:
        t = HR_FIRST_S + k * spec.interval_s
        if t > m.duration_s:
            return
        k += 1
        bpm = round(float(curve.at(np.array([t]))[0]))
        energy += bpm * spec.interval_s * 0.0015  # kJ: a made-up, monotonic expenditure
        if _quiet(t, faults):
            continue
        if any(
            f.start is not None and f.end is not None and f.start <= t < f.end and k % f.every == 0
            for f in loss
        ):
            continue
        contact = Contact.DETECTED
        if _inside(t, contact_loss):
            bpm, contact = 0, Contact.NOT_DETECTED
        while artifacts and artifacts[0][0] <= t:
            bpm = artifacts.pop(0)[1]
        rr = (round(60 / bpm * 1024) / 1024,) if spec.rr and 0 < bpm < 500 else ()
        reading = HeartRateMeasurement(
            bpm=bpm,
            contact=contact,
            energy_kj=int(energy) if spec.energy else None,
            rr_s=rr if all(r * 1024 <= 0xFFFF for r in rr) else (),
            wide=bpm > 0xFF,
        )
        yield Notification(t, name, gatt.HEART_RATE_MEASUREMENT, heart_rate.encode(reading))


def records(scenario: Scenario) -> Iterator[Record]:
    """Every record of the scenario, in time order, ending with the end marker."""
    m = scenario.model
    streams: list[Iterator[Record]] = []
    for name, spec in m.sensors.items():
        faults = [f for f in m.faults if f.sensor == name]
        stream_char = SensorKind(spec.kind).stream_uuid
        streams.append(iter(_link_records(name, stream_char, faults, spec.battery_percent)))
        if isinstance(spec, HeartRateSensorSpec):
            streams.append(_heart_rate_records(scenario, name, spec, faults))
        elif spec.kind == "witmotion":
            streams.append(_witmotion_records(scenario, name, spec, faults))
        else:
            streams.append(_spotter_tilt_records(scenario, name, spec, faults))
    streams.append(iter([UserInput(i.t, i.input, i.alarm, i.by) for i in m.inputs]))
    for record in heapq.merge(*streams, key=lambda r: r.t):
        if record.t <= m.duration_s:
            yield record
    yield End(m.duration_s)


CALM_HR_BPM = 70
"""The heart rate of a person resting upright after a scenario."""


def _calm_sensor(
    name: str, spec: SensorSpec, start_t: float, rate_hz: float, tilt_seq: int
) -> Iterator[Record]:
    """One sensor's calm readings from ``start_t`` on, for ever: the table flat (θ = 0), or a
    resting heart rate once a second."""
    if spec.kind is SensorKind.HEART_RATE:
        k = 1
        while True:
            rr = (round(60 / CALM_HR_BPM * 1024) / 1024,)
            reading = HeartRateMeasurement(CALM_HR_BPM, contact=Contact.DETECTED, rr_s=rr)
            yield Notification(
                start_t + k, name, gatt.HEART_RATE_MEASUREMENT, heart_rate.encode(reading)
            )
            k += 1
    cal = spec.calibration
    angle = cal.sensor_angle(0.0)
    accel = _gravity(angle, cal.axis_index, 1.0)
    period = 1.0 / rate_hz
    k = 1
    while True:
        t = start_t + k * period
        if spec.kind is SensorKind.WITMOTION:
            angles = [0.0, 0.0, 0.0]
            angles[cal.axis_index] = angle
            frame = witmotion.WitMotionFrame(
                accel, (0.0, 0.0, 0.0), (angles[0], angles[1], angles[2])
            )
            yield Notification(t, name, gatt.WITMOTION_NOTIFY, witmotion.encode_frame(frame))
        else:
            m = spotter_tilt.TiltMeasurement(
                seq=(tilt_seq + k) & 0xFFFF,
                sensor_ms=round(t * 1000) & 0xFFFF,
                pitch_deg=round(angle, 2),
                accel_g=(round(accel[0], 3), round(accel[1], 3), round(accel[2], 3)),
            )
            yield Notification(t, name, gatt.TILT_MEASUREMENT, spotter_tilt.encode(m))
        k += 1


def calm(
    sensors: dict[str, SensorSpec],
    start_t: float,
    rate_hz: dict[str, int] | None = None,
    tilt_seq: dict[str, int] | None = None,
) -> Iterator[Record]:
    """After a scenario: the person has stepped off and the sensors go on streaming a calm,
    upright state for ever (tilt at θ = 0 at ``rate_hz``, default 100 Hz, its sequence
    numbers going on from ``tilt_seq``; a resting heart rate at 1 Hz), in time order."""
    streams = [
        _calm_sensor(
            name, spec, start_t, (rate_hz or {}).get(name, 100), (tilt_seq or {}).get(name, -1)
        )
        for name, spec in sensors.items()
    ]
    yield from heapq.merge(*streams, key=lambda r: r.t)


def write_trace(scenario: Scenario, stream: TextIO) -> None:
    """Write the scenario's trace."""
    writer = TraceWriter(stream, header_of(scenario))
    for record in records(scenario):
        writer.write(record)
