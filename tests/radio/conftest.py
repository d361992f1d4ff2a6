"""Fixtures for the radio tests: an in-process virtual radio, its bleak backend, sensors.

Everything a test starts is stopped by the fixture that made it, in reverse order, so no
advertising timer, link or task outlives its event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.peripherals import SimPeripheral, peripheral_for
from firmware_sim.radio import Radio
from monitor.sensors import SensorKind

SCAN_TIMEOUT_S = 5.0
MakeSensor = Callable[[SensorKind], Awaitable[SimPeripheral]]


@pytest_asyncio.fixture
async def radio() -> AsyncIterator[Radio]:
    async with Radio() as radio:
        yield radio


@pytest_asyncio.fixture
async def backend(radio: Radio) -> AsyncIterator[SimBackend]:
    backend = await SimBackend.on_radio(radio)
    yield backend
    await backend.close()


@pytest_asyncio.fixture
async def make_sensor(radio: Radio) -> AsyncIterator[MakeSensor]:
    """Start a simulated sensor of a kind on the radio; stopped when the test ends."""
    started: list[SimPeripheral] = []

    async def make(kind: SensorKind) -> SimPeripheral:
        peripheral = peripheral_for(kind, radio.add_device(kind.value), battery_percent=87)
        await peripheral.start()
        started.append(peripheral)
        return peripheral

    yield make
    for peripheral in reversed(started):
        await peripheral.go_offline()


Find = Callable[[SensorKind], Awaitable[BLEDevice]]
Connect = Callable[..., Awaitable[BleakClientWithServiceCache]]


@pytest.fixture
def find(backend: SimBackend) -> Find:
    """Scan, as the daemon does, for the first sensor advertising a kind's service."""

    async def find(kind: SensorKind) -> BLEDevice:
        device = await BleakScanner.find_device_by_filter(
            lambda _d, ad: kind.service_uuid in ad.service_uuids,
            timeout=SCAN_TIMEOUT_S,
            service_uuids=[kind.service_uuid],
            backend=backend.scanner_class,
        )
        assert device is not None, f"no {kind} sensor found"
        return device

    return find


@pytest_asyncio.fixture
async def connect(backend: SimBackend) -> AsyncIterator[Connect]:
    """Connect the way the daemon does: bleak-retry-connector over the backend."""
    clients: list[BleakClientWithServiceCache] = []

    async def connect(device: BLEDevice, **kwargs: object) -> BleakClientWithServiceCache:
        client = await establish_connection(
            BleakClientWithServiceCache,
            device,
            device.name or device.address,
            backend=backend.client_class,
            max_attempts=1,
            **kwargs,
        )
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.disconnect()
