"""``spotter scan``: which sensors are in range, what they are, and their battery."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bleak import BleakScanner
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from monitor.ble.backend import BleBackend
from monitor.ble.link import LINK_ERRORS, NOT_FOUND_HINT, describe, sensor_matches
from monitor.core import gatt
from monitor.core.codecs import CodecError, battery
from monitor.core.sensors import SensorKind
from monitor.settings import SensorConfig

_KIND_OF_SERVICE = {kind.service_uuid: kind for kind in SensorKind}


@dataclass(frozen=True)
class Found:
    """One advertising device."""

    address: str
    name: str | None
    rssi: int | None
    kind: SensorKind | None
    battery_percent: int | None = None
    problem: str | None = None
    service_uuids: tuple[str, ...] = ()
    """The services it advertised (lower case), for recognising its model."""


def config_block(found: Found, model: str | None = None) -> str:
    """A ready ``[sensors.NAME]`` block for the configuration: a Spotter sensor found here,
    by its address (the most reliable way to find it again)."""
    if found.kind is None:
        raise ValueError(f"{found.address} is not a sensor Spotter speaks to")
    section = "tilt" if found.kind.is_tilt else "hr"
    lines = []
    if model:
        lines.append(f"# {model}" + (f', advertising as "{found.name}"' if found.name else ""))
    lines += [
        f"[sensors.{section}]",
        f'kind = "{found.kind.value}"',
        f'address = "{found.address}"',
    ]
    if found.kind is SensorKind.WITMOTION:
        lines.append(
            'calibration = { offset_deg = 0.0, sign = 1, axis = "y" }  # spotter calibrate'
        )
    elif found.kind is SensorKind.SPOTTER_TILT:
        lines.append(
            'calibration = { offset_deg = 0.0, sign = 1, axis = "pitch" }  # spotter calibrate'
        )
    return "\n".join(lines) + "\n"


def kind_of(service_uuids: list[str]) -> SensorKind | None:
    """The sensor kind a device's advertised services say it is (None: not a sensor of ours)."""
    for uuid in service_uuids:
        kind = _KIND_OF_SERVICE.get(uuid.lower())
        if kind is not None:
            return kind
    return None


async def _battery(
    device: Any, backend: BleBackend, timeout_s: float
) -> tuple[int | None, str | None]:
    kwargs: dict[str, Any] = {"timeout": timeout_s}
    if backend.client_class is not None:
        kwargs["backend"] = backend.client_class
    try:
        client = await establish_connection(
            BleakClientWithServiceCache, device, device.address, max_attempts=1, **kwargs
        )
    except LINK_ERRORS as exc:
        return None, describe(exc)
    try:
        if client.services.get_characteristic(gatt.BATTERY_LEVEL) is None:
            return None, None
        return battery.decode(bytes(await client.read_gatt_char(gatt.BATTERY_LEVEL))).percent, None
    except (*LINK_ERRORS, CodecError) as exc:
        return None, describe(exc)
    finally:
        # Reading the battery is a courtesy; the link is going away regardless.
        with contextlib.suppress(*LINK_ERRORS):
            await client.disconnect()


async def scan(
    backend: BleBackend, timeout_s: float = 5.0, read_battery: bool = True
) -> list[Found]:
    """Scan for ``timeout_s``; connect briefly to each known sensor to read its battery."""
    kwargs: dict[str, Any] = {"return_adv": True}
    if backend.scanner_class is not None:
        kwargs["backend"] = backend.scanner_class
    seen = await BleakScanner.discover(timeout=timeout_s, **kwargs)
    found: list[Found] = []
    for device, adv in seen.values():
        kind = kind_of(list(adv.service_uuids))
        level: int | None = None
        problem: str | None = None
        if kind is not None and read_battery:
            level, problem = await asyncio.wait_for(
                _battery(device, backend, timeout_s), timeout_s * 2
            )
        services = tuple(u.lower() for u in adv.service_uuids)
        name = adv.local_name or device.name
        found.append(Found(device.address, name, adv.rssi, kind, level, problem, services))
    return sorted(found, key=lambda f: (f.kind is None, -(f.rssi or -999)))


def not_seen(found: Sequence[Found], sensors: Mapping[str, SensorConfig]) -> list[str]:
    """One line for each configured sensor that no advertiser in ``found`` matches.

    A sensor that does not advertise is most often connected to something else: a strap
    paired with a phone or watch accepts one central and stops advertising meanwhile.
    """
    lines = []
    for name, sensor in sensors.items():
        if any(
            sensor_matches(sensor, f.address, f.name, [f.kind.service_uuid] if f.kind else [])
            for f in found
        ):
            continue
        where = sensor.address or sensor.name or "any in range"
        lines.append(f"sensor {name} ({sensor.kind.value}, {where}): {NOT_FOUND_HINT}")
    return lines
