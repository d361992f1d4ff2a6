"""``spotter sensors capture``: read a device's whole GATT table, so a user with a sensor
Spotter does not know yet can contribute a profile of it (``firmware_sim/devices``).

Standard bleak: find the device by address (its advertisement gives the name and the
advertised services), connect with bleak-retry-connector, walk ``client.services``, read every
readable characteristic. Generic Access and Generic Attribute are left out (the Bluetooth
stack owns them, and BlueZ hides them). The result is plain data in the profile format's
shape; the CLI renders it as a profile file.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from monitor.ble.backend import BleBackend
from monitor.ble.link import LINK_ERRORS, describe
from monitor.ble.scan import kind_of

log = logging.getLogger(__name__)
STACK_SERVICES = frozenset(
    {"00001800-0000-1000-8000-00805f9b34fb", "00001801-0000-1000-8000-00805f9b34fb"}
)


class CaptureError(RuntimeError):
    """The device was not found or its table could not be read; the message says which."""


@dataclass(frozen=True, slots=True)
class CapturedCharacteristic:
    """One characteristic as the device serves it."""

    uuid: str
    properties: tuple[str, ...]
    descriptors: tuple[str, ...]
    value: bytes | None
    """What a read returned (None: not readable, or the read failed: see ``read_error``)."""
    read_error: str | None = None


@dataclass(frozen=True, slots=True)
class CapturedDevice:
    """A device's advertisement and GATT table."""

    address: str
    name: str | None
    advertised_services: tuple[str, ...]
    services: tuple[tuple[str, tuple[CapturedCharacteristic, ...]], ...]

    def profile_data(self) -> dict[str, Any]:
        """The table as a profile's TOML data (``firmware_sim.devices.parse_profile`` reads
        it): the name as an exact pattern, the Spotter kind and stream when the advertised
        services say which protocol it speaks."""
        kind = kind_of(list(self.advertised_services))
        data: dict[str, Any] = {
            "model": f"captured: {self.name or self.address}",
            "advertised_services": list(self.advertised_services),
            "services": [
                {
                    "uuid": uuid,
                    "characteristics": [
                        {
                            "uuid": c.uuid,
                            "properties": list(c.properties),
                            "descriptors": list(c.descriptors),
                            **({} if c.value is None else {"value_hex": c.value.hex()}),
                        }
                        for c in chars
                    ],
                }
                for uuid, chars in self.services
            ],
        }
        if self.name:
            data["default_name"] = self.name
            data["name_pattern"] = f"^{re.escape(self.name)}$"
        if kind is not None:
            data["kind"] = kind.value
            if any(c.uuid == kind.stream_uuid for _, chars in self.services for c in chars):
                data["stream"] = kind.stream_uuid
        return data


async def _find(
    backend: BleBackend, address: str, timeout_s: float
) -> tuple[BLEDevice, AdvertisementData]:
    seen: list[AdvertisementData] = []

    def wanted(device: BLEDevice, adv: AdvertisementData) -> bool:
        if device.address.upper() == address.upper():
            seen.append(adv)
            return True
        return False

    kwargs: dict[str, Any] = {}
    if backend.scanner_class is not None:
        kwargs["backend"] = backend.scanner_class
    device = await BleakScanner.find_device_by_filter(wanted, timeout=timeout_s, **kwargs)
    if device is None or not seen:
        raise CaptureError(
            f"{address} not found in {timeout_s:g} s: is it on, in range, and not connected "
            "to a phone or watch (many sensors stop advertising while connected)?"
        )
    return device, seen[-1]


async def capture(backend: BleBackend, address: str, timeout_s: float = 10.0) -> CapturedDevice:
    """Find ``address``, connect, read its GATT table and readable values, disconnect."""
    device, adv = await _find(backend, address, timeout_s)
    kwargs: dict[str, Any] = {"timeout": timeout_s}
    if backend.client_class is not None:
        kwargs["backend"] = backend.client_class
    try:
        client = await establish_connection(
            BleakClientWithServiceCache, device, address, max_attempts=2, **kwargs
        )
    except LINK_ERRORS as exc:
        raise CaptureError(f"cannot connect to {address}: {describe(exc)}") from exc
    try:
        services = []
        for service in sorted(client.services, key=lambda s: s.handle):
            if service.uuid in STACK_SERVICES:
                continue
            chars = []
            for char in sorted(service.characteristics, key=lambda c: c.handle):
                value: bytes | None = None
                error: str | None = None
                if "read" in char.properties:
                    try:
                        value = bytes(await client.read_gatt_char(char))
                    except LINK_ERRORS as exc:  # e.g. a read that needs pairing
                        error = describe(exc)
                        log.warning("%s: reading %s failed: %s", address, char.uuid, error)
                descriptors = tuple(
                    d.uuid for d in sorted(char.descriptors, key=lambda d: d.handle)
                )
                chars.append(
                    CapturedCharacteristic(
                        char.uuid, tuple(char.properties), descriptors, value, error
                    )
                )
            services.append((service.uuid, tuple(chars)))
    finally:
        with contextlib.suppress(*LINK_ERRORS):  # the capture is done; the link goes anyway
            await client.disconnect()
    return CapturedDevice(
        device.address,
        adv.local_name or device.name,
        tuple(u.lower() for u in adv.service_uuids),
        tuple(services),
    )
