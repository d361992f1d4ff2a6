"""The hub: the virtual radio shared between processes over loopback TCP."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from bleak import BleakScanner
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.generate import records
from firmware_sim.peripherals import HeartRateStrap
from firmware_sim.radio import Hub, open_hub_device
from firmware_sim.scenario import load_scenario
from monitor.core.codecs import heart_rate
from monitor.core.sensors import SensorKind
from monitor.core.trace import Notification

pytestmark = [pytest.mark.radio, pytest.mark.asyncio, pytest.mark.timeout(30)]

WAIT_S = 10.0
REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub() as hub:
        yield hub


async def test_sensor_and_central_meet_through_a_hub(hub):
    async with await open_hub_device(hub.port, "strap") as strap_device:
        strap = HeartRateStrap(strap_device.device)
        await strap.start()
        backend = await SimBackend.open_hub(hub.port)
        try:
            device = await BleakScanner.find_device_by_filter(
                lambda _d, ad: SensorKind.HEART_RATE.service_uuid in ad.service_uuids,
                timeout=WAIT_S,
                backend=backend.scanner_class,
            )
            assert device is not None
            assert device.name == "Polar H10 8C4D2A2B"  # the default strap's profile
            lost = asyncio.Event()
            client = await establish_connection(
                BleakClientWithServiceCache,
                device,
                "strap",
                disconnected_callback=lambda _c: lost.set(),
                backend=backend.client_class,
                max_attempts=1,
            )
            got: asyncio.Queue[bytes] = asyncio.Queue()
            await client.start_notify(
                SensorKind.HEART_RATE.stream_uuid, lambda _c, d: got.put_nowait(bytes(d))
            )
            await asyncio.wait_for(strap.subscribed.wait(), WAIT_S)
            sent = heart_rate.encode(heart_rate.HeartRateMeasurement(bpm=72, rr_s=(0.8125,)))
            assert await strap.notify(sent)
            assert await asyncio.wait_for(got.get(), WAIT_S) == sent

            # The strap's process vanishes: the hub ends its links (supervision timeout).
            await strap_device.close()
            await asyncio.wait_for(lost.wait(), WAIT_S)
            assert not client.is_connected
        finally:
            await backend.close()


CENTRAL = textwrap.dedent(
    """
    import asyncio, json, sys
    from bleak import BleakScanner
    from bleak_retry_connector import BleakClientWithServiceCache, establish_connection
    from firmware_sim.bleak_backend import SimBackend
    from monitor.core.sensors import SensorKind

    async def main(port: int) -> None:
        backend = await SimBackend.open_hub(port)
        received = {}
        ended = []
        for kind in (SensorKind.HEART_RATE, SensorKind.SPOTTER_TILT):
            device = await BleakScanner.find_device_by_filter(
                lambda _d, ad: kind.service_uuid in ad.service_uuids,
                timeout=10, backend=backend.scanner_class)
            gone = asyncio.Event()
            ended.append(gone)
            client = await establish_connection(
                BleakClientWithServiceCache, device, kind.value, max_attempts=1,
                disconnected_callback=lambda _c, gone=gone: gone.set(),
                backend=backend.client_class)
            got = received.setdefault(kind.value, [])
            await client.start_notify(kind.stream_uuid, lambda _c, d, got=got: got.append(d.hex()))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ended)), 20)
        await backend.close()
        sys.stdout.write(json.dumps(received) + "\\n")

    asyncio.run(main(int(sys.argv[1])))
    """
)

SCENARIO = """
name = "xproc"
duration_s = 1.0
theta = [[0, 0], [1, 15]]
hr = [[0, 70], [1, 90]]

[sensors.tilt]
kind = "spotter_tilt"
rate_hz = 20
ankle_lock = "locked"

[sensors.hr]
kind = "heart_rate"
interval_s = 0.1
energy = true
"""


async def _python(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )


async def test_hub_sensors_and_central_in_separate_processes(tmp_path):
    scenario_file = tmp_path / "xproc.toml"
    scenario_file.write_text(SCENARIO, encoding="utf-8")
    hub = await _python("-m", "firmware_sim.radio", "hub", "--port", "0")
    sensors = central = None
    try:
        assert hub.stdout is not None
        line = await asyncio.wait_for(hub.stdout.readline(), WAIT_S)
        port = int(line.decode().removeprefix("hub listening on "))
        sensors = await _python("-m", "firmware_sim.player", "--hub", str(port), str(scenario_file))
        central = await _python("-c", CENTRAL, str(port))
        out, _ = await asyncio.wait_for(central.communicate(), 25)
        assert central.returncode == 0
        await asyncio.wait_for(sensors.communicate(), WAIT_S)
        assert sensors.returncode == 0
    finally:
        for process in (central, sensors, hub):
            if process is not None and process.returncode is None:
                process.kill()
                await process.communicate()

    received = json.loads(out)
    played = load_scenario(str(scenario_file))
    for name, kind in (("hr", SensorKind.HEART_RATE), ("tilt", SensorKind.SPOTTER_TILT)):
        expected = [
            r.data.hex()
            for r in records(played)
            if isinstance(r, Notification) and r.sensor == name and r.char == kind.stream_uuid
        ]
        assert received[kind.value] == expected
        assert expected
