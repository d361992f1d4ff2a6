"""What every simulated sensor shares: advertising, the link, the battery, the stream.

A peripheral is a bumble GATT server on a :class:`bumble.device.Device` from the virtual
radio (:mod:`firmware_sim.radio`). It sends exactly the bytes it is given: payloads are built
by ``monitor.codecs`` (one truth for the protocols) or come from a trace, and a malformed
payload goes out malformed, because the daemon must survive those too.

Link behaviour follows a real sensor: it advertises its service and name until a central
connects, advertises again after the link drops, can drop the link itself (reason 0x13,
remote user terminated) and can go quiet (no link, no advertising) until told to come back.
It can also stall (:meth:`SimPeripheral.stall`): the link stays up but no notification goes
out until the link drops, as with a hung firmware or a lost subscription behind a live link.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from monitor import gatt
from monitor.codecs import battery
from monitor.sensors import SensorKind

logger = logging.getLogger(__name__)

REASON_REMOTE_USER_TERMINATED = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
"""0x13: what a sensor reports when it ends the link itself."""
DEFAULT_ADVERTISING_INTERVAL_MS = 50.0
_SIG_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_FLAGS_LE_ONLY_GENERAL = 0x06
"""LE General Discoverable, BR/EDR not supported."""
_DEFAULT_ATT_PAYLOAD = 20


class UnknownCharacteristicError(ValueError):
    """A payload for a characteristic the peripheral does not send on."""


def sim_uuid(text: str) -> UUID:
    """A bumble UUID; SIG UUIDs in their 16-bit form, as real sensors declare them."""
    lowered = text.lower()
    if lowered.startswith("0000") and lowered.endswith(_SIG_SUFFIX) and len(lowered) == 36:
        return UUID.from_16_bits(int(lowered[4:8], 16))
    return UUID(lowered)


def readable(uuid: str, value: bytes) -> Characteristic[bytes]:
    """A read-only characteristic with a fixed value."""
    return Characteristic(
        sim_uuid(uuid), Characteristic.Properties.READ, Characteristic.READABLE, value
    )


class SimPeripheral:
    """A simulated sensor: subclasses add their services and name their stream characteristic.

    ``subscribed`` is set while a central has notifications of the stream characteristic
    enabled, and cleared when the link drops.
    """

    kind: ClassVar[SensorKind]
    default_name: ClassVar[str]

    def __init__(
        self,
        device: Device,
        *,
        services: list[Service],
        stream: Characteristic[bytes],
        name: str | None = None,
        battery_percent: int = 100,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        self.device = device
        self.name = name or self.default_name
        self.stream = stream
        self.subscribed = asyncio.Event()
        self.advertising_interval_ms = advertising_interval_ms
        self._battery_value = battery.encode(battery.BatteryLevel(battery_percent))
        self.battery_level = Characteristic[bytes](
            sim_uuid(gatt.BATTERY_LEVEL),
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            CharacteristicValue(read=lambda _connection: self._battery_value),
        )
        battery_service = Service(sim_uuid(gatt.BATTERY_SERVICE), [self.battery_level])
        device.add_services([*services, battery_service])
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)
        self._online = False
        self._stalled = False
        self.disconnect_reasons: list[int] = []
        """The HCI reason of every link that ended, in order (what the sensor was told)."""
        self._restart: asyncio.Task[None] | None = None

    # -- link ------------------------------------------------------------------------------

    @property
    def stream_uuid(self) -> str:
        """The characteristic whose notifications carry the readings."""
        return self.kind.stream_uuid

    @property
    def online(self) -> bool:
        """True unless the sensor was sent quiet with :meth:`go_offline`."""
        return self._online

    @property
    def connections(self) -> list[Connection]:
        """The links to centrals that are up."""
        return list(self.device.connections.values())

    def advertising_data(self) -> bytes:
        """Flags and the service UUID (the name goes in the scan response, as it must fit)."""
        service = sim_uuid(self.kind.service_uuid)
        uuid_list = (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS
            if len(bytes(service)) == 2
            else AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS
        )
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([_FLAGS_LE_ONLY_GENERAL])),
                    (uuid_list, bytes(service)),
                ]
            )
        )

    def scan_response_data(self) -> bytes:
        """The complete local name."""
        return bytes(AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode())]))

    async def start(self) -> None:
        """Power on and advertise."""
        if not self.device.powered_on:
            await self.device.power_on()
        await self.go_online()

    async def go_online(self) -> None:
        """Advertise (again) unless a central is connected."""
        self._online = True
        if not self.connections:
            await self._advertise()

    async def go_offline(self) -> None:
        """Stop advertising and drop any link (0x13): the sensor is gone until ``go_online``."""
        self._online = False
        await self._settle_restart()
        await self.device.stop_advertising()
        await self.drop_link()

    async def drop_link(self, reason: int = REASON_REMOTE_USER_TERMINATED) -> None:
        """End every link from this side; advertising resumes if the sensor is online."""
        for connection in self.connections:
            await self.device.disconnect(connection, reason)
        await self._settle_restart()

    def stall(self) -> None:
        """Stop notifying while the link stays up; the next link (a reconnect) streams again."""
        self._stalled = True

    @property
    def stalled(self) -> bool:
        """True while notifications are held back by :meth:`stall`."""
        return self._stalled

    async def close(self) -> None:
        """Go quiet and power off."""
        await self.go_offline()
        await self.device.power_off()

    async def _advertise(self) -> None:
        await self.device.start_advertising(
            own_address_type=hci.OwnAddressType.PUBLIC,
            advertising_data=self.advertising_data(),
            scan_response_data=self.scan_response_data(),
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
        )
        logger.debug("%s advertising as %s", self.name, self.device.public_address)

    async def _settle_restart(self) -> None:
        if self._restart is not None:
            await self._restart

    def _on_connection(self, connection: Connection) -> None:
        logger.debug("%s: central %s connected", self.name, connection.peer_address)
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_disconnection(self, reason: int) -> None:
        logger.debug("%s: link down (reason 0x%02x)", self.name, reason)
        self.disconnect_reasons.append(reason)
        self.subscribed.clear()
        self._stalled = False
        if self._online and not self.connections:
            self._restart = asyncio.get_running_loop().create_task(self._advertise_again())

    async def _advertise_again(self) -> None:
        try:
            if self._online and not self.connections:
                await self._advertise()
        finally:
            self._restart = None

    def _on_subscription(
        self,
        _connection: Connection,
        characteristic: Characteristic[bytes],
        notify_enabled: bool,
        _indicate_enabled: bool,
    ) -> None:
        if characteristic is self.stream:
            if notify_enabled:
                self.subscribed.set()
            else:
                self.subscribed.clear()

    # -- data ------------------------------------------------------------------------------

    def is_subscribed(self, characteristic: Characteristic[bytes]) -> bool:
        """True when some central has notifications of ``characteristic`` enabled."""
        return any(
            cccd[0] & 0x01
            for cccds in self.device.gatt_server.subscribers.values()
            if (cccd := cccds.get(characteristic.handle))
        )

    async def notify(self, data: bytes) -> bool:
        """Notify the stream characteristic; True if a subscribed central was there to get it."""
        return await self._notify(self.stream, data)

    async def _notify(self, characteristic: Characteristic[bytes], data: bytes) -> bool:
        if self._stalled:
            return False
        delivered = self.is_subscribed(characteristic)
        if delivered and len(data) > _DEFAULT_ATT_PAYLOAD:
            limit = min(c.att_mtu for c in self.connections) - 3 if self.connections else 0
            if len(data) > limit:
                logger.warning(
                    "%s: %d-byte notification cut to %d bytes by the ATT MTU",
                    self.name,
                    len(data),
                    limit,
                )
        await self.device.notify_subscribers(characteristic, data)
        return delivered

    @property
    def battery_percent(self) -> int:
        """The battery level the sensor reports."""
        return battery.decode(self._battery_value).percent

    async def set_battery(self, percent: int) -> bool:
        """Set the battery level and notify it (True if a subscribed central got it)."""
        return await self.set_battery_value(battery.encode(battery.BatteryLevel(percent)))

    async def set_battery_value(self, value: bytes) -> bool:
        """Set the Battery Level's raw bytes (even malformed ones) and notify them."""
        self._battery_value = bytes(value)
        return await self._notify(self.battery_level, self._battery_value)

    async def drain_battery(self, step_percent: int = 1) -> int:
        """Lower the battery by ``step_percent`` (not below 0), notify it, return the level."""
        level = max(0, self.battery_percent - step_percent)
        await self.set_battery(level)
        return level

    async def play(self, char: str, data: bytes) -> bool:
        """Send a recorded payload as this sensor would; True if a central received it.

        The stream characteristic is notified; the battery characteristic is updated and
        notified. Subclasses accept their other characteristics.
        """
        char = char.lower()
        if char == self.stream_uuid:
            return await self.notify(data)
        if char == gatt.BATTERY_LEVEL:
            return await self.set_battery_value(data)
        raise UnknownCharacteristicError(f"{self.name} does not send on characteristic {char}")
