"""One sensor's link: discover, connect, subscribe, and reconnect forever with back-off.

A sensor that never appears or vanishes mid-session never hangs or crashes the station: the
link keeps searching and reports its status, and the safety rules see the silence and alarm.
A connected sensor that goes quiet is treated as gone (some stacks keep a dead link "up").
How each BlueZ failure mode that bleak users report is met here: ``docs/ble-failures.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bleak import BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import CONTROLLER_ERROR_CODES, BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from monitor.ble.backend import BleBackend
from monitor.core import gatt
from monitor.core.codecs import witmotion
from monitor.core.sensors import SensorKind
from monitor.settings import BleConfig, SensorConfig

log = logging.getLogger(__name__)
LINK_ERRORS = (BleakError, TimeoutError, OSError, EOFError)
"""What a radio, a stack or an absent device raises. Anything else is a bug and propagates."""
FIRST_BACKOFF_S = 0.5
WITMOTION_RATE_HZ = 100.0
"""The return rate the station asks a WitMotion for: impact detection needs >= 50 Hz; the
station then measures what it gets (``monitor.core.ratewatch``) rather than trusting it."""
NOT_FOUND_HINT = "not found — is it connected to a phone or watch?"
"""What a configured sensor that does not advertise most often means: a strap that is
connected to a phone or watch stops advertising and accepts no second central."""


class LinkStatus(enum.StrEnum):
    """Where a sensor's link is."""

    SEARCHING = "searching"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    LOST = "lost"


class LinkListener(Protocol):
    """Who gets a sensor's bytes and link changes (the station)."""

    def on_data(self, sensor: str, char: str, data: bytes) -> None:
        """Bytes arrived on a characteristic (a notification, or a value read)."""

    def on_link(self, sensor: str, connected: bool) -> None:
        """The link went up or down."""


@dataclass
class LinkState:
    """What the station shows about a sensor's link."""

    status: LinkStatus = LinkStatus.SEARCHING
    address: str | None = None
    device_name: str | None = None
    rssi: int | None = None
    connects: int = 0
    last_error: str | None = None
    notifications: int = 0
    changed_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class _Silent(Exception):
    """The sensor stopped sending while connected."""


class LinkEnded(BleakError):
    """The sensor or the radio ended a link the station had not given up."""


def reason_text(code: int) -> str:
    """An HCI disconnect reason as the Core spec names it, e.g. ``0x13 (Remote User
    Terminated Connection)``."""
    return f"0x{code:02x} ({CONTROLLER_ERROR_CODES.get(code, 'unknown reason')})"


def describe(exc: BaseException) -> str:
    """A one-line description of a link error, with a hint where one helps."""
    text = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, FileNotFoundError):
        return f"{text} (no D-Bus: is BlueZ installed and bluetoothd running?)"
    if "org.bluez.Error.InProgress" in str(exc):
        # A pending Connect or a discovery bluetoothd still believes is running (bleak
        # issue #1689, bleak-retry-connector issue #226); it clears on BlueZ's own schedule.
        return (
            f"{text} (BlueZ is still busy with an earlier connect or scan, often left by a "
            "process that was killed or by another program; retrying with back-off. If it "
            "persists: bluetoothctl disconnect ADDRESS, or sudo systemctl restart bluetooth)"
        )
    if "org.bluez" in str(exc) and "not provided" in str(exc):
        return f"{text} (BlueZ is not running: systemctl start bluetooth)"
    return text


def sensor_matches(
    sensor: SensorConfig, address: str, name: str | None, service_uuids: Iterable[str]
) -> bool:
    """Whether an advertiser is this configured sensor: by address, else name, else the
    service its kind advertises."""
    if sensor.address is not None:
        return address.upper() == sensor.address.upper()
    if sensor.name is not None:
        return name == sensor.name
    return sensor.kind.service_uuid in (u.lower() for u in service_uuids)


class SensorLink:
    """Keeps one configured sensor connected and streaming into a listener."""

    def __init__(
        self,
        name: str,
        sensor: SensorConfig,
        ble: BleConfig,
        backend: BleBackend,
        listener: LinkListener,
    ) -> None:
        self.name = name
        self.sensor = sensor
        self.kind: SensorKind = sensor.kind
        self.ble = ble
        self.backend = backend
        self.listener = listener
        self.state = LinkState()
        self._last_data = 0.0

    @staticmethod
    def clock() -> float:
        """The link's own timeouts run on the event loop's real clock."""
        return asyncio.get_running_loop().time()

    def _status(self, status: LinkStatus) -> None:
        if status is not self.state.status:
            log.info("sensor %s: %s", self.name, status.value)
            self.state.status = status
            self.state.changed_at = self.clock()

    def _matches(self, device: BLEDevice, adv: AdvertisementData) -> bool:
        hit = sensor_matches(
            self.sensor, device.address, adv.local_name or device.name, adv.service_uuids
        )
        if hit:
            self.state.rssi = adv.rssi
            self.state.device_name = adv.local_name or device.name
        return hit

    async def find(self) -> BLEDevice | None:
        """Scan once for this sensor (up to the scan timeout)."""
        kwargs: dict[str, Any] = {}
        if self.backend.scanner_class is not None:
            kwargs["backend"] = self.backend.scanner_class
        return await BleakScanner.find_device_by_filter(
            self._matches, timeout=self.ble.scan_timeout_s, **kwargs
        )

    async def run(self) -> None:
        """Search, connect, stream; on any link trouble, back off and start again. Forever.

        Every attempt starts with a scan: BlueZ may have forgotten the device since the last
        link (bleak issue #676), so a ``BLEDevice`` is never reused. The back-off starts again
        from its first step after a link that streamed.
        """
        backoff = FIRST_BACKOFF_S
        while True:
            self._status(LinkStatus.SEARCHING if self.state.connects == 0 else LinkStatus.LOST)
            connects = self.state.connects
            try:
                device = await self.find()
                if device is None:
                    if self.state.last_error != NOT_FOUND_HINT:
                        log.warning("sensor %s: %s", self.name, NOT_FOUND_HINT)
                    self.state.last_error = NOT_FOUND_HINT
                    continue  # the scan itself waited; look again
                self.state.address = device.address
                await self._stream(device)
            except (*LINK_ERRORS, _Silent) as exc:
                self.state.last_error = describe(exc)
                log.warning("sensor %s: %s; retrying in %.1f s", self.name, describe(exc), backoff)
            if self.state.connects > connects:
                backoff = FIRST_BACKOFF_S
            self._status(LinkStatus.LOST if self.state.connects else LinkStatus.SEARCHING)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.ble.max_backoff_s)

    def _on_notify(self, char: str) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def deliver(_: BleakGATTCharacteristic, data: bytearray) -> None:
            self._last_data = self.clock()
            self.state.notifications += 1
            self.listener.on_data(self.name, char, bytes(data))

        return deliver

    async def _stream(self, device: BLEDevice) -> None:
        self._status(LinkStatus.CONNECTING)
        gone = asyncio.Event()
        kwargs: dict[str, Any] = {"timeout": self.ble.connect_timeout_s}
        if self.backend.client_class is not None:
            kwargs["backend"] = self.backend.client_class
        client = await establish_connection(
            BleakClientWithServiceCache,
            device,
            self.name,
            disconnected_callback=lambda _client: gone.set(),
            max_attempts=2,
            **kwargs,
        )
        self.state.connects += 1
        self.listener.on_link(self.name, True)
        try:
            for char in self._readable(client):
                self.listener.on_data(self.name, char, bytes(await client.read_gatt_char(char)))
            if self.kind is SensorKind.WITMOTION:
                await self._set_witmotion_rate(client)
            battery = client.services.get_characteristic(gatt.BATTERY_LEVEL)
            if battery is not None and "notify" in battery.properties:
                await client.start_notify(battery, self._on_notify(gatt.BATTERY_LEVEL))
            await client.start_notify(self.kind.stream_uuid, self._on_notify(self.kind.stream_uuid))
            self._last_data = self.clock()
            self._status(LinkStatus.STREAMING)
            self.state.last_error = None
            await self._watch(gone, device.address)
        finally:
            self.listener.on_link(self.name, False)
            if client.is_connected:
                try:
                    await client.disconnect()
                except LINK_ERRORS as exc:  # the link is being dropped anyway
                    log.debug("sensor %s: disconnect: %s", self.name, describe(exc))

    async def _set_witmotion_rate(self, client: BleakClientWithServiceCache) -> None:
        """Unlock, then set the return rate, with write-without-response as the vendor's
        tools do. Not saved to flash: the station sets it on every connect.

        A unit that refuses the command still streams: the failure is logged here and
        its consequence (the rate it keeps) is what the station's rate watch reports; if the
        link itself is gone, subscribing next fails and the link reconnects.
        """
        try:
            for command in (witmotion.UNLOCK, witmotion.rate_command(WITMOTION_RATE_HZ)):
                await client.write_gatt_char(gatt.WITMOTION_WRITE, command, response=False)
        except BleakError as exc:
            self.state.last_error = f"could not set the return rate: {describe(exc)}"
            log.warning("sensor %s: %s", self.name, self.state.last_error)
            return
        log.info("sensor %s: asked for a %g Hz return rate", self.name, WITMOTION_RATE_HZ)

    def _readable(self, client: BleakClientWithServiceCache) -> list[str]:
        wanted = [gatt.BATTERY_LEVEL]
        if self.kind is SensorKind.SPOTTER_TILT:
            wanted.append(gatt.TILT_SENSOR_INFO)
        return [c for c in wanted if client.services.get_characteristic(c) is not None]

    async def _watch(self, gone: asyncio.Event, address: str) -> None:
        """Until the link ends or the sensor is silent for ``silence_reconnect_s`` (a link
        BlueZ still calls connected may carry nothing: then disconnect and start again)."""
        limit = self.ble.silence_reconnect_s
        while not gone.is_set():
            due_s = self._last_data + limit - self.clock()
            if due_s <= 0:
                raise _Silent(f"no data for {limit:g} s while connected; reconnecting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), timeout=due_s)
        code = self.backend.disconnect_reason(address)
        reason = "" if code is None else f": reason {reason_text(code)}"
        raise LinkEnded(f"disconnected by the sensor or the radio{reason}")
