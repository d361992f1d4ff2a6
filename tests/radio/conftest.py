"""Fixtures for the radio tests: an in-process virtual radio, its bleak backend, sensors.

Everything a test starts is stopped by the fixture that made it, in reverse order, so no
advertising timer, link or task outlives its event loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.peripherals import SimPeripheral, peripheral_for
from firmware_sim.radio import Radio
from monitor.core.sensors import SensorKind

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


# -- processes: a radio hub, and a daemon's configuration -------------------------------

SPOTTER = [sys.executable, "-m", "monitor.cli.main"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}


@pytest.fixture
def hub() -> Iterator[int]:
    proc = subprocess.Popen(
        [*SPOTTER, "sim", "radio", "--port", "0"], stdout=subprocess.PIPE, env=env()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("hub listening on "), line
        yield int(line.split()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def write_config(tmp_path: Path, port: int, profile: str = "beginner") -> Path:
    config = tmp_path / "spotter.toml"
    config.write_text(
        f"""
[station]
name = "xproc"
data_dir = "{tmp_path}"
profile = "{profile}"

[ble]
backend = "sim"
sim_hub = "tcp-client:127.0.0.1:{port}"
scan_timeout_s = 1.0
max_backoff_s = 1.0

[sensors.tilt]
kind = "spotter_tilt"

[sensors.hr]
kind = "heart_rate"
"""
    )
    return config
