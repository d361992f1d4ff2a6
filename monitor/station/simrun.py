"""``spotter run --sim``: simulated sensors on an in-process virtual radio, and the station's
real BLE code (bleak + bleak-retry-connector) against them, in one command.

This is the only place ``monitor`` imports ``firmware_sim`` for a live run: the production
path never does. The station runs exactly as on a Raspberry Pi; only the bleak backend and
the station clock differ: the player drives a :class:`~monitor.station.station.LockstepClock`
(virtual time), so a loaded machine slows the run down instead of making sensors look silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.devices import DeviceProfile
from firmware_sim.generate import calm, header_of, records
from firmware_sim.peripherals import SimPeripheral, peripheral_for
from firmware_sim.player import Player, PlayStats
from firmware_sim.radio import Radio
from firmware_sim.scenario import Scenario, ScenarioError, TiltSensorSpec, load_scenario
from monitor.ble.backend import BleBackend
from monitor.ble.link import LinkListener, SensorLink
from monitor.core.alarms import AlarmEvent
from monitor.core.codecs import spotter_tilt
from monitor.core.gatt import TILT_MEASUREMENT
from monitor.core.profiles import Profile
from monitor.core.replay import TICKS_PER_S
from monitor.core.sensors import SensorSpec
from monitor.core.sink import SinkBase
from monitor.core.trace import (
    End,
    InputKind,
    Notification,
    Record,
    TraceHeader,
    TraceReader,
    UserInput,
)
from monitor.settings import BleConfig, SensorConfig
from monitor.station.assembly import Attach, assemble, sim_plan
from monitor.station.station import LockstepClock, Sink, Station
from monitor.supervise import cancel_and_wait

log = logging.getLogger(__name__)
GRACE_S = 1.0
"""Station seconds the run goes on after the scenario's end marker."""
SIM_BLE = BleConfig(backend="sim", scan_timeout_s=1.0, connect_timeout_s=2.0, max_backoff_s=1.0)


class SimSourceError(ValueError):
    """A ``--sim`` argument that is neither a scenario nor a readable trace."""


@dataclass
class SimSource:
    """What to play: a scenario's records or a recorded trace's."""

    name: str
    header: TraceHeader
    profile: Profile | None
    """The scenario's profile (None for a trace: the station's configured one applies)."""
    age_years: float | None
    battery: dict[str, int]
    rate_hz: dict[str, int]
    _records: Iterator[Record] | None = None
    _trace: TextIO | None = None

    def records(self) -> Iterator[Record]:
        """The records, once."""
        assert self._records is not None
        return self._records

    def close(self) -> None:
        """Close a trace file."""
        if self._trace is not None:
            self._trace.close()


def open_source(source: str) -> SimSource:
    """A shipped scenario's name, a scenario TOML file, or a trace (JSON Lines) file."""
    if source.endswith((".jsonl", ".json")) or (
        Path(source).is_file() and not source.endswith(".toml")
    ):
        try:
            fh = open(source, encoding="utf-8")  # noqa: SIM115 - closed by SimSource.close
        except OSError as exc:
            raise SimSourceError(f"{source}: {exc.strerror or exc}") from None
        reader = TraceReader(fh, source)
        return SimSource(source, reader.header, None, None, {}, {}, iter(reader), fh)
    try:
        scenario = load_scenario(source)
    except ScenarioError as exc:
        raise SimSourceError(str(exc)) from None
    return source_of(scenario)


def source_of(scenario: Scenario) -> SimSource:
    """The records of a loaded scenario, ready to play."""
    sensors = scenario.model.sensors
    battery = {n: s.battery_percent for n, s in sensors.items() if s.battery_percent is not None}
    rates = {
        n: max(1, round(s.rate_hz)) for n, s in sensors.items() if isinstance(s, TiltSensorSpec)
    }
    return SimSource(
        scenario.name,
        header_of(scenario),
        scenario.profile,
        scenario.model.age,
        battery,
        rates,
        records(scenario),
    )


def then_calm(source: SimSource) -> Iterator[Record]:
    """The source's records without its end marker, then (``--stay``) the simulated person
    steps off: the session is ended as the user would end it, and the sensors go on
    streaming a calm upright state for ever, so the station stays quiet, its links healthy
    and the finished session ready to browse."""
    end_t = 0.0
    tilt_seq: dict[str, int] = {}
    for record in source.records():
        if isinstance(record, End):
            end_t = record.t
            break
        end_t = record.t
        if isinstance(record, Notification) and record.char == TILT_MEASUREMENT:
            with contextlib.suppress(ValueError):  # a malformed one: the next seq is a guess
                tilt_seq[record.sensor] = spotter_tilt.decode(record.data).seq
        yield record
    yield UserInput(end_t, InputKind.SESSION_END, by="demo")
    yield from calm(dict(source.header.sensors), end_t, source.rate_hz, tilt_seq)


async def _cancel_until_done(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended, asking again if a cancellation was lost
    (Python 3.11's ``asyncio.wait_for`` can swallow one that meets a completion). What it
    raised stays in the task for its owner to collect."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)


@dataclass
class SimRun:
    """What a simulated run produced."""

    events: list[AlarmEvent] = field(default_factory=list)
    """Every alarm event, ``t`` on the station clock (as the recorded trace has it)."""
    origin: float | None = None
    """Station time at which the scenario's (or trace's) time 0 began."""
    trace_path: Path | None = None
    """The first session's trace."""
    trace_paths: list[Path] = field(default_factory=list)
    store_path: Path | None = None
    play: PlayStats | None = None
    station: Station | None = None


class _Collect(SinkBase):
    at_once = True  # what the station showed, in the step it happened

    def __init__(self, run: SimRun) -> None:
        self.run = run

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        self.run.events.extend(events)


class _Lockstep:
    """The station's side of a lock-step play: the links' listener (forwarding to the
    station, then waking the player), the clock the player drives, and per sensor the
    notifications the station has received (the links count only notifications, not the
    values read at connect)."""

    def __init__(self, station: Station, clock: LockstepClock) -> None:
        self.station = station
        self.clock = clock
        self.links: dict[str, SensorLink] = {}
        self.origin = 0.0
        """Station time at which the play's time 0 began."""
        self._heard = asyncio.Event()

    async def freewheel(self) -> None:
        """Until the play starts (the links still connecting), let station time pass at the
        clock's speed on the wall clock, in 0.1 s steps on the grid: nothing is sent yet, so
        there is nothing to wait for, and a sensor that never comes still falls silent."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        k0 = k = round(self.clock() * TICKS_PER_S)
        while True:
            k += 1
            due = start + self.clock.real_s((k - k0) / TICKS_PER_S)
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.clock.advance_to(k / TICKS_PER_S)

    def listen(self, link: SensorLink) -> SensorLink:
        """Count ``link``'s notifications as the station's."""
        self.links[link.name] = link
        return link

    def on_data(self, sensor: str, char: str, data: bytes) -> None:
        try:
            self.station.on_data(sensor, char, data)
        finally:
            self._wake()

    def on_link(self, sensor: str, connected: bool) -> None:
        try:
            self.station.on_link(sensor, connected)
        finally:
            self._wake()

    def _wake(self) -> None:
        self._heard.set()
        self._heard = asyncio.Event()

    def advance_to(self, t: float) -> None:
        self.clock.advance_to(self.origin + t)

    def received(self, sensor: str) -> int:
        link = self.links.get(sensor)
        return link.state.notifications if link is not None else 0

    def heard(self) -> Awaitable[object]:
        return self._heard.wait()


async def run_simulation(
    source: SimSource,
    *,
    profile: Profile,
    age_years: float | None,
    data_dir: Path,
    station_name: str = "sim",
    sinks: Sequence[Sink] = (),
    for_s: float | None = None,
    speed: float = 1.0,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
    attach: Attach | None = None,
    result: SimRun | None = None,
    stay: bool = False,
    profiles: Mapping[str, DeviceProfile] | None = None,
) -> SimRun:
    """Play ``source`` through simulated sensors into a live station until it ends.

    ``for_s`` stops the run after that many station seconds; ``stop`` stops it from outside;
    ``stay`` keeps the station (and its dashboard) running after the scenario ends;
    ``profiles`` picks the device model a sensor is (default: its kind's default profile).
    """
    result = result if result is not None else SimRun()
    stop = stop or asyncio.Event()
    clock = LockstepClock(speed)
    sensors = dict(source.header.sensors)
    plan = sim_plan(
        station_name, sensors, profile, age_years, data_dir, datetime.now().astimezone()
    )
    parts = await assemble(
        plan, clock, [_Collect(result), *sinks], owned=[("source", source.close)]
    )
    station = result.station = parts.station
    lockstep = _Lockstep(station, clock)
    result.store_path = parts.store.path

    def on_input(record: UserInput) -> None:
        station.user_input(record.input, record.alarm, record.by)

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(parts.aclose)
        peripherals, links = await _virtual_radio(stack, source, sensors, lockstep, profiles)
        player = Player(peripherals, speed=speed, on_input=on_input, lockstep=lockstep)
        driver = _Driver(player, lockstep, clock, source, result, stop, started, stay, for_s)
        driver.start()
        try:
            await parts.run(
                links,
                stop,
                attach=attach,
                real_tick_s=clock.real_s(0.1),
                until=driver.halted,
                after=driver.end,
            )
        finally:
            result.trace_paths = list(parts.recorder.paths) if parts.recorder else []
            result.trace_path = result.trace_paths[0] if result.trace_paths else None
    return result


async def _virtual_radio(
    stack: contextlib.AsyncExitStack,
    source: SimSource,
    sensors: Mapping[str, SensorSpec],
    lockstep: _Lockstep,
    profiles: Mapping[str, DeviceProfile] | None,
) -> tuple[dict[str, SimPeripheral], list[SensorLink]]:
    """The in-process radio: one started simulated peripheral per sensor, and the station's
    links to them through the real BLE code over the simulated bleak backend. Everything
    started is closed by ``stack``."""
    radio = await stack.enter_async_context(Radio())
    peripherals: dict[str, SimPeripheral] = {}
    for name, spec in sensors.items():
        peripheral = peripheral_for(
            spec.kind,
            radio.add_device(name),
            battery_percent=source.battery.get(name),
            rate_hz=source.rate_hz.get(name, 100),
            profile=(profiles or {}).get(name),
        )
        await peripheral.start()
        stack.push_async_callback(peripheral.close)
        peripherals[name] = peripheral
    sim = await SimBackend.on_radio(radio)
    stack.push_async_callback(sim.close)
    backend = BleBackend(
        sim.scanner_class,
        sim.client_class,
        description="in-process virtual radio",
        disconnect_reason=sim.disconnect_reason,
    )
    listener: LinkListener = lockstep
    links = [
        lockstep.listen(SensorLink(name, SensorConfig(kind=spec.kind), SIM_BLE, backend, listener))
        for name, spec in sensors.items()
    ]
    return peripherals, links


@dataclass
class _Driver:
    """The tasks beside the station in a simulated run: the player, the ``--for`` limit, and
    the halt that stops the player before the station."""

    player: Player
    lockstep: _Lockstep
    clock: LockstepClock
    source: SimSource
    result: SimRun
    stop: asyncio.Event
    started: asyncio.Event | None
    stay: bool
    for_s: float | None
    halted: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the player has ended: the station may stop (its ``until``)."""
    helpers: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Start the player, the limit and the halt."""
        playing = asyncio.create_task(self._play())
        self.helpers = [
            playing,
            asyncio.create_task(self._limit()),
            asyncio.create_task(self._halt(playing)),
        ]

    async def _play(self) -> None:
        """Freewheel the clock until every sensor is subscribed, then play; stop the run at
        the end (or after calm sensors for ever: ``stay``)."""
        player, lockstep, source = self.player, self.lockstep, self.source
        try:
            freewheel = asyncio.create_task(lockstep.freewheel())
            try:
                await player.wait_subscribed()
            finally:
                await cancel_and_wait(freewheel, errors="raise")
            self.result.origin = lockstep.origin = self.clock()
            if self.started is not None:
                self.started.set()
            if self.stay:  # calm sensors after the scenario, for ever: until stopped
                self.result.play = player.stats
                await player.play(then_calm(source), start=asyncio.sleep(0))
            else:
                self.result.play = await player.play(source.records(), start=asyncio.sleep(0))
                await player.idle(GRACE_S)
        finally:
            self.stop.set()

    async def _limit(self) -> None:
        if self.for_s is not None:
            await self.clock.reached(self.for_s)
            self.stop.set()

    async def _halt(self, playing: asyncio.Task[None]) -> None:
        """When the run is stopped (Ctrl-C, --for, the end): the player first, then the
        station, so the player never reports notifications lost to the station dropping
        its links on the way out."""
        await self.stop.wait()
        await _cancel_until_done(playing)
        self.halted.set()

    async def end(self) -> None:
        """End every helper (the station's ``after``); a helper that failed (the player):
        its error propagates."""
        for task in self.helpers:
            await _cancel_until_done(task)
        for task in self.helpers:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
