"""Link behaviour over bleak: drops, going quiet, absent devices, scanning."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import BleakNotFoundError
from bumble.gatt import Characteristic, CharacteristicValue, Service

from firmware_sim.peripherals import HeartRateStrap
from firmware_sim.radio import public_address
from monitor.core import gatt
from monitor.core.sensors import SensorKind

pytestmark = [pytest.mark.radio, pytest.mark.asyncio, pytest.mark.timeout(30)]

WAIT_S = 5.0
ABSENT = "F0:5B:00:00:EE:EE"


@pytest.mark.parametrize("kind", list(SensorKind))
async def test_scanning_finds_each_kind_by_service_uuid(kind, make_sensor, backend):
    sensors = {k: await make_sensor(k) for k in SensorKind}
    devices = await BleakScanner.discover(
        timeout=0.5, service_uuids=[kind.service_uuid], backend=backend.scanner_class
    )
    assert [d.name for d in devices] == [sensors[kind].name]
    assert devices[0].address == str(sensors[kind].device.public_address).removesuffix("/P")


async def test_advertisement_carries_service_and_name(make_sensor, backend):
    sensor = await make_sensor(SensorKind.SPOTTER_TILT)
    found = await BleakScanner.find_device_by_name(
        "Spotter Tilt", timeout=WAIT_S, backend=backend.scanner_class
    )
    assert found is not None
    assert found.address == str(sensor.device.public_address).removesuffix("/P")


async def test_peripheral_dropping_the_link_fires_disconnected_callback(make_sensor, find, connect):
    sensor = await make_sensor(SensorKind.HEART_RATE)
    dropped = asyncio.Event()
    client = await connect(
        await find(SensorKind.HEART_RATE), disconnected_callback=lambda _c: dropped.set()
    )
    await sensor.drop_link()
    await asyncio.wait_for(dropped.wait(), WAIT_S)
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.read_gatt_char(gatt.BATTERY_LEVEL)

    # It advertises again at once: rescan and reconnect, as after a real drop-out.
    again = await connect(await find(SensorKind.HEART_RATE))
    assert again.is_connected


async def test_own_disconnect_does_not_fire_disconnected_callback(make_sensor, find, connect):
    sensor = await make_sensor(SensorKind.SPOTTER_TILT)
    calls: list[object] = []
    client = await connect(await find(SensorKind.SPOTTER_TILT), disconnected_callback=calls.append)
    await client.disconnect()
    assert not client.is_connected
    assert calls == []
    assert sensor.connections == []


async def test_quiet_sensor_is_not_found_until_it_comes_back(make_sensor, find, connect, backend):
    sensor = await make_sensor(SensorKind.WITMOTION)
    dropped = asyncio.Event()
    await connect(await find(SensorKind.WITMOTION), disconnected_callback=lambda _c: dropped.set())
    await sensor.go_offline()
    await asyncio.wait_for(dropped.wait(), WAIT_S)
    assert not sensor.subscribed.is_set()
    devices = await BleakScanner.discover(
        timeout=0.3,
        service_uuids=[SensorKind.WITMOTION.service_uuid],
        backend=backend.scanner_class,
    )
    assert devices == []
    await sensor.go_online()
    assert (await connect(await find(SensorKind.WITMOTION))).is_connected


async def test_connecting_to_an_absent_device_times_out(make_sensor, find, connect, backend):
    absent = BLEDevice(ABSENT, None, public_address(ABSENT))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BleakNotFoundError):
        await connect(absent, timeout=0.5)
    assert loop.time() - started < 3.0

    client = BleakClient(ABSENT, timeout=0.3, backend=backend.client_class)
    with pytest.raises(TimeoutError):
        await client.connect()

    # The central is not wedged by the cancelled attempts.
    await make_sensor(SensorKind.HEART_RATE)
    assert (await connect(await find(SensorKind.HEART_RATE))).is_connected


async def test_concurrent_connects_while_scanning(make_sensor, find, connect, backend):
    for kind in SensorKind:
        await make_sensor(kind)
    devices = [await find(kind) for kind in SensorKind]
    async with BleakScanner(backend=backend.scanner_class):  # another link still searching
        clients = await asyncio.gather(*(connect(d) for d in devices))
    assert all(c.is_connected for c in clients)


async def test_gatt_operation_in_flight_fails_when_the_link_drops(radio, find, connect):
    reading = asyncio.Event()

    async def never_answers(_connection: object) -> bytes:
        reading.set()
        await asyncio.Event().wait()
        return b""

    slow_uuid = "f8d7ffff-4cbe-42f1-8950-d15fd4f1e3dc"
    strap = HeartRateStrap(radio.add_device("slow"))
    strap.device.add_service(
        Service(
            slow_uuid,
            [
                Characteristic(
                    slow_uuid,
                    Characteristic.Properties.READ,
                    Characteristic.READABLE,
                    CharacteristicValue(read=never_answers),
                )
            ],
        )
    )
    await strap.start()
    client = await connect(await find(SensorKind.HEART_RATE))
    read = asyncio.create_task(client.read_gatt_char(slow_uuid))
    await asyncio.wait_for(reading.wait(), WAIT_S)
    await strap.go_offline()
    with pytest.raises(BleakError, match="disconnected"):
        await asyncio.wait_for(read, WAIT_S)


async def test_services_filter_limits_discovery(make_sensor, find, backend):
    await make_sensor(SensorKind.HEART_RATE)
    device = await find(SensorKind.HEART_RATE)
    async with BleakClient(
        device, services=[SensorKind.HEART_RATE.service_uuid], backend=backend.client_class
    ) as client:
        assert [s.uuid for s in client.services] == [SensorKind.HEART_RATE.service_uuid]
