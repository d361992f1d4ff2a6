"""Simulated sensors: bumble GATT servers, byte-exact through ``monitor.codecs``.

One class per sensor kind; :func:`peripheral_for` picks it for a kind.
"""

from __future__ import annotations

from bumble.device import Device

from firmware_sim.peripherals.base import SimPeripheral, UnknownCharacteristicError
from firmware_sim.peripherals.heart_rate import HeartRateStrap
from firmware_sim.peripherals.spotter_tilt import TiltSensor
from firmware_sim.peripherals.witmotion import WitMotionSensor
from monitor.sensors import SensorKind


def peripheral_for(
    kind: SensorKind, device: Device, *, battery_percent: int = 100, rate_hz: int = 100
) -> SimPeripheral:
    """A simulated sensor of ``kind`` on ``device``, with its default name.

    ``rate_hz`` is the sample rate a Spotter tilt sensor reports in Sensor Info.
    """
    match kind:
        case SensorKind.HEART_RATE:
            return HeartRateStrap(device, battery_percent=battery_percent)
        case SensorKind.SPOTTER_TILT:
            return TiltSensor(device, battery_percent=battery_percent, rate_hz=rate_hz)
        case SensorKind.WITMOTION:
            return WitMotionSensor(device, battery_percent=battery_percent)


__all__ = [
    "HeartRateStrap",
    "SimPeripheral",
    "TiltSensor",
    "UnknownCharacteristicError",
    "WitMotionSensor",
    "peripheral_for",
]
