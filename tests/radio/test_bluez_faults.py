"""BlueZ failure modes that users of bleak report, reproduced on the virtual radio, and the
station's handling of each (docs/ble-failures.md). Alarm times are judged on the station's
clock, link behaviour by the order of events, never by wall-clock margins.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pytest
import pytest_asyncio
from bleak import BleakClient
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError
from bumble import hci
from bumble.device import Device

from firmware_sim.bleak_backend import BLUEZ_ERROR_IN_PROGRESS, SimBackend
from firmware_sim.peripherals import SimPeripheral, TiltSensor, peripheral_for
from firmware_sim.radio import Hub, Radio, open_hub_device
from monitor.ble.backend import BleBackend
from monitor.ble.link import NOT_FOUND_HINT, LinkStatus, SensorLink, describe, reason_text
from monitor.ble.scan import Found, not_seen, scan
from monitor.core.alarms import AlarmEvent
from monitor.core.codecs import heart_rate, spotter_tilt
from monitor.core.engine import SafetyCore
from monitor.core.profiles import BUILTIN
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.core.sink import SinkBase
from monitor.core.trace import InputKind
from monitor.settings import BleConfig, SensorConfig
from monitor.station.station import Station, StationClock
from monitor.station.status import station_state
from tests.radio.conftest import SPOTTER, Connect, Find, MakeSensor, env, write_config

pytestmark = pytest.mark.radio

WAIT_S = 20.0
TICK_S = 0.1
"""The station's ticker: a time-based alarm is raised at the first 0.1 s mark past its due."""
EPS = 1e-6
STAMP_S = 1e-4
"""The station stamps inputs to 0.1 ms (the trace's precision); the link's watchdog runs on
the unrounded event-loop clock."""
HCI_REMOTE_USER_TERMINATED = 0x13
HCI_LOCAL_HOST_TERMINATED = 0x16
HCI_CONNECTION_TIMEOUT = 0x08
BLE = BleConfig(
    backend="sim",
    scan_timeout_s=0.5,
    connect_timeout_s=2.0,
    max_backoff_s=2.0,
    silence_reconnect_s=3.0,
)


@dataclass
class Rig(SinkBase):
    """A station and one link per sensor on the in-process radio, with what happened when
    (the station's own time stamps)."""

    station: Station
    links: dict[str, SensorLink]
    backend: SimBackend
    events: list[AlarmEvent] = field(default_factory=list)
    data_t: dict[str, list[float]] = field(default_factory=dict)
    link_t: list[tuple[float, str, bool]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        """Wait until ``condition`` holds, checked whenever data, a link change or an alarm
        event reaches the station."""
        async with asyncio.timeout(timeout_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    # LinkListener: hand to the station, note the time the station gave the input.
    def on_data(self, sensor: str, char: str, data: bytes) -> None:
        self.station.on_data(sensor, char, data)
        self.data_t.setdefault(sensor, []).append(self.station.core.t)
        self._changed.set()

    def on_link(self, sensor: str, connected: bool) -> None:
        self.station.on_link(sensor, connected)
        self.link_t.append((self.station.core.t, sensor, connected))
        self._changed.set()

    # Sink
    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        self.events.extend(events)
        self._changed.set()

    def downs(self, sensor: str) -> list[float]:
        return [t for t, s, up in self.link_t if s == sensor and not up]

    def of(self, alarm: str, event: str) -> list[AlarmEvent]:
        return [e for e in self.events if e.id == alarm and e.event.value == event]

    def on_station_clock(self, loop_times: list[float]) -> list[float]:
        """Event-loop times (the backend's records) on the station clock."""
        clock = self.station.clock
        assert isinstance(clock, StationClock)
        return [(t - clock.origin) * clock.speed for t in loop_times]


RunStation = Callable[[dict[str, SensorKind]], Awaitable[Rig]]


@pytest_asyncio.fixture
async def run_station(backend: SimBackend) -> AsyncIterator[RunStation]:
    """Start a station whose links use the radio's backend; a session starts at once."""
    stop = asyncio.Event()
    running: list[asyncio.Task[None]] = []

    async def start(sensors: dict[str, SensorKind]) -> Rig:
        core = SafetyCore({n: SensorSpec(k) for n, k in sensors.items()}, BUILTIN["beginner"])
        station = Station(core, StationClock())
        rig = Rig(station, {}, backend)
        station.sinks.append(rig)
        ble_backend = BleBackend(
            backend.scanner_class,
            backend.client_class,
            disconnect_reason=backend.disconnect_reason,
        )
        rig.links = {
            n: SensorLink(n, SensorConfig(kind=k), BLE, ble_backend, rig)
            for n, k in sensors.items()
        }
        station.user_input(InputKind.SESSION_START)
        running.append(asyncio.create_task(station.run(list(rig.links.values()), stop)))
        return rig

    yield start
    stop.set()
    for task in running:
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def feeding(sensor: SimPeripheral, period_s: float) -> AsyncIterator[None]:
    """Notify readings (upright tilt, or 70 bpm) every ``period_s`` while the block runs."""

    async def feed() -> None:
        n = 0
        while True:
            if isinstance(sensor, TiltSensor):
                await sensor.notify(
                    spotter_tilt.encode(spotter_tilt.TiltMeasurement(n % 65536, 0, 0.0))
                )
            else:
                await sensor.notify(heart_rate.encode(heart_rate.HeartRateMeasurement(70)))
            n += 1
            await asyncio.sleep(period_s)

    task = asyncio.create_task(feed())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def raised_on_time(event: AlarmEvent, due_t: float) -> None:
    """Raised at the first tick mark at or past ``due_t``: never early, never a tick late."""
    assert due_t - EPS <= event.t <= due_t + TICK_S + EPS, (event, due_t)


# -- what the link says about BlueZ's errors ---------------------------------------------


def test_in_progress_and_a_missing_bluez_get_their_own_hints() -> None:
    busy = BleakDBusError(BLUEZ_ERROR_IN_PROGRESS, ["Operation already in progress"])
    assert "still busy with an earlier connect or scan" in describe(busy)
    assert "not running" not in describe(busy)
    missing = BleakDBusError(
        "org.freedesktop.DBus.Error.ServiceUnknown",
        ["The name org.bluez was not provided by any .service files"],
    )
    assert "BlueZ is not running" in describe(missing)


def test_disconnect_reasons_are_named_as_the_core_spec_names_them() -> None:
    assert reason_text(0x08) == "0x08 (Connection Timeout)"
    assert reason_text(0x13) == "0x13 (Remote User Terminated Connection)"
    assert reason_text(0xEE) == "0xee (unknown reason)"


def test_not_seen_matches_by_address_then_name_then_kind() -> None:
    strap = Found("AA:BB:CC:DD:EE:FF", "Polar H10 1234", -60, SensorKind.HEART_RATE)
    hr_by_address = SensorConfig(kind=SensorKind.HEART_RATE, address="aa:bb:cc:dd:ee:ff")
    hr_by_name = SensorConfig(kind=SensorKind.HEART_RATE, name="Polar H10 1234")
    other = SensorConfig(kind=SensorKind.HEART_RATE, address="11:22:33:44:55:66")
    tilt = SensorConfig(kind=SensorKind.SPOTTER_TILT)
    sensors = {"a": hr_by_address, "n": hr_by_name, "o": other, "t": tilt}
    assert not_seen([strap], sensors) == [
        f"sensor o (heart_rate, 11:22:33:44:55:66): {NOT_FOUND_HINT}",
        f"sensor t (spotter_tilt, any in range): {NOT_FOUND_HINT}",
    ]


# -- a. notifications stop while the link still says connected ----------------------------


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_stalled_link_alarms_on_time_then_reconnects_and_resubscribes(
    make_sensor: MakeSensor, run_station: RunStation
) -> None:
    tilt = await make_sensor(SensorKind.SPOTTER_TILT)
    rig = await run_station({"tilt": SensorKind.SPOTTER_TILT})
    link = rig.links["tilt"]
    async with feeding(tilt, 0.05):
        await rig.until(lambda: len(rig.data_t.get("tilt", [])) >= 10)
        tilt.stall()
        await rig.until(lambda: bool(rig.downs("tilt")))  # the station gave up on the link
        stalled_at = len(rig.data_t["tilt"])
        last_t = rig.data_t["tilt"][-1]
        await rig.until(lambda: len(rig.data_t["tilt"]) > stalled_at + 5)  # streaming again
        await rig.until(lambda: bool(rig.of("tilt.signal_lost", "cleared")))

    (raised,) = rig.of("tilt.signal_lost", "raised")
    raised_on_time(raised, last_t + BUILTIN["beginner"].tilt_lost_delay_s)
    assert raised.priority.label == "medium"  # upright: medium, not latched
    # The watchdog, not the radio, ended the link: after silence_reconnect_s of silence...
    downs = rig.downs("tilt")
    assert len(downs) == 1
    assert downs[0] >= last_t + BLE.silence_reconnect_s - STAMP_S
    # ...by disconnecting itself (the sensor was told "remote user terminated")...
    assert tilt.disconnect_reasons == [HCI_REMOTE_USER_TERMINATED]
    # ...then rescanning, reconnecting and subscribing again.
    assert link.state.connects == 2
    assert link.state.status is LinkStatus.STREAMING
    assert len(rig.backend.connect_attempts) == 2


# -- b. the device vanishes from BlueZ's cache after an unsolicited disconnect --------------


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_forgotten_device_cannot_be_reconnected_without_a_rescan(
    make_sensor: MakeSensor, find: Find, connect: Connect, backend: SimBackend
) -> None:
    backend.faults.forget_after_disconnect = True
    strap = await make_sensor(SensorKind.HEART_RATE)
    device = await find(SensorKind.HEART_RATE)
    dropped = asyncio.Event()
    await connect(device, disconnected_callback=lambda _c: dropped.set())
    await strap.drop_link()
    await asyncio.wait_for(dropped.wait(), WAIT_S)

    stale = BleakClient(device, backend=backend.client_class)
    with pytest.raises(BleakDeviceNotFoundError, match="was not found"):
        await stale.connect()
    assert (await connect(await find(SensorKind.HEART_RATE))).is_connected  # after a rescan


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_after_an_unsolicited_disconnect_the_station_rescans_and_logs_the_reason(
    make_sensor: MakeSensor,
    run_station: RunStation,
    backend: SimBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="monitor.ble.link")
    backend.faults.forget_after_disconnect = True
    strap = await make_sensor(SensorKind.HEART_RATE)
    rig = await run_station({"hr": SensorKind.HEART_RATE})
    link = rig.links["hr"]
    async with feeding(strap, 0.2):
        await rig.until(lambda: len(rig.data_t.get("hr", [])) >= 3)
        await strap.go_offline()  # drops the link (0x13) and stops advertising
        last_t = rig.data_t["hr"][-1]
        await rig.until(lambda: bool(rig.of("hr.signal_lost", "raised")))
        assert link.state.last_error == NOT_FOUND_HINT
        assert link.state.status is LinkStatus.LOST
        await strap.go_online()
        await rig.until(lambda: bool(rig.of("hr.signal_lost", "cleared")))

    (raised,) = rig.of("hr.signal_lost", "raised")
    raised_on_time(raised, last_t + BUILTIN["beginner"].hr_lost_delay_s)
    assert link.state.connects == 2
    # No attempt went to the stale device: every connect followed a scan that saw it.
    assert len(backend.connect_attempts) == 2
    assert "reason 0x13 (Remote User Terminated Connection)" in caplog.text


# -- c. org.bluez.Error.InProgress on connect ---------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_in_progress_is_retried_with_back_off_not_in_a_tight_loop(
    make_sensor: MakeSensor,
    run_station: RunStation,
    backend: SimBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="monitor.ble.link")
    backend.faults.in_progress = 5
    tilt = await make_sensor(SensorKind.SPOTTER_TILT)
    rig = await run_station({"tilt": SensorKind.SPOTTER_TILT})
    async with feeding(tilt, 0.05):
        await rig.until(lambda: rig.links["tilt"].state.status is LinkStatus.STREAMING)
        await rig.until(lambda: bool(rig.of("tilt.signal_lost", "cleared")))

    a = rig.on_station_clock(backend.connect_attempts)
    assert len(a) == 6  # five refused, the sixth connected
    gaps = [later - earlier for earlier, later in itertools.pairwise(a)]
    # bleak-retry-connector: two attempts per establish_connection (max_attempts=2), 0.25 s
    # apart (its D-Bus back-off); between calls the link backs off 0.5 s, then 1 s.
    assert min(gaps) >= 0.25 - EPS, gaps
    assert gaps[1] >= 0.25 + 0.5 - EPS, gaps
    assert gaps[3] >= 0.25 + 1.0 - EPS, gaps
    assert caplog.text.count("org.bluez.Error.InProgress") == 2  # one warning per call
    assert "retrying with back-off" in caplog.text
    # The session started at once with no tilt data: lost after 2 s, on time, while the
    # link was still backing off (it cannot connect before 0.25 * 3 + 0.5 + 1 s).
    (raised,) = rig.of("tilt.signal_lost", "raised")
    raised_on_time(raised, BUILTIN["beginner"].tilt_lost_delay_s)


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_in_progress_on_starting_a_scan_is_retried_with_back_off(
    make_sensor: MakeSensor,
    run_station: RunStation,
    backend: SimBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="monitor.ble.link")
    backend.faults.scan_in_progress = 3
    tilt = await make_sensor(SensorKind.SPOTTER_TILT)
    rig = await run_station({"tilt": SensorKind.SPOTTER_TILT})
    async with feeding(tilt, 0.05):
        await rig.until(lambda: bool(rig.of("tilt.signal_lost", "cleared")))

    scans = rig.on_station_clock(backend.scan_attempts)
    gaps = [later - earlier for earlier, later in itertools.pairwise(scans[:4])]
    assert [g >= want - EPS for g, want in zip(gaps, [0.5, 1.0, 2.0], strict=True)] == [True] * 3
    assert caplog.text.count("org.bluez.Error.InProgress") == 3
    assert rig.links["tilt"].state.connects == 1
    # No data for 2 s from the session's start: the link cannot stream before 3.5 s.
    (raised,) = rig.of("tilt.signal_lost", "raised")
    raised_on_time(raised, BUILTIN["beginner"].tilt_lost_delay_s)


# -- d. a strap busy with a phone or watch ------------------------------------------------


async def phone_takes(radio: Radio, strap: SimPeripheral) -> Device:
    """Another central (a phone) connects to the strap: it stops advertising."""
    phone = radio.add_device("phone")
    await phone.power_on()
    await phone.connect(
        strap.device.public_address, own_address_type=hci.OwnAddressType.PUBLIC, timeout=5.0
    )
    return phone


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_strap_held_by_a_phone_is_reported_and_taken_when_the_phone_lets_go(
    radio: Radio, make_sensor: MakeSensor, run_station: RunStation, backend: SimBackend
) -> None:
    strap = await make_sensor(SensorKind.HEART_RATE)
    phone = await phone_takes(radio, strap)
    ble_backend = BleBackend(backend.scanner_class, backend.client_class)
    found = await scan(ble_backend, 0.5, read_battery=False)
    configured = {"hr": SensorConfig(kind=SensorKind.HEART_RATE)}
    assert not_seen(found, configured) == [
        f"sensor hr (heart_rate, any in range): {NOT_FOUND_HINT}"
    ]

    rig = await run_station({"hr": SensorKind.HEART_RATE})
    link = rig.links["hr"]
    async with feeding(strap, 0.2):
        await rig.until(lambda: bool(rig.of("hr.signal_lost", "raised")))
        (shown,) = station_state(rig.station)["sensors"]
        assert (shown["link"], shown["last_error"]) == ("searching", NOT_FOUND_HINT)
        (raised,) = rig.of("hr.signal_lost", "raised")
        raised_on_time(raised, BUILTIN["beginner"].hr_lost_delay_s)  # missing from the start
        for connection in list(phone.connections.values()):
            await connection.disconnect()  # the phone lets go; the strap advertises again
        await rig.until(lambda: link.state.status is LinkStatus.STREAMING)
        await rig.until(lambda: bool(rig.of("hr.signal_lost", "cleared")))
    assert link.state.last_error is None


# -- processes: a hub in this process, sensors on it, daemons and commands as processes ----


@contextlib.asynccontextmanager
async def on_hub(hub: Hub, *kinds: SensorKind) -> AsyncIterator[dict[SensorKind, SimPeripheral]]:
    """Sensors of ``kinds`` joined to ``hub`` and advertising; gone when the block ends."""
    async with contextlib.AsyncExitStack() as stack:
        sensors = {}
        for kind in kinds:
            joined = await open_hub_device(hub.port, kind.value)
            stack.push_async_callback(joined.close)
            sensor = peripheral_for(kind, joined.device)
            await sensor.start()
            stack.push_async_callback(sensor.go_offline)
            sensors[kind] = sensor
        yield sensors


def link_end(sensor: SimPeripheral) -> asyncio.Future[int]:
    """The reason the sensor's present link will end with."""
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    (connection,) = sensor.connections
    connection.on(
        connection.EVENT_DISCONNECTION,
        lambda reason: None if ended.done() else ended.set_result(reason),
    )
    return ended


def appending(log: Path) -> BinaryIO:
    """Open for appending (the child inherits it; the caller closes it once it started)."""
    return open(log, "ab")


async def start_daemon(config: Path, log: Path) -> asyncio.subprocess.Process:
    """``spotter run`` on the configuration, its output appended to ``log``."""
    err = appending(log)
    try:
        return await asyncio.create_subprocess_exec(
            *SPOTTER, "run", "--config", str(config), stdout=err, stderr=err, env=env()
        )
    finally:
        err.close()


async def streaming_to(sensors: dict[SensorKind, SimPeripheral]) -> None:
    """Every sensor has a central subscribed to its stream."""
    for sensor in sensors.values():
        await asyncio.wait_for(sensor.subscribed.wait(), 60)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.asyncio
async def test_the_daemon_lets_go_on_sigterm_or_sigint_and_a_new_one_copes_with_a_killed_ones_link(
    tmp_path: Path,
) -> None:
    timeout_s = 3.0
    log = tmp_path / "daemons.log"
    async with Hub(0, supervision_timeout_s=timeout_s) as hub:
        config = write_config(tmp_path, hub.port)
        async with on_hub(hub, SensorKind.SPOTTER_TILT, SensorKind.HEART_RATE) as sensors:
            # SIGTERM: the station disconnects each sensor itself before it exits.
            first = await start_daemon(config, log)
            await streaming_to(sensors)
            ends = [link_end(s) for s in sensors.values()]
            first.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(first.wait(), 30) == 0, log.read_text()
            clean = [await asyncio.wait_for(e, 30) for e in ends]
            assert set(clean) <= {HCI_REMOTE_USER_TERMINATED, HCI_LOCAL_HOST_TERMINATED}, clean

            # SIGKILL: nobody disconnects; the sensors stay held (and silent on the air)
            # until the supervision timeout, then a new station finds and takes them.
            second = await start_daemon(config, log)
            await streaming_to(sensors)
            killed_central = {s.connections[0].peer_address for s in sensors.values()}
            ends = [link_end(s) for s in sensors.values()]
            second.kill()
            await second.wait()
            third = await start_daemon(config, log)
            try:
                timed_out = [await asyncio.wait_for(e, 30) for e in ends]
                assert timed_out == [HCI_CONNECTION_TIMEOUT] * len(sensors)
                await streaming_to(sensors)
                new_central = {s.connections[0].peer_address for s in sensors.values()}
                assert new_central.isdisjoint(killed_central)
                ends = [link_end(s) for s in sensors.values()]
                third.send_signal(signal.SIGINT)  # Ctrl-C lets go just the same
                assert await asyncio.wait_for(third.wait(), 30) == 0, log.read_text()
                last = [await asyncio.wait_for(e, 30) for e in ends]
                assert set(last) <= {HCI_REMOTE_USER_TERMINATED, HCI_LOCAL_HOST_TERMINATED}
            finally:
                if third.returncode is None:
                    third.kill()
                    await third.wait()


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_scan_and_doctor_say_a_strap_held_by_a_phone_may_be_why_it_is_not_found(
    tmp_path: Path,
) -> None:
    async with Hub() as hub, on_hub(hub, SensorKind.HEART_RATE) as sensors:
        config = write_config(tmp_path, hub.port)
        strap = sensors[SensorKind.HEART_RATE]
        phone = await open_hub_device(hub.port, "phone")
        try:
            await phone.device.power_on()
            await phone.device.connect(
                strap.device.public_address,
                own_address_type=hci.OwnAddressType.PUBLIC,
                timeout=10.0,
            )
            wide = {**env(), "COLUMNS": "400"}
            commands = {
                "scan": [
                    *SPOTTER,
                    "scan",
                    "--sim",
                    "--hub",
                    str(hub.port),
                    "--config",
                    str(config),
                ],
                "doctor": [*SPOTTER, "doctor", "--config", str(config)],
            }
            said = {}
            for name, command in commands.items():
                proc = await asyncio.create_subprocess_exec(
                    *command,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=wide,
                )
                out, err = await asyncio.wait_for(proc.communicate(), 60)
                said[name] = out.decode() + err.decode()
        finally:
            await phone.close()
    hint = f"sensor hr (heart_rate, any in range): {NOT_FOUND_HINT}"
    assert hint in said["scan"], said["scan"]
    assert hint in said["doctor"], said["doctor"]
