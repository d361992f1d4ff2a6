"""Simulated sensors: bumble GATT servers built from device profiles (:mod:`firmware_sim.devices`),
byte-exact through ``monitor.core.codecs``.

One class per Spotter protocol; :func:`peripheral_for` picks it for a kind (with that kind's
default profile unless given another), :func:`peripheral_from_profile` for any profile.
"""

from __future__ import annotations

from bumble.device import Device

from firmware_sim.devices import DeviceProfile
from firmware_sim.peripherals.base import (
    ProfiledDevice,
    SimPeripheral,
    UnknownCharacteristicError,
)
from firmware_sim.peripherals.heart_rate import HeartRateStrap, PhoneBusyError
from firmware_sim.peripherals.spotter_tilt import TiltSensor
from firmware_sim.peripherals.witmotion import WitMotionSensor
from monitor.core.sensors import SensorKind


def peripheral_for(
    kind: SensorKind,
    device: Device,
    *,
    battery_percent: int | None = None,
    rate_hz: int = 100,
    profile: DeviceProfile | None = None,
) -> SimPeripheral:
    """A simulated sensor of ``kind`` on ``device`` (its default profile unless ``profile``).

    ``rate_hz`` is the sample rate a Spotter tilt sensor reports in Sensor Info, and the rate
    of the records a WitMotion is given to play (it sends them at its own return rate).
    """
    match kind:
        case SensorKind.HEART_RATE:
            return HeartRateStrap(device, profile, battery_percent=battery_percent)
        case SensorKind.SPOTTER_TILT:
            return TiltSensor(device, profile, battery_percent=battery_percent, rate_hz=rate_hz)
        case SensorKind.WITMOTION:
            return WitMotionSensor(
                device, profile, battery_percent=battery_percent, source_rate_hz=rate_hz
            )


def peripheral_from_profile(profile: DeviceProfile, device: Device) -> SimPeripheral:
    """The simulated device a profile describes: the model's class when the profile names a
    Spotter kind and has that class's quirks, else the bare GATT table."""
    if profile.kind == SensorKind.HEART_RATE.value and profile.stream is not None:
        return HeartRateStrap(device, profile)
    if profile.kind == SensorKind.SPOTTER_TILT.value and "control_point" in profile.quirks:
        return TiltSensor(device, profile)
    if profile.kind == SensorKind.WITMOTION.value and "rate_codes" in profile.quirks:
        return WitMotionSensor(device, profile)
    return ProfiledDevice(device, profile)


__all__ = [
    "HeartRateStrap",
    "PhoneBusyError",
    "ProfiledDevice",
    "SimPeripheral",
    "TiltSensor",
    "UnknownCharacteristicError",
    "WitMotionSensor",
    "peripheral_for",
    "peripheral_from_profile",
]
