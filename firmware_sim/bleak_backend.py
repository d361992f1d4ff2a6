"""A bleak 3.x backend over a bumble central on the virtual radio.

The daemon's real bleak code (``BleakScanner``, bleak-retry-connector's
``establish_connection``, ``BleakClient``) runs unchanged against simulated sensors when it
is given this backend's classes::

    backend = await SimBackend.open_hub(port)        # or SimBackend.on_radio(radio)
    device = await BleakScanner.find_device_by_filter(..., backend=backend.scanner_class)
    client = await establish_connection(
        BleakClientWithServiceCache, device, "tilt", backend=backend.client_class
    )

bleak instantiates backend classes itself, so :class:`SimBackend` hands out subclasses bound
to its central: no module state, nothing shared between two backends or two event loops.
Only ``firmware_sim`` and the daemon's simulator path import this module.

How bumble's behaviour is mapped onto what bleak users expect (as BlueZ would surface it):

- connects are serialized per central (two at once crash bumble's host);
- a connect timeout raises ``asyncio.TimeoutError``, which bleak-retry-connector counts
  against ``max_attempts`` (a ``BleakDeviceNotFoundError`` would make it back off for long);
  the attempt lasts the smaller of the timeout given to ``connect`` and the client's own;
- ATT error responses raise ``BleakGATTProtocolError`` with the ATT code;
- a link ended by the peripheral calls the client's ``disconnected_callback``, and any GATT
  operation in flight fails at once with ``BleakError`` instead of waiting out its timeout;
  the HCI reason of the last link to each address is kept (:meth:`SimBackend.disconnect_reason`).

BlueZ failure modes that bleak users report can be switched on per backend
(:class:`BlueZFaults`, see ``docs/ble-failures.md``): a device forgotten from BlueZ's cache
after an unsolicited disconnect, and ``org.bluez.Error.InProgress`` on connect.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy

from firmware_sim.peripherals.base import sim_uuid
from firmware_sim.radio import HubDevice, Radio, open_hub_device, public_address

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
DEFAULT_ATT_MTU = att.ATT_DEFAULT_MTU


def bleak_uuid(value: UUID) -> str:
    """A bumble UUID as bleak spells it: lower-case, 128-bit."""
    return str(uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """bleak's view of one bumble advertisement (advertising data and scan response)."""
    data = advertisement.data
    ad = AdvertisingData
    uuid_lists = [
        *data.get_all(ad.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS),
        *data.get_all(ad.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS),
        *data.get_all(ad.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS),
        *data.get_all(ad.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS),
        *data.get_all(ad.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS),
        *data.get_all(ad.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS),
    ]
    service_data = [
        *data.get_all(ad.SERVICE_DATA_16_BIT_UUID),
        *data.get_all(ad.SERVICE_DATA_32_BIT_UUID),
        *data.get_all(ad.SERVICE_DATA_128_BIT_UUID),
    ]
    return AdvertisementData(
        local_name=data.get(ad.COMPLETE_LOCAL_NAME) or data.get(ad.SHORTENED_LOCAL_NAME),
        manufacturer_data=dict(data.get_all(ad.MANUFACTURER_SPECIFIC_DATA)),
        service_data={bleak_uuid(u): value for u, value in service_data},
        service_uuids=[bleak_uuid(u) for uuids in uuid_lists for u in uuids],
        tx_power=data.get(ad.TX_POWER_LEVEL),
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


BLUEZ_ERROR_IN_PROGRESS = "org.bluez.Error.InProgress"
"""The D-Bus error BlueZ answers ``Device1.Connect`` with while another connect is pending."""


def in_progress() -> BleakDBusError:
    """The error as bleak raises it: ``[org.bluez.Error.InProgress] Operation already in
    progress``."""
    return BleakDBusError(BLUEZ_ERROR_IN_PROGRESS, ["Operation already in progress"])


@dataclass
class BlueZFaults:
    """BlueZ behaviours that users of bleak meet, switched on by a test (all off by default).

    - ``forget_after_disconnect``: BlueZ drops a device it is not bonded with from its object
      cache when the link ends unsolicited (and when discovery stops), so ``connect()`` on the
      stale ``BLEDevice`` fails with ``BleakDeviceNotFoundError`` "Device with address … was
      not found" until a scan sees the device again. Reported in
      https://github.com/hbldh/bleak/issues/676 and https://github.com/hbldh/bleak/issues/1176.
    - ``in_progress``: the next that many connect attempts fail at once with
      ``BleakDBusError`` ``[org.bluez.Error.InProgress] Operation already in progress`` (a
      stale pending ``Connect`` in bluetoothd, e.g. left by a killed process). Reported in
      https://github.com/hbldh/bleak/issues/1689,
      https://github.com/home-assistant/core/issues/76544 and
      https://github.com/Bluetooth-Devices/bleak-retry-connector/issues/226.

    - ``scan_in_progress``: the next that many scans fail to start with the same error, as
      ``StartDiscovery`` does while bluetoothd believes a discovery is still running (another
      program scanning, or stale state: https://github.com/hbldh/bleak/issues/1689,
      https://github.com/fl4p/batmon-ha/issues/355).
    """

    forget_after_disconnect: bool = False
    in_progress: int = 0
    scan_in_progress: int = 0


class SimBackend:
    """bleak scanner and client classes bound to one bumble central.

    Make it from an in-process radio (:meth:`on_radio`) or a hub (:meth:`open_hub`) and
    close it when done; give ``scanner_class`` and ``client_class`` to bleak as ``backend=``.
    """

    def __init__(self, central: Device, hub_device: HubDevice | None = None) -> None:
        self.central = central
        self._hub_device = hub_device
        self._connect_lock = asyncio.Lock()
        self._listeners: list[Callable[[Advertisement], None]] = []
        self.faults = BlueZFaults()
        self.connect_attempts: list[float] = []
        """The event loop's time of every connect attempt (for tests counting retries)."""
        self.scan_attempts: list[float] = []
        """The event loop's time of every scan start."""
        self._cached: set[str] = set()
        self._reasons: dict[str, int] = {}
        central.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        backend = self

        class BoundScanner(SimScanner):
            sim = backend

        class BoundClient(SimClient):
            sim = backend

        BoundScanner.__name__ = BoundScanner.__qualname__ = "SimScanner"
        BoundClient.__name__ = BoundClient.__qualname__ = "SimClient"
        self._scanner_class: type[SimScanner] = BoundScanner
        self._client_class: type[SimClient] = BoundClient

    @classmethod
    async def on_radio(cls, radio: Radio) -> SimBackend:
        """A backend driving the in-process radio's central (opened here if need be)."""
        return cls(radio.central or await radio.open_central())

    @classmethod
    async def open_hub(cls, port: int, name: str = "Spotter central") -> SimBackend:
        """A backend whose central joins the hub on loopback ``port``; close it to leave."""
        hub_device = await open_hub_device(port, name)
        try:
            await hub_device.device.power_on()
        except BaseException:
            await hub_device.close()
            raise
        return cls(hub_device.device, hub_device)

    @property
    def scanner_class(self) -> type[BaseBleakScanner]:
        """For ``BleakScanner(backend=...)``."""
        return self._scanner_class

    @property
    def client_class(self) -> type[BaseBleakClient]:
        """For ``BleakClient(..., backend=...)`` and ``establish_connection(..., backend=...)``."""
        return self._client_class

    async def close(self) -> None:
        """Stop listening; leave the hub if the central joined one."""
        self.central.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        if self._listeners:
            self._listeners.clear()
            await self.central.stop_scanning()
        if self._hub_device is not None:
            await self._hub_device.close()

    # -- used by the bound classes ---------------------------------------------------------

    async def start_scanning(self, listener: Callable[[Advertisement], None], active: bool) -> None:
        """Pass advertisements to ``listener``; the radio scans while anyone listens."""
        self.scan_attempts.append(asyncio.get_running_loop().time())
        if self.faults.scan_in_progress > 0:
            self.faults.scan_in_progress -= 1
            raise in_progress()
        self._listeners.append(listener)
        if len(self._listeners) == 1:
            await self.central.start_scanning(active=active, filter_duplicates=False)

    async def stop_scanning(self, listener: Callable[[Advertisement], None]) -> None:
        """Stop passing advertisements to ``listener``."""
        if listener not in self._listeners:
            return
        self._listeners.remove(listener)
        if not self._listeners:
            await self.central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        if self._listeners:  # BlueZ learns of devices while it discovers
            self._cached.add(advertisement.address.to_string(with_type_qualifier=False))
        for listener in list(self._listeners):
            listener(advertisement)

    def disconnect_reason(self, address: str) -> int | None:
        """The HCI reason the last link to ``address`` ended with (None: none ended yet)."""
        return self._reasons.get(address.upper())

    def link_ended(self, address: str, reason: int, unsolicited: bool) -> None:
        """Note why a link ended; BlueZ may forget the device (``forget_after_disconnect``)."""
        self._reasons[address.upper()] = reason
        if unsolicited and self.faults.forget_after_disconnect:
            self._cached.discard(address.upper())

    async def connect(self, address: hci.Address, timeout_s: float) -> Connection:
        """Connect to ``address``, one attempt at a time; errors as BlueZ would raise them."""
        self.connect_attempts.append(asyncio.get_running_loop().time())
        text = address.to_string(with_type_qualifier=False)
        if self.faults.in_progress > 0:
            self.faults.in_progress -= 1
            raise in_progress()
        if self.faults.forget_after_disconnect and text not in self._cached:
            # bleak's BlueZ client turns D-Bus UnknownObject into exactly this.
            raise BleakDeviceNotFoundError(
                text,
                f"Device with address {text} was not found. It may have been removed from "
                "BlueZ when scanning stopped.",
            )
        async with self._connect_lock:
            try:
                return await self.central.connect(
                    address, own_address_type=hci.OwnAddressType.PUBLIC, timeout=timeout_s
                )
            except (TimeoutError, core.TimeoutError) as exc:
                raise TimeoutError(f"{address}: no connection within {timeout_s} s") from exc
            except core.BaseBumbleError as exc:
                raise BleakError(f"{address}: connect failed: {exc}") from exc


class SimScanner(BaseBleakScanner):
    """A bleak scanner on a :class:`SimBackend`'s central (use ``backend.scanner_class``)."""

    sim: ClassVar[SimBackend]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"

    async def start(self) -> None:
        """Start scanning (bleak clears what was seen before)."""
        self.seen_devices = {}
        await self.sim.start_scanning(self._on_advertisement, self._active)

    async def stop(self) -> None:
        """Stop scanning."""
        await self.sim.stop_scanning(self._on_advertisement)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement_data(advertisement)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = advertisement.address.to_string(with_type_qualifier=False)
        # details carries the typed address so the client connects to exactly this device.
        device = self.create_or_update_device(
            address, address, data.local_name, advertisement.address, data
        )
        self.call_detection_callbacks(device, data)


class SimClient(BaseBleakClient):
    """A bleak client on a :class:`SimBackend`'s central (use ``backend.client_class``)."""

    sim: ClassVar[SimBackend]

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.get("disconnected_callback"),
            timeout=float(kwargs.get("timeout", 10.0)),
        )
        self._device_name: str | None = None
        details: object = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._device_name = address_or_ble_device.name
            details = address_or_ble_device.details
        self._peer_address = (
            details if isinstance(details, hci.Address) else public_address(self.address)
        )
        wanted = kwargs.get("services")
        self._wanted_services = [sim_uuid(u) for u in wanted] if wanted else []
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._lost = asyncio.Event()
        self._closing = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        """The advertised name, or the address."""
        return self._device_name or self.address

    @property
    def mtu_size(self) -> int:
        """The ATT MTU of the link (23 unless exchanged)."""
        return self._connection.att_mtu if self._connection else DEFAULT_ATT_MTU

    @property
    def is_connected(self) -> bool:
        """True while the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect and discover services, characteristics and descriptors."""
        if pair:
            logger.warning("%s: pairing is not simulated; connecting without it", self.address)
        if self._connection is not None:
            return
        timeout = min(float(kwargs.get("timeout", self._timeout)), self._timeout)
        connection = await self.sim.connect(self._peer_address, timeout)
        self._connection = connection
        self._peer = Peer(connection)
        self._lost = asyncio.Event()
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            self.services = await self._gatt(self._discover(self._peer))
        except BaseException:
            await self.disconnect()
            raise
        logger.debug("%s: connected, %d services", self.address, len(self.services.services))

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services(self._wanted_services):
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in await service.discover_characteristics():
                properties = sorted(gatt_char_props_to_strs(char.properties))
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    bleak_uuid(char.uuid),
                    properties,
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in await char.discover_descriptors():
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, bleak_uuid(descriptor.type), bleak_char
                        )
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        logger.debug("%s: link down (reason 0x%02x)", self.address, reason)
        self.sim.link_ended(self.address, reason, unsolicited=not self._closing)
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        self._lost.set()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """End the link (no disconnected callback: bleak reports only unsolicited ones)."""
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        try:
            await connection.disconnect()
        except core.BaseBumbleError as exc:
            logger.debug("%s: disconnect: %s", self.address, exc)
        finally:
            if self._connection is connection:
                self._on_disconnection(hci.HCI_CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)
            self._closing = False

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Not simulated."""
        raise NotImplementedError("pairing is not simulated")

    async def unpair(self) -> None:
        """Not simulated."""
        raise NotImplementedError("pairing is not simulated")

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected")
        return self._peer

    async def _gatt(self, operation: Awaitable[_T]) -> _T:
        """Run a GATT operation; fail at once if the link drops; map bumble's errors."""
        task = asyncio.ensure_future(operation)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            task.cancel()  # a no-op when it finished; stops it when the link or caller went
        # bumble cancels requests in flight when the link drops: that is no cancellation of
        # ours (which would have been raised by the wait above), but a lost link.
        if not task.done() or task.cancelled():
            raise BleakError(f"{self.address}: disconnected during a GATT operation")
        try:
            return task.result()
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: {exc}") from exc

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic's value from the peripheral."""
        peer = self._require_peer()
        return bytearray(await self._gatt(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor's value from the peripheral."""
        peer = self._require_peer()
        return bytearray(await self._gatt(peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic, with or without response."""
        peer = self._require_peer()
        await self._gatt(peer.write_value(characteristic.handle, bytes(data), response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor (with response)."""
        peer = self._require_peer()
        await self._gatt(peer.write_value(descriptor.handle, bytes(data), True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Enable notifications (indications if that is all it has) and pass values on."""
        peer = self._require_peer()
        proxy = characteristic.obj
        if not isinstance(proxy, CharacteristicProxy):
            raise BleakError(f"{characteristic} does not come from this backend")

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = subscriber
        await self._gatt(peer.subscribe(proxy, subscriber, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disable notifications."""
        peer = self._require_peer()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        proxy = characteristic.obj
        if isinstance(proxy, CharacteristicProxy):
            await self._gatt(peer.unsubscribe(proxy, subscriber))
