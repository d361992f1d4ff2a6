"""``spotter calibrate``: measure how the tilt sensor sits on the table.

The user lays the table flat, then tilts it head-down; the sensor's angles in both positions
give the calibration of SPEC section 3: the axis that moved most (WitMotion; the Spotter Tilt
sensor has only pitch), the sign that makes head-down positive, and the flat angle as offset.
The result is stored with the station (and audited); the daemon uses it over the config's.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Awaitable, Callable

from monitor.ble.backend import BleBackend
from monitor.ble.link import SensorLink
from monitor.core import gatt
from monitor.core.codecs import CodecError, spotter_tilt, witmotion
from monitor.core.sensors import Calibration, SensorKind
from monitor.settings import BleConfig, SensorConfig
from monitor.supervise import cancel_and_wait

MIN_TILT_DEG = 10.0
SAMPLES = 20
Angles = tuple[float, float, float]


class CalibrationError(ValueError):
    """The measurement cannot give a calibration; the message says what to do."""


def solve(kind: SensorKind, flat: Angles, head_down: Angles) -> Calibration:
    """The calibration from the sensor's angles with the table flat and head-down."""
    if kind is SensorKind.SPOTTER_TILT:
        axis_index = 1
    else:
        axis_index = max(range(3), key=lambda i: abs(head_down[i] - flat[i]))
    delta = head_down[axis_index] - flat[axis_index]
    if abs(delta) < MIN_TILT_DEG:
        raise CalibrationError(
            f"the table moved only {abs(delta):.1f}°: tilt it head-down at least "
            f"{MIN_TILT_DEG:.0f}° and hold it still"
        )
    axis = "pitch" if kind is SensorKind.SPOTTER_TILT else "xyz"[axis_index]
    return Calibration(round(flat[axis_index], 2), 1 if delta > 0 else -1, axis)


class AngleCollector:
    """A link listener that keeps the sensor's raw angles (x, y, z; pitch is y)."""

    def __init__(self, kind: SensorKind) -> None:
        self.kind = kind
        self.samples: list[Angles] = []
        self._stream = witmotion.WitMotionStream()
        self.arrived = asyncio.Event()

    def on_link(self, sensor: str, connected: bool) -> None:
        """Link changes do not matter here."""

    def on_data(self, sensor: str, char: str, data: bytes) -> None:
        """Keep the angles of every tilt notification; ignore anything malformed."""
        try:
            if char == gatt.TILT_MEASUREMENT:
                pitch = spotter_tilt.decode(data).pitch_deg
                self.samples.append((math.nan, pitch, math.nan))
            elif char == gatt.WITMOTION_NOTIFY:
                for frame in self._stream.feed(data):
                    self.samples.append(frame.angle_deg)
            else:
                return
        except CodecError:
            return
        self.arrived.set()

    async def steady(self, count: int = SAMPLES, timeout_s: float = 10.0) -> Angles:
        """The median of the next ``count`` samples."""
        self.samples.clear()
        async with asyncio.timeout(timeout_s):
            while len(self.samples) < count:
                self.arrived.clear()
                await self.arrived.wait()
        recent = self.samples[-count:]
        return (
            statistics.median(s[0] for s in recent),
            statistics.median(s[1] for s in recent),
            statistics.median(s[2] for s in recent),
        )


async def calibrate(
    name: str,
    sensor: SensorConfig,
    ble: BleConfig,
    backend: BleBackend,
    prompt: Callable[[str], Awaitable[None]],
    connect_timeout_s: float = 30.0,
) -> Calibration:
    """Guide the user through flat, then head-down, against the live sensor."""
    if not sensor.kind.is_tilt:
        raise CalibrationError(f"sensor {name} is a {sensor.kind.value}, not a tilt sensor")
    collector = AngleCollector(sensor.kind)
    link = SensorLink(name, sensor, ble, backend, collector)
    task = asyncio.create_task(link.run())
    try:
        try:
            async with asyncio.timeout(connect_timeout_s):
                await collector.arrived.wait()
        except TimeoutError:
            raise CalibrationError(
                f"no data from tilt sensor {name} in {connect_timeout_s:.0f} s "
                f"(last problem: {link.state.last_error or 'not found'})"
            ) from None
        await prompt("Lay the table flat (horizontal), hold it still, then press Enter")
        flat = await collector.steady()
        await prompt("Tilt the table head-down (20° or more), hold it still, then press Enter")
        head_down = await collector.steady()
    finally:
        await cancel_and_wait(task, errors="raise")
    return solve(sensor.kind, flat, head_down)
