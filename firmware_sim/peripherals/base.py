"""What every simulated sensor shares: a GATT table from a device profile, advertising, the
link, the battery, the stream.

A peripheral is a bumble GATT server on a :class:`bumble.device.Device` from the virtual
radio (:mod:`firmware_sim.radio`). Its GATT table, name, advertised services and static values
come from a profile of a real model (:mod:`firmware_sim.devices`), never from ``monitor``'s
constants. It sends exactly the bytes it is given: payloads are built by ``monitor.core.codecs``
(whose bytes the SPEC's public vectors pin) or come from a trace, and a malformed payload goes
out malformed, because the daemon must survive those too.

Link behaviour follows a real sensor: it advertises its services and name until a central
connects (one central at a time), advertises again after the link drops, can drop the link
itself (reason 0x13, remote user terminated) and can go quiet (no link, no advertising) until
told to come back.
It can also stall (:meth:`SimPeripheral.stall`): the link stays up but no notification goes
out until the link drops, as with a hung firmware or a lost subscription behind a live link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import ClassVar

from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Descriptor, Service

from firmware_sim.devices import CCCD, CharacteristicProfile, DeviceProfile
from monitor.core.codecs import battery
from monitor.core.sensors import SensorKind

logger = logging.getLogger(__name__)

REASON_REMOTE_USER_TERMINATED = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
"""0x13: what a sensor reports when it ends the link itself."""
DEFAULT_ADVERTISING_INTERVAL_MS = 50.0
_SIG_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_FLAGS_LE_ONLY_GENERAL = 0x06
"""LE General Discoverable, BR/EDR not supported."""
_DEFAULT_ATT_PAYLOAD = 20
BATTERY_LEVEL = "00002a19" + _SIG_SUFFIX
"""Bluetooth SIG assigned number 0x2A19 (Battery Level), from the SIG's list."""
_PROPERTY = {
    "broadcast": Characteristic.Properties.BROADCAST,
    "read": Characteristic.Properties.READ,
    "write-without-response": Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
    "write": Characteristic.Properties.WRITE,
    "notify": Characteristic.Properties.NOTIFY,
    "indicate": Characteristic.Properties.INDICATE,
    "authenticated-signed-writes": Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES,
    "extended-properties": Characteristic.Properties.EXTENDED_PROPERTIES,
}
WriteHandler = Callable[[Connection, bytes], None]
ReadHandler = Callable[[Connection], bytes]


class UnknownCharacteristicError(ValueError):
    """A payload for a characteristic the peripheral does not send on."""


def sim_uuid(text: str) -> UUID:
    """A bumble UUID; SIG UUIDs in their 16-bit form, as real sensors declare them."""
    lowered = text.lower()
    if lowered.startswith("0000") and lowered.endswith(_SIG_SUFFIX) and len(lowered) == 36:
        return UUID.from_16_bits(int(lowered[4:8], 16))
    return UUID(lowered)


def _characteristic(
    spec: CharacteristicProfile,
    reads: Mapping[str, ReadHandler],
    writes: Mapping[str, WriteHandler],
) -> Characteristic[bytes]:
    properties = Characteristic.Properties(0)
    for name in spec.properties:
        properties |= _PROPERTY[name]
    permissions = Characteristic.Permissions(0)
    if "read" in spec.properties:
        permissions |= Characteristic.READABLE
    if "write" in spec.properties or "write-without-response" in spec.properties:
        permissions |= Characteristic.WRITEABLE
    read = reads.get(spec.uuid)
    write = writes.get(spec.uuid)
    value: bytes | CharacteristicValue[bytes]
    if read is not None or write is not None:
        static = spec.value or b""
        value = CharacteristicValue(read=read or (lambda _c: static), write=write)
    else:
        value = spec.value or b""
    descriptors = [
        Descriptor(sim_uuid(d), Descriptor.READABLE, b"") for d in spec.descriptors if d != CCCD
    ]
    return Characteristic(sim_uuid(spec.uuid), properties, permissions, value, descriptors)


def build_gatt(
    profile: DeviceProfile,
    reads: Mapping[str, ReadHandler] | None = None,
    writes: Mapping[str, WriteHandler] | None = None,
) -> tuple[list[Service], dict[str, Characteristic[bytes]]]:
    """The bumble services of a profile's GATT table, and its characteristics by UUID.

    Static values come from the profile; ``reads`` and ``writes`` give the behaviour of the
    characteristics a model computes or obeys (by UUID). A writable characteristic with no
    handler accepts and ignores what it is sent, as a real device's unused channels do.
    """
    reads = reads or {}
    writes = writes or {}
    services: list[Service] = []
    by_uuid: dict[str, Characteristic[bytes]] = {}
    for service in profile.services:
        chars = []
        for spec in service.characteristics:
            char = _characteristic(spec, reads, writes)
            by_uuid[spec.uuid] = char
            chars.append(char)
        services.append(Service(sim_uuid(service.uuid), chars))
    return services, by_uuid


class SimPeripheral:
    """A simulated sensor built from a device profile; subclasses give the behaviour of the
    characteristics their model computes or obeys.

    ``subscribed`` is set while a central has notifications of the stream characteristic
    enabled, and cleared when the link drops.
    """

    kind: ClassVar[SensorKind | None] = None

    def __init__(
        self,
        device: Device,
        profile: DeviceProfile,
        *,
        reads: Mapping[str, ReadHandler] | None = None,
        writes: Mapping[str, WriteHandler] | None = None,
        name: str | None = None,
        battery_percent: int | None = None,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        self.device = device
        self.profile = profile
        self.name = name or profile.default_name
        self.subscribed = asyncio.Event()
        self.advertising_interval_ms = advertising_interval_ms
        self.writes: list[tuple[str, bytes]] = []
        """Every write a central made to a characteristic with no behaviour of its own."""
        battery_spec = profile.characteristic(BATTERY_LEVEL)
        initial = battery_spec.value if battery_spec is not None else None
        if battery_percent is not None:
            initial = battery.encode(battery.BatteryLevel(battery_percent))
        self._battery_value = initial or b""
        all_reads: dict[str, ReadHandler] = dict(reads or {})
        if battery_spec is not None:
            all_reads[BATTERY_LEVEL] = lambda _connection: self._battery_value
        all_writes: dict[str, WriteHandler] = {
            c.uuid: self._recorder(c.uuid)
            for s in profile.services
            for c in s.characteristics
            if "write" in c.properties or "write-without-response" in c.properties
        }
        all_writes.update(writes or {})
        services, self.characteristics = build_gatt(profile, all_reads, all_writes)
        self.stream = self.characteristics[profile.stream] if profile.stream else None
        self.battery_level = self.characteristics.get(BATTERY_LEVEL)
        device.add_services(services)
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)
        self._online = False
        self._stalled = False
        self.notified = 0
        """Notifications sent while a central was subscribed to them (a lock-step player
        waits until the station has received as many)."""
        self.disconnect_reasons: list[int] = []
        """The HCI reason of every link that ended, in order (what the sensor was told)."""
        self._restart: asyncio.Task[None] | None = None
        aliases = profile.quirks.get("legacy_uuids", {})
        self._aliases: dict[str, str] = {str(k).lower(): str(v).lower() for k, v in aliases.items()}

    def _recorder(self, uuid: str) -> WriteHandler:
        def record(_connection: Connection, value: bytes) -> None:
            self.writes.append((uuid, bytes(value)))

        return record

    # -- link ------------------------------------------------------------------------------

    @property
    def stream_uuid(self) -> str | None:
        """The characteristic whose notifications carry the readings (None: the profile
        names none, e.g. a captured device nobody has described yet)."""
        return self.profile.stream

    @property
    def online(self) -> bool:
        """True unless the sensor was sent quiet with :meth:`go_offline`."""
        return self._online

    @property
    def connections(self) -> list[Connection]:
        """The links to centrals that are up."""
        return list(self.device.connections.values())

    def advertising_data(self) -> bytes:
        """Flags and the advertised service UUIDs (the name goes in the scan response)."""
        short = b"".join(
            bytes(u) for u in map(sim_uuid, self.profile.advertised_services) if len(bytes(u)) == 2
        )
        long = b"".join(
            bytes(u) for u in map(sim_uuid, self.profile.advertised_services) if len(bytes(u)) > 2
        )
        fields = [(AdvertisingData.FLAGS, bytes([_FLAGS_LE_ONLY_GENERAL]))]
        if short:
            fields.append((AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, short))
        if long:
            fields.append((AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, long))
        return bytes(AdvertisingData(fields))

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
        if self.stream is not None and characteristic is self.stream:
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
        if self.stream is None:
            raise UnknownCharacteristicError(f"{self.name}: its profile names no stream")
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
        self.notified += delivered
        return delivered

    @property
    def has_battery(self) -> bool:
        """True when the model serves the Battery Service."""
        return self.battery_level is not None

    @property
    def battery_percent(self) -> int:
        """The battery level the sensor reports."""
        return battery.decode(self._battery_value).percent

    async def set_battery(self, percent: int) -> bool:
        """Set the battery level and notify it (True if a subscribed central got it)."""
        return await self.set_battery_value(battery.encode(battery.BatteryLevel(percent)))

    async def set_battery_value(self, value: bytes) -> bool:
        """Set the Battery Level's raw bytes (even malformed ones) and notify them."""
        if self.battery_level is None:
            raise UnknownCharacteristicError(
                f"{self.name} ({self.profile.model}) has no Battery Service"
            )
        self._battery_value = bytes(value)
        return await self._notify(self.battery_level, self._battery_value)

    async def drain_battery(self, step_percent: int = 1) -> int:
        """Lower the battery by ``step_percent`` (not below 0), notify it, return the level."""
        level = max(0, self.battery_percent - step_percent)
        await self.set_battery(level)
        return level

    def canonical(self, char: str) -> str:
        """A characteristic UUID as this model spells it (old Spotter traces spelled some
        vendor UUIDs on the SIG base; the profile lists those spellings)."""
        lowered = char.lower()
        return self._aliases.get(lowered, lowered)

    async def play(self, char: str, data: bytes) -> bool:
        """Send a recorded payload as this sensor would; True if a central received it.

        The stream characteristic is notified; the battery characteristic is updated and
        notified. Subclasses accept their other characteristics.
        """
        char = self.canonical(char)
        if char == self.stream_uuid and self.stream_uuid is not None:
            return await self.notify(data)
        if char == BATTERY_LEVEL and self.battery_level is not None:
            return await self.set_battery_value(data)
        raise UnknownCharacteristicError(f"{self.name} does not send on characteristic {char}")


class ProfiledDevice(SimPeripheral):
    """A device exactly as a profile describes it and no more: its GATT table with its static
    values, its name and advertisement (what a captured profile of an unknown device gives)."""
