"""Every device profile on the virtual radio through the station's unchanged bleak code.

Capture round trips (profile -> simulated device -> ``spotter sensors capture`` -> profile ->
simulated device -> capture: the same table), each strap delivering heart rate to a station,
the dual strap hidden while a phone holds it, the WitMotion's rate command and register
replies, and live scenarios with a WitMotion at the rate the station set (angle and impact
alarms), or at 10 Hz when the unit ignores the command (the station says so).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.devices import DeviceProfile, builtin, builtin_names, parse_profile
from firmware_sim.peripherals import (
    HeartRateStrap,
    PhoneBusyError,
    SimPeripheral,
    WitMotionSensor,
    peripheral_from_profile,
)
from firmware_sim.radio import Radio
from firmware_sim.scenario import Scenario, TiltSensorSpec, load_scenario
from monitor.ble.backend import BleBackend
from monitor.ble.capture import CapturedDevice, capture
from monitor.ble.link import LinkStatus, SensorLink
from monitor.ble.scan import scan
from monitor.core import gatt
from monitor.core.codecs import heart_rate, witmotion
from monitor.core.engine import SafetyCore
from monitor.core.profiles import BUILTIN
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.core.sink import SinkBase
from monitor.core.trace import Notification, TraceReader
from monitor.settings import BleConfig, SensorConfig
from monitor.station.simrun import SimRun, run_simulation, source_of
from monitor.station.station import Station, StationClock
from monitor.station.status import station_state
from tests.radio.test_live_station import assert_declared, key, replayed

pytestmark = [pytest.mark.radio, pytest.mark.asyncio]
WAIT_S = 10.0
BLE = BleConfig(backend="sim", scan_timeout_s=0.5, connect_timeout_s=2.0, max_backoff_s=0.5)
HR_PROFILES = ["polar_h10", "basic_strap", "dual_strap"]
WITMOTION_SPEED = 4.0
"""Live WitMotion runs: 100 frames a second of 20 bytes each, at 4 x real time."""


def address_of(peripheral: SimPeripheral) -> str:
    return str(peripheral.device.public_address).removesuffix("/P")


@pytest_asyncio.fixture
async def sim_backend(radio: Radio, backend: SimBackend) -> BleBackend:
    return BleBackend(backend.scanner_class, backend.client_class)


@pytest_asyncio.fixture
async def start(radio: Radio) -> AsyncIterator[Any]:
    """Start a simulated device built from a profile; closed when the test ends."""
    started: list[SimPeripheral] = []

    async def make(profile: DeviceProfile, **options: Any) -> SimPeripheral:
        device = radio.add_device(profile.model)
        if options:
            peripheral: SimPeripheral = WitMotionSensor(device, profile, **options)
        else:
            peripheral = peripheral_from_profile(profile, device)
        await peripheral.start()
        started.append(peripheral)
        return peripheral

    yield make
    for peripheral in reversed(started):
        await peripheral.close()


# -- capture -> profile -> simulated device -> capture ------------------------------------


def values(captured: CapturedDevice) -> list[tuple[str, bytes | None]]:
    return [(c.uuid, c.value) for _, chars in captured.services for c in chars]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", builtin_names())
async def test_capture_of_a_device_built_from_its_capture_gives_the_same_table(
    name: str, start: Any, sim_backend: BleBackend
) -> None:
    profile = builtin(name)
    first = await capture(sim_backend, address_of(await start(profile)), WAIT_S)
    captured = parse_profile(first.profile_data(), f"capture of {name}")
    assert captured.table() == profile.table()  # exactly the profile's table, nothing else
    assert first.name == profile.default_name
    assert first.advertised_services == profile.advertised_services
    for uuid, value in values(first):
        static = profile.characteristic(uuid)
        assert static is not None
        if static.value is not None:
            assert value == static.value, uuid
    second = await capture(sim_backend, address_of(await start(captured)), WAIT_S)
    again = parse_profile(second.profile_data(), "second capture")
    assert again.table() == captured.table()
    assert values(second) == values(first)


# -- straps deliver heart rate to a station ------------------------------------------------


class Tap:
    """The station's link listener, also telling the test what arrived."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.data: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    def on_data(self, sensor: str, char: str, data: bytes) -> None:
        self.station.on_data(sensor, char, data)
        self.data.put_nowait((char, data))

    def on_link(self, sensor: str, connected: bool) -> None:
        self.station.on_link(sensor, connected)


@pytest_asyncio.fixture
async def hr_station(sim_backend: BleBackend) -> AsyncIterator[Any]:
    """A station with one heart-rate link (found by address) running; stopped at the end."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def make(address: str) -> tuple[Station, Tap, SensorLink]:
        core = SafetyCore({"hr": SensorSpec(SensorKind.HEART_RATE)}, BUILTIN["beginner"])
        station = Station(core, StationClock())
        tap = Tap(station)
        config = SensorConfig(kind=SensorKind.HEART_RATE, address=address)
        link = SensorLink("hr", config, BLE, sim_backend, tap)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(station.run([link], stop))))
        return station, tap, link

    yield make
    for stop, task in running:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def next_measurement(tap: Tap) -> heart_rate.HeartRateMeasurement:
    while True:
        char, data = await asyncio.wait_for(tap.data.get(), WAIT_S)
        if char == gatt.HEART_RATE_MEASUREMENT:
            return heart_rate.decode(data)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", HR_PROFILES)
async def test_each_strap_delivers_heart_rate_to_the_station(
    name: str, start: Any, hr_station: Any
) -> None:
    strap = await start(builtin(name))
    assert isinstance(strap, HeartRateStrap)
    station, tap, link = await hr_station(address_of(strap))
    await asyncio.wait_for(strap.subscribed.wait(), WAIT_S)
    got = []
    for _ in range(10):
        await strap.send(strap.typical(72))
        got.append(await next_measurement(tap))
    assert station.core.signals.hr_bpm == 72
    assert link.state.status is LinkStatus.STREAMING
    quirks = strap.profile.quirks
    contact = {m.contact for m in got}
    if quirks["contact"] == "supported":
        assert contact == {heart_rate.Contact.DETECTED}
    else:
        assert contact == {heart_rate.Contact.UNSUPPORTED}
    assert all(bool(m.rr_s) == bool(quirks["rr_intervals"]) for m in got)
    energy = [m.energy_kj for m in got if m.energy_kj is not None]
    assert len(energy) == (1 if "energy_expended_every" in quirks else 0)
    battery = station.core.stats.sensors["hr"].battery_percent
    assert battery == (100 if strap.has_battery else None)


@pytest.mark.timeout(60)
async def test_the_dual_strap_hides_while_a_phone_holds_it(
    start: Any, hr_station: Any, sim_backend: BleBackend
) -> None:
    strap = await start(builtin("dual_strap"))
    assert isinstance(strap, HeartRateStrap)
    await strap.connect_phone()
    _station, tap, link = await hr_station(address_of(strap))
    seen = await scan(sim_backend, timeout_s=1.0, read_battery=False)  # the station looks too
    assert address_of(strap) not in [f.address for f in seen]
    assert not strap.connections
    assert link.state.status is LinkStatus.SEARCHING
    await strap.disconnect_phone()  # the phone lets go: the station finds it
    await asyncio.wait_for(strap.subscribed.wait(), WAIT_S)
    await strap.send(strap.typical(65))
    assert (await next_measurement(tap)).bpm == 65
    # one BLE central at a time: while the station holds it, nobody else sees it, no phone
    seen = await scan(sim_backend, timeout_s=1.0, read_battery=False)
    assert address_of(strap) not in [f.address for f in seen]
    with pytest.raises(PhoneBusyError):
        await strap.connect_phone()


# -- the WitMotion's rate command and register replies -------------------------------------


def frames(n: int) -> list[bytes]:
    return [
        witmotion.encode_frame(
            witmotion.WitMotionFrame((0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (0.0, i * 0.1, 0.0))
        )
        for i in range(n)
    ]


async def collect_until_reply(
    sensor: WitMotionSensor, client: Any, chunks: list[bytes]
) -> tuple[list[witmotion.WitMotionFrame], int]:
    """Play ``chunks``, then read register 0x03: the reply comes after everything played.
    The frames the central decoded, and its discarded-byte count."""
    got: asyncio.Queue[bytes] = asyncio.Queue()
    await client.start_notify(gatt.WITMOTION_NOTIFY, lambda _c, d: got.put_nowait(bytes(d)))
    for chunk in chunks:
        await sensor.play(gatt.WITMOTION_NOTIFY, chunk)
    await client.write_gatt_char(gatt.WITMOTION_WRITE, witmotion.read_command(0x03), False)
    stream = witmotion.WitMotionStream()
    decoded = []
    while True:
        data = await asyncio.wait_for(got.get(), WAIT_S)
        if data[:3] == b"\x55\x71\x03":
            await client.stop_notify(gatt.WITMOTION_NOTIFY)
            return decoded, stream.discarded_bytes
        decoded += stream.feed(data)


@pytest.mark.timeout(60)
async def test_the_witmotion_runs_at_10_hz_until_told_and_honours_the_rate_command(
    start: Any, find: Any, connect: Any
) -> None:
    sensor = await start(builtin("witmotion_bwt901ble5"), source_rate_hz=100)
    client = await connect(await find(SensorKind.WITMOTION))
    played = b"".join(frames(100))  # one second at 100 Hz, cut in 7-byte pieces
    chunks = [played[i : i + 7] for i in range(0, len(played), 7)]
    at_10, discarded = await collect_until_reply(sensor, client, chunks)
    assert len(at_10) == 10  # the default return rate
    assert discarded == 0  # whole frames, even though the input split them
    for command in (witmotion.UNLOCK, witmotion.rate_command(100)):
        await client.write_gatt_char(gatt.WITMOTION_WRITE, command, response=False)
    at_100, _ = await collect_until_reply(sensor, client, frames(100))
    assert len(at_100) == 100
    assert sensor.rate_hz == 100
    assert sensor.register_reply(0x03)[4:6] == b"\x09\x00"


@pytest.mark.timeout(60)
async def test_a_register_read_is_answered_by_55_71_in_the_stream(
    start: Any, find: Any, connect: Any
) -> None:
    await start(builtin("witmotion_bwt901ble5"))
    client = await connect(await find(SensorKind.WITMOTION))
    got: asyncio.Queue[bytes] = asyncio.Queue()
    await client.start_notify(gatt.WITMOTION_NOTIFY, lambda _c, d: got.put_nowait(bytes(d)))
    await client.write_gatt_char(gatt.WITMOTION_WRITE, witmotion.read_command(0x03), False)
    reply = await asyncio.wait_for(got.get(), WAIT_S)
    assert reply[:4] == bytes.fromhex("55710300")
    assert len(reply) == 20
    assert reply[4:6] == b"\x06\x00"  # register 0x03 = 0x06: 10 Hz, the factory default
    stream = witmotion.WitMotionStream()
    assert stream.feed(reply) == []
    assert stream.skipped_frames == 1  # the station's decoder skips it whole


# -- live: a WitMotion at the rate the station set, or at 10 Hz --------------------------


def as_witmotion(name: str) -> Scenario:
    scenario = load_scenario(name).live_variant()
    sensors = {
        n: s.model_copy(update={"kind": "witmotion"}) if isinstance(s, TiltSensorSpec) else s
        for n, s in scenario.model.sensors.items()
    }
    model = scenario.model.model_copy(update={"sensors": sensors})
    return Scenario(model, scenario.profile, scenario.source)


class Watch(SinkBase):
    """A ticking sink that notes the station's measured tilt rate and problems."""

    def __init__(self, run: SimRun) -> None:
        self.run = run
        self.rates: list[float] = []
        self.problems: list[str] = []

    def alarm_events(self, _events: object) -> None:
        pass

    def tick(self, _t: float) -> None:
        station = self.run.station
        assert station is not None
        view = station.view()
        tilt = next((s for s in view.sensors if s.is_tilt), None)
        if tilt is not None and tilt.rate_hz is not None:
            self.rates.append(tilt.rate_hz)
        if "impact detection" in view.problems:
            self.problems.append(view.problems["impact detection"])
            tilt = next(s for s in station_state(station)["sensors"] if s["name"] == "tilt")
            assert tilt["rate_hz"] < 50


def tilt_frames(trace: Path) -> int:
    """Data frames the tilt sensor sent, as the flight recorder kept them."""
    stream = witmotion.WitMotionStream()
    with open(trace, encoding="utf-8") as fh:
        for record in TraceReader(fh, str(trace)):
            if isinstance(record, Notification) and record.sensor == "tilt":
                stream.feed(record.data)
    return stream.frames


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", ["over-angle", "fall-impact"])
async def test_a_witmotion_at_the_rate_the_station_set_raises_angle_and_impact_alarms(
    name: str, tmp_path: Path
) -> None:
    scenario = as_witmotion(name)
    run = SimRun()
    watch = Watch(run)
    await run_simulation(
        source_of(scenario),
        profile=scenario.profile,
        age_years=scenario.model.age,
        data_dir=tmp_path,
        speed=WITMOTION_SPEED,
        sinks=[watch],
        result=run,
    )
    declared = [(x.id, x.event.value, x.priority) for x in scenario.model.expect]
    assert_declared(key(run.events), declared)
    assert run.trace_path is not None
    assert key(run.events) == key(replayed(run.trace_path, name))
    # The sensor ran at what the station asked (100 Hz; left alone it would send 10 frames a
    # second): counted in the recorded trace, which does not depend on how busy the machine is.
    assert tilt_frames(run.trace_path) >= 50 * scenario.model.duration_s
    assert max(watch.rates) >= 50


def ignoring_the_rate_command(wit: DeviceProfile) -> DeviceProfile:
    return dataclasses.replace(wit, quirks={**wit.quirks, "honours_rate_command": False})


def without_a_command_characteristic(wit: DeviceProfile) -> DeviceProfile:
    (service,) = wit.services
    chars = tuple(c for c in service.characteristics if c.uuid != wit.quirks["command"])
    return dataclasses.replace(wit, services=(dataclasses.replace(service, characteristics=chars),))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("variant", [ignoring_the_rate_command, without_a_command_characteristic])
async def test_a_witmotion_left_at_10_hz_makes_the_station_say_so(
    variant: Any, tmp_path: Path
) -> None:
    """A unit that ignores the command, or refuses it, still streams; the station says what
    that costs."""
    scenario = as_witmotion("fall-impact")
    ignoring = variant(builtin("witmotion_bwt901ble5"))
    run = SimRun()
    watch = Watch(run)
    await run_simulation(
        source_of(scenario),
        profile=scenario.profile,
        age_years=None,
        data_dir=tmp_path,
        speed=WITMOTION_SPEED,
        sinks=[watch],
        result=run,
        for_s=20,
        profiles={"tilt": ignoring},
    )
    assert "impact detection unavailable: sensor at 10 Hz" in watch.problems
    assert run.trace_path is not None
    assert tilt_frames(run.trace_path) <= 10 * 20 + 1
