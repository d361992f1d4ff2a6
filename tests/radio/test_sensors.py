"""Each simulated sensor over bleak: discovery, byte-exact notifications, reads and writes."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from bleak import BleakGATTCharacteristic
from bleak.exc import BleakGATTProtocolError

from monitor.core import gatt
from monitor.core.codecs import battery, heart_rate, spotter_tilt, witmotion
from monitor.core.codecs.heart_rate import Contact, HeartRateMeasurement
from monitor.core.codecs.spotter_tilt import AnkleLock, ControlOp, TiltMeasurement
from monitor.core.sensors import SensorKind

pytestmark = [pytest.mark.radio, pytest.mark.asyncio, pytest.mark.timeout(30)]

WAIT_S = 5.0


def payloads(kind: SensorKind, n: int) -> list[bytes]:
    """``n`` distinct payloads of a kind, built by the project's codecs."""
    if kind is SensorKind.HEART_RATE:
        return [
            heart_rate.encode(
                HeartRateMeasurement(
                    bpm=60 + i,
                    contact=Contact.DETECTED,
                    energy_kj=i if i % 3 == 0 else None,
                    rr_s=(round(60 / (60 + i) * 1024) / 1024,) * (i % 4),
                    wide=i % 5 == 0,
                    rr_present=i % 4 > 0,
                )
            )
            for i in range(n)
        ]
    if kind is SensorKind.SPOTTER_TILT:
        return [
            spotter_tilt.encode(
                TiltMeasurement(
                    seq=i,
                    sensor_ms=10 * i,
                    pitch_deg=-30 + i * 0.5,
                    accel_g=(0.0, 0.5, 0.866) if i % 2 else None,
                    gyro_dps=(0.0, 12.5, 0.0) if i % 3 else None,
                    lock=AnkleLock.LOCKED if i % 2 else None,
                )
            )
            for i in range(n)
        ]
    frames = b"".join(
        witmotion.encode_frame(
            witmotion.WitMotionFrame((0.0, 0.0, 1.0), (0.0, float(i), 0.0), (0.0, i * 0.5, 0.0))
        )
        for i in range(n)
    )
    # The byte stream in notifications of varying size, frames split across them.
    cuts = [0]
    while cuts[-1] < len(frames):
        cuts.append(cuts[-1] + 7 + len(cuts) % 14)
    return [frames[a:b] for a, b in itertools.pairwise(cuts)]


@pytest.mark.parametrize("kind", list(SensorKind))
async def test_notifications_arrive_byte_exact_and_in_order(kind, make_sensor, find, connect):
    sensor = await make_sensor(kind)
    client = await connect(await find(kind))
    sent = payloads(kind, 60)
    received: list[bytes] = []
    all_in = asyncio.Event()

    def on_notify(_char: BleakGATTCharacteristic, data: bytearray) -> None:
        received.append(bytes(data))
        if len(received) == len(sent):
            all_in.set()

    await client.start_notify(kind.stream_uuid, on_notify)
    await asyncio.wait_for(sensor.subscribed.wait(), WAIT_S)
    for payload in sent:
        assert await sensor.notify(payload)
    await asyncio.wait_for(all_in.wait(), WAIT_S)
    assert received == sent


@pytest.mark.parametrize("kind", list(SensorKind))
async def test_services_are_discovered_with_characteristics_and_descriptors(
    kind, make_sensor, find, connect
):
    await make_sensor(kind)
    client = await connect(await find(kind))
    service = client.services.get_service(kind.service_uuid)
    assert service is not None
    stream = service.get_characteristic(kind.stream_uuid)
    assert stream is not None
    assert "notify" in stream.properties
    cccd = stream.get_descriptor("00002902-0000-1000-8000-00805f9b34fb")
    assert cccd is not None
    assert await client.read_gatt_descriptor(cccd.handle) == b"\x00\x00"
    battery_char = client.services.get_characteristic(gatt.BATTERY_LEVEL)
    if kind is SensorKind.WITMOTION:  # the real unit has no Battery Service (its profile)
        assert battery_char is None
    else:
        assert battery_char is not None
        assert sorted(battery_char.properties) == ["notify", "read"]


@pytest.mark.parametrize("kind", [SensorKind.HEART_RATE, SensorKind.SPOTTER_TILT])
async def test_battery_reads_and_drains_with_notifications(kind, make_sensor, find, connect):
    sensor = await make_sensor(kind)
    client = await connect(await find(kind))
    assert battery.decode(await client.read_gatt_char(gatt.BATTERY_LEVEL)).percent == 87
    levels: asyncio.Queue[int] = asyncio.Queue()
    await client.start_notify(
        gatt.BATTERY_LEVEL, lambda _c, data: levels.put_nowait(battery.decode(data).percent)
    )
    assert await sensor.drain_battery(5) == 82
    assert await asyncio.wait_for(levels.get(), WAIT_S) == 82
    await sensor.set_battery(0)
    assert await asyncio.wait_for(levels.get(), WAIT_S) == 0
    assert await sensor.drain_battery(5) == 0
    assert await client.read_gatt_char(gatt.BATTERY_LEVEL) == bytes([0])


async def test_heart_rate_strap_identifies_itself(make_sensor, find, connect):
    await make_sensor(SensorKind.HEART_RATE)
    client = await connect(await find(SensorKind.HEART_RATE))
    # the default strap is a Polar H10, with the Device Information its profile gives
    assert await client.read_gatt_char(gatt.MANUFACTURER_NAME) == b"Polar Electro Oy"
    assert await client.read_gatt_char(gatt.MODEL_NUMBER) == b"H10"
    assert await client.read_gatt_char(gatt.FIRMWARE_REVISION) == b"3.1.1"


async def test_tilt_control_point_tare_rate_identify(make_sensor, find, connect):
    sensor = await make_sensor(SensorKind.SPOTTER_TILT)
    client = await connect(await find(SensorKind.SPOTTER_TILT))
    info = spotter_tilt.decode_info(await client.read_gatt_char(gatt.TILT_SENSOR_INFO))
    assert (info.spec_version, info.rate_hz) == (1, 100)

    await client.write_gatt_char(gatt.TILT_CONTROL_POINT, b"\x01", response=True)
    await client.write_gatt_char(gatt.TILT_CONTROL_POINT, b"\x02\x32", response=True)
    await client.write_gatt_char(gatt.TILT_CONTROL_POINT, b"\x03", response=True)

    assert [c.op for c in sensor.commands] == [
        ControlOp.TARE,
        ControlOp.SET_RATE,
        ControlOp.IDENTIFY,
    ]
    assert (sensor.tare_count, sensor.identify_count, sensor.rate_hz) == (1, 1, 50)
    info = spotter_tilt.decode_info(await client.read_gatt_char(gatt.TILT_SENSOR_INFO))
    assert info.rate_hz == 50


@pytest.mark.parametrize(
    ("write", "att_error"),
    [
        (b"\x7f", spotter_tilt.ATT_UNKNOWN_OPCODE),
        (b"\x02\x00", spotter_tilt.ATT_INVALID_PARAMETER),
        (b"\x01\x00", spotter_tilt.ATT_INVALID_PARAMETER),
        (b"", spotter_tilt.ATT_INVALID_PARAMETER),
    ],
)
async def test_tilt_control_point_refuses_bad_writes(write, att_error, make_sensor, find, connect):
    sensor = await make_sensor(SensorKind.SPOTTER_TILT)
    client = await connect(await find(SensorKind.SPOTTER_TILT))
    with pytest.raises(BleakGATTProtocolError) as caught:
        await client.write_gatt_char(gatt.TILT_CONTROL_POINT, write, response=True)
    assert caught.value.code == att_error
    assert sensor.commands == []
    assert sensor.rate_hz == 100


async def test_witmotion_records_ff_aa_commands_and_refuses_others(make_sensor, find, connect):
    sensor = await make_sensor(SensorKind.WITMOTION)
    client = await connect(await find(SensorKind.WITMOTION))
    unlock = bytes.fromhex("ffaa6988b5")
    rate = bytes.fromhex("ffaa030900")
    await client.write_gatt_char(gatt.WITMOTION_WRITE, unlock, response=True)
    await client.write_gatt_char(gatt.WITMOTION_WRITE, rate, response=True)
    with pytest.raises(BleakGATTProtocolError) as caught:
        await client.write_gatt_char(gatt.WITMOTION_WRITE, b"\x55\x61", response=True)
    assert caught.value.code == 0xFC
    assert sensor.commands == [unlock, rate]
