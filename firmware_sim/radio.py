"""The virtual radio: simulated Bluetooth LE devices talking over a bumble link, no hardware.

Two shapes, one link:

- :class:`Radio` is the radio inside one process. A test fixture owns it, makes peripheral
  devices and one central on it, and closes it.
- :class:`Hub` serves one link to other processes. Each process that connects over TCP
  (bumble's ``tcp-client:127.0.0.1:PORT`` transport, HCI packets as H4 on a stream) gets
  its own simulated controller with its own public address, as if it had plugged in a
  Bluetooth adapter. The wire is that of bumble's ``tcp-server`` transport, but one port
  takes any number of clients (bumble's transport takes one, its controller app two).
  :func:`open_hub_device` is the client side; ``python -m firmware_sim.radio hub`` runs one.

Every device has a public address. bumble's ``LocalLink`` addresses LE data by the sender's
*random* address, so LE traffic between public addresses never arrived; :class:`SimLink`
addresses it by the connection's own address instead. When a hub client goes away (its
process ended or crashed), its links are ended for its peers with reason 0x08 (connection
timeout), standing in for the supervision timeout the simulated link layer does not run. With
``supervision_timeout_s`` the hub waits that long first, as a real peripheral would: until
then it still counts as connected to the dead central and does not advertise (see
``docs/ble-failures.md``, an unclean exit that left the sensor connected).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, StreamPacketSink, StreamPacketSource, Transport

from firmware_sim.controller import SimController

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
REASON_CONNECTION_TIMEOUT = 0x08
"""HCI error: Connection Timeout (what a peer sees when the other side vanishes)."""
RADIO_ADDRESS_PREFIX = "F0:5B:00:00"
HUB_ADDRESS_PREFIX = "F0:5B:01:00"


def public_address(text: str) -> hci.Address:
    """A public device address from ``AA:BB:CC:DD:EE:FF`` (bumble defaults to random)."""
    return hci.Address(text, hci.Address.PUBLIC_DEVICE_ADDRESS)


def _numbered_address(prefix: str, n: int) -> hci.Address:
    if not 0 < n <= 0xFFFF:
        raise ValueError(f"address number {n} out of range")
    return public_address(f"{prefix}:{n >> 8:02X}:{n & 0xFF:02X}")


class SimLink(LocalLink):
    """A bumble ``LocalLink`` that delivers LE data between public addresses too."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # bumble leaves it unannotated

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        """Deliver LE data from the sender's side of the connection, whatever its type."""
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        connection = sender_controller.le_connections.get(destination_address)
        receiver = self.find_le_controller(destination_address)
        if connection is None or receiver is None:
            logger.debug("LE data to %s dropped: no such link", destination_address)
            return
        source = connection.self_address
        asyncio.get_running_loop().call_soon(receiver.on_link_acl_data, source, transport, data)

    def drop_controller(self, controller: Controller, reason: int | None) -> None:
        """Take a controller off the link; its peers see their links end with ``reason``.

        With ``reason=None`` the peers are not told (the whole radio is shutting down).
        """
        for connection in list(controller.le_connections.values()):
            if reason is not None and self.find_le_controller(connection.peer_address):
                self.send_ll_control_pdu(
                    connection.self_address, connection.peer_address, ll.TerminateInd(reason)
                )
        controller.le_connections.clear()
        controller.le_legacy_advertiser.stop()
        for advertising_set in controller.advertising_sets.values():
            advertising_set.stop()
        if controller in self.controllers:
            self.remove_controller(controller)


class Radio:
    """A virtual radio in this process: peripherals and one central on one link.

    Create it inside the event loop that will use it, and close it (``async with``) so no
    advertising timers outlive the test that made it. Addresses are public and numbered in
    creation order unless given.
    """

    def __init__(self) -> None:
        self.link = SimLink()
        self._controllers: list[SimController] = []
        self._devices: list[Device] = []
        self._central: Device | None = None
        self._closed = False

    def add_device(self, name: str, address: str | None = None) -> Device:
        """A new device (not powered on) with a public address on this radio."""
        if self._closed:
            raise RuntimeError("the radio is closed")
        n = len(self._controllers) + 1
        addr = public_address(address) if address else _numbered_address(RADIO_ADDRESS_PREFIX, n)
        controller = SimController(name, link=self.link, public_address=addr)
        device = Device(name=name, host=Host(controller, AsyncPipeSink(controller)))
        self._controllers.append(controller)
        self._devices.append(device)
        return device

    async def open_central(self, name: str = "Spotter central") -> Device:
        """The radio's central (powered on): what the bleak backend drives."""
        if self._central is not None:
            raise RuntimeError("this radio already has its central")
        device = self.add_device(name)
        await device.power_on()
        self._central = device
        return device

    @property
    def central(self) -> Device | None:
        """The central, once opened."""
        return self._central

    async def close(self) -> None:
        """Power every device off and take every controller off the link."""
        if self._closed:
            return
        self._closed = True
        for device in self._devices:
            await device.power_off()
        for controller in self._controllers:
            self.link.drop_controller(controller, None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _HubClient(StreamPacketSource):
    """One TCP connection to the hub: HCI from the client to a controller of its own."""

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self._hub = hub
        self.transport: asyncio.WriteTransport | None = None
        self.controller: SimController | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.WriteTransport):
            raise TypeError(f"the hub needs a stream transport, not {transport!r}")
        self.transport = transport
        address = self._hub.next_address()
        self.controller = SimController(
            f"hub-{address}",
            host_source=self,
            host_sink=StreamPacketSink(transport),
            link=self._hub.link,
            public_address=address,
        )
        self._hub.clients.add(self)
        logger.info("hub: client %s connected as %s", transport.get_extra_info("peername"), address)

    def connection_lost(self, exc: Exception | None) -> None:
        self._hub.clients.discard(self)
        controller, self.controller = self.controller, None
        if controller is not None:
            logger.info("hub: client %s gone", controller.public_address)
            controller.host = None  # nobody listens any more; its peers have not noticed yet
            self._hub.drop_after_timeout(controller)
        self.on_transport_lost()


class Hub:
    """A virtual radio other processes join over TCP; one controller per connection.

    Listens on loopback only. ``port=0`` picks a free port; read it from :attr:`port`.
    """

    def __init__(self, port: int = 0, supervision_timeout_s: float = 0.0) -> None:
        if supervision_timeout_s < 0:
            raise ValueError("the supervision timeout cannot be negative")
        self.link = SimLink()
        self.clients: set[_HubClient] = set()
        self.supervision_timeout_s = supervision_timeout_s
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._assigned = 0
        self._pending_drops: set[asyncio.TimerHandle] = set()

    def drop_after_timeout(self, controller: Controller) -> None:
        """A client vanished: after the supervision timeout its peers see reason 0x08."""
        if self.supervision_timeout_s == 0:
            self.link.drop_controller(controller, REASON_CONNECTION_TIMEOUT)
            return

        def drop() -> None:
            self._pending_drops.discard(handle)
            self.link.drop_controller(controller, REASON_CONNECTION_TIMEOUT)

        handle = asyncio.get_running_loop().call_later(self.supervision_timeout_s, drop)
        self._pending_drops.add(handle)

    def next_address(self) -> hci.Address:
        """The public address of the next client's controller."""
        self._assigned += 1
        return _numbered_address(HUB_ADDRESS_PREFIX, self._assigned)

    async def start(self) -> None:
        """Start listening."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _HubClient(self), LOOPBACK, self._requested_port
        )
        logger.info("hub listening on %s:%d", LOOPBACK, self.port)

    @property
    def port(self) -> int:
        """The TCP port the hub listens on."""
        if self._server is None:
            raise RuntimeError("the hub is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening and hang up on every client."""
        if self._server is None:
            return
        self._server.close()
        for handle in self._pending_drops:
            handle.cancel()
        self._pending_drops.clear()
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_hub(port: int = 0, supervision_timeout_s: float = 0.0) -> None:
    """Run a hub until cancelled, announcing its port on stdout (see :func:`_announce`)."""
    async with Hub(port, supervision_timeout_s) as hub:
        _announce(hub.port)
        await asyncio.Event().wait()


def _announce(port: int) -> None:
    """One line on stdout that a parent process can wait for: ``hub listening on PORT``."""
    sys.stdout.write(f"hub listening on {port}\n")
    sys.stdout.flush()


class HubDevice:
    """A bumble device whose controller lives in a hub; close it to leave the radio."""

    def __init__(self, device: Device, transport: Transport) -> None:
        self.device = device
        self._transport = transport

    async def close(self) -> None:
        """Power the device off and hang up."""
        try:
            await self.device.power_off()
        finally:
            await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_hub_device(port: int, name: str, host: str = LOOPBACK) -> HubDevice:
    """Join the hub at ``host:port`` as a new device (not powered on).

    The device's public address is the one the hub gave its controller; it is known after
    ``power_on()`` as ``device.public_address``.
    """
    transport = await open_transport(f"tcp-client:{host}:{port}")
    # The address argument is the random address bumble would use; the radio uses the
    # public one, so any static random address does.
    device = Device.with_hci(
        name, hci.Address.generate_static_address(), transport.source, transport.sink
    )
    return HubDevice(device, transport)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m firmware_sim.radio hub [--port N]``: run a hub until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m firmware_sim.radio")
    commands = parser.add_subparsers(dest="command", required=True)
    hub = commands.add_parser("hub", help="serve a virtual radio to other processes over TCP")
    hub.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    hub.add_argument(
        "--supervision-timeout",
        type=float,
        default=0.0,
        help="seconds before a vanished client's links end for its peers",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_hub(args.port, args.supervision_timeout))


if __name__ == "__main__":
    main()
