"""One station assembly: the parts of a station built in one order, run with what goes beside
it, and torn down in one place. The live daemon (:mod:`monitor.station.daemon`), ``--sim``
(:mod:`monitor.station.simrun`), the benches and the test rigs all build their station here;
what differs between them is a parameter of the :class:`StationPlan` (recovery, the stored
calibration, the writer thread or inline writes, a flight recorder, sound and push) or of
:func:`assembled` (the clock, the sinks, parts the caller opened itself), never a copy.

Build order: the store, the core (with the day's inverted time from the store when asked),
the writer (a thread: the safety loop never waits on the disk; or inline, for tools and
rigs), the flight recorder, the journal (recovery when asked), the station's own alarm
outputs (sound, push), the :class:`~monitor.station.station.Station`. Sinks keep one order:
the caller's, then sound, then push. Teardown closes every part in reverse, each even when
another's close raised; every such failure is logged with its traceback and the first is
raised once all are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from monitor.ble.link import SensorLink
from monitor.core.alarms import Priority
from monitor.core.engine import SafetyCore
from monitor.core.profiles import Profile
from monitor.core.replay import TICK_S
from monitor.core.sensors import Calibration, SensorSpec
from monitor.settings import SIM_STORE, MqttConfig, PushConfig, Settings, SoundConfig
from monitor.station.journal import Journal
from monitor.station.recorder import TraceRecorder
from monitor.station.station import Sink, Station
from monitor.store.station_store import Store
from monitor.store.writer import InlineWriter, StoreWriter, Writer
from monitor.supervise import Close, close_all

log = logging.getLogger(__name__)
Attach = Callable[[Station, asyncio.Event], Coroutine[Any, Any, None]]
"""Something to run beside a station until it stops (the terminal view, the dashboard, the
MQTT bridge)."""
"""How a part is closed (a plain or an async function)."""


@dataclass(frozen=True)
class StationPlan:
    """What a station is built from. The defaults are a bare station for tools and rigs:
    inline writes, no recorder, no recovery, no sound or push."""

    name: str
    sensors: Mapping[str, SensorSpec]
    profile: Profile
    store_path: Path
    age_years: float | None = None
    started_at: datetime | None = None
    """The core's (and the recorder's) start; None: the core's default (no date)."""
    traces_dir: Path | None = None
    """Where the flight recorder writes one trace per session; None: no recorder."""
    trace_retention_days: float | None = None
    writer: Literal["thread", "inline"] = "inline"
    writer_clock: Callable[[], float] | None = None
    """The writer thread's clock for its lag (default: the monotonic clock)."""
    before_commit: Callable[[], None] | None = None
    """A hook the writer thread runs before each commit (a test's slow disk)."""
    stored_calibration: bool = False
    """Use the calibration ``spotter calibrate`` stored over the configured one."""
    count_today: bool = False
    """Start the core with the day's inverted time from the store (the daily limit)."""
    recover: bool = False
    """Restore the last checkpoint (:meth:`Journal.recover`): a restarted daemon."""
    sound: SoundConfig | None = None
    """The station's alarm sound (a sink after the caller's); None: silent."""
    push: PushConfig | None = None
    """Push notifications (a sink after the sound); None: none."""


def live_plan(settings: Settings, profile: Profile, started_at: datetime) -> StationPlan:
    """``spotter run``: the configured station, recovered, with sound and push."""
    station = settings.station
    return StationPlan(
        name=station.name,
        sensors=settings.sensor_specs(),
        profile=profile,
        store_path=station.store_path,
        age_years=station.age,
        started_at=started_at,
        traces_dir=station.data_path / "traces",
        trace_retention_days=station.trace_retention_days,
        writer="thread",
        stored_calibration=True,
        count_today=True,
        recover=True,
        sound=settings.sound,
        push=settings.push,
    )


def sim_plan(
    name: str,
    sensors: Mapping[str, SensorSpec],
    profile: Profile,
    age_years: float | None,
    data_dir: Path,
    started_at: datetime,
) -> StationPlan:
    """``spotter run --sim``: the simulation's own store (``sim.db``), a fresh start (no
    recovery, no stored calibration, no day so far), no sound or push."""
    return StationPlan(
        name=name,
        sensors=sensors,
        profile=profile,
        store_path=data_dir / SIM_STORE,
        age_years=age_years,
        started_at=started_at,
        traces_dir=data_dir / "traces",
        writer="thread",
    )


def stored_calibration(
    store: Store, station: str, sensors: Mapping[str, SensorSpec]
) -> dict[str, SensorSpec]:
    """The configured sensors, with the calibration ``spotter calibrate`` stored, if any."""
    out = dict(sensors)
    for sensor, spec in sensors.items():
        saved = store.setting(station, f"calibration.{sensor}")
        if saved is not None and spec.kind.is_tilt:
            out[sensor] = SensorSpec(spec.kind, Calibration.from_json(saved, spec.kind))
            log.info("sensor %s: stored calibration %s", sensor, saved)
    return out


@dataclass
class Assembly:
    """A built station and its parts; :meth:`aclose` ends them all."""

    station: Station
    store: Store
    writer: Writer
    journal: Journal
    recorder: TraceRecorder | None
    _closers: list[tuple[str, Close]] = field(default_factory=list, repr=False)

    async def aclose(self) -> None:
        """Close every part, the last built first. A close that raises is logged with its
        traceback and the rest are still closed; then the first failure is raised."""
        closers, self._closers = self._closers, []
        await close_all(reversed(closers))

    async def run(
        self,
        links: Sequence[SensorLink],
        stop: asyncio.Event,
        *,
        attach: Attach | None = None,
        real_tick_s: float = TICK_S,
        until: asyncio.Event | None = None,
        after: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run the station with ``links`` until ``until`` (default ``stop``) is set, with
        ``attach`` beside it. Then ``after`` (the caller's own helpers end), every write
        committed and sent on, ``stop`` set, and what ran beside it ended (the bridge's last
        word comes after the last event)."""
        beside = asyncio.create_task(attach(self.station, stop)) if attach is not None else None
        try:
            await self.station.run(links, until or stop, real_tick_s=real_tick_s)
        finally:
            try:
                if after is not None:
                    await after()
            finally:
                await self.writer.flush()
                stop.set()  # whatever ended the run, the things beside it end too
                if beside is not None:
                    await beside


async def assemble(
    plan: StationPlan,
    clock: Callable[[], float],
    sinks: Sequence[Sink] = (),
    *,
    owned: Sequence[tuple[str, Close]] = (),
) -> Assembly:
    """Build the station ``plan`` describes on ``clock``, the caller's ``sinks`` first.
    ``owned``: parts the caller opened already (the BLE backend), closed at teardown after
    the station's own. If building fails, what was built (and ``owned``) is closed."""
    closers: list[tuple[str, Close]] = list(owned)
    try:
        store = Store.open(plan.store_path)
        closers.append(("store", store.close))
        sensors = dict(plan.sensors)
        if plan.stored_calibration:
            sensors = stored_calibration(store, plan.name, sensors)
        core = SafetyCore(
            sensors,
            plan.profile,
            age_years=plan.age_years,
            started_at=plan.started_at,
            day_inverted_before_s=_today_s(store, plan) if plan.count_today else 0.0,
        )
        writer: Writer = InlineWriter(store)
        if plan.writer == "thread":  # the safety loop never waits on the disk
            thread = await StoreWriter.start(
                store.path,
                clock=plan.writer_clock or time.monotonic,
                before_commit=plan.before_commit,
            )
            closers.append(("store writer", thread.aclose))
            writer = thread
        recorder = None
        if plan.traces_dir is not None:
            assert plan.started_at is not None, "a flight recorder needs the start time"
            recorder = TraceRecorder(
                plan.traces_dir,
                plan.name,
                sensors,
                plan.started_at,
                retention_days=plan.trace_retention_days,
                writer=writer,
            )
        journal = Journal(store, plan.name, core, recorder, writer)
        if plan.recover:
            journal.recover()
        station = Station(core, clock, sinks, recorder, journal)
        # Sound and push follow the station's read model: built on the station, after it.
        station.sinks += await _alarm_outputs(plan, station)
    except BaseException:
        await close_all(reversed(closers), raise_first=False)  # the build error is the news
        raise
    return Assembly(station, store, writer, journal, recorder, closers)


@contextlib.asynccontextmanager
async def assembled(
    plan: StationPlan,
    clock: Callable[[], float],
    sinks: Sequence[Sink] = (),
    *,
    owned: Sequence[tuple[str, Close]] = (),
) -> AsyncIterator[Assembly]:
    """:func:`assemble`, torn down (:meth:`Assembly.aclose`) when the block ends."""
    parts = await assemble(plan, clock, sinks, owned=owned)
    try:
        yield parts
    finally:
        await parts.aclose()


def _today_s(store: Store, plan: StationPlan) -> float:
    assert plan.started_at is not None, "the day's inverted time needs the start time"
    midnight = plan.started_at.replace(hour=0, minute=0, second=0, microsecond=0)
    return store.inverted_today_s(plan.name, midnight.isoformat())


async def _alarm_outputs(plan: StationPlan, station: Station) -> list[Sink]:
    """The station's sound and push sinks, as the plan asks."""
    out: list[Sink] = []
    if plan.sound is not None:
        from monitor.sinks.sound import SoundSink  # numpy: only for a station that sounds

        # It probes the audio device and renders prompts: off the event loop.
        out.append(await asyncio.to_thread(SoundSink, station, plan.sound, plan.name))
    if plan.push is not None:
        from monitor.sinks.push import PushSink

        out.append(PushSink(station, plan.push, plan.name))
    return out


def stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM end the run cleanly (the trace gets its end marker)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)


def mqtt_attacher(config: MqttConfig, name: str) -> Attach:
    """The MQTT bridge beside a station; a lost broker link becomes ``link.lost``."""
    from monitor.mqtt.bridge import MqttBridge  # aiomqtt: only for a station with MQTT

    async def attach(station: Station, stop: asyncio.Event) -> None:
        assert station.journal is not None, "the bridge sends from the station's store"
        limit = config.link_lost_after_s

        def link_changed(up: bool, down_for_s: float) -> None:
            station.condition("link.lost", None if up else (Priority.MEDIUM, down_for_s, limit))

        bridge = MqttBridge(
            config,
            name,
            station.journal.store,
            on_link_change=link_changed,
            writer=station.journal.writer,  # its progress is written off the safety loop
        )
        await bridge.run(station, stop)  # on stop: the last events, then "offline"

    return attach


def together(attachers: Sequence[Attach]) -> Attach:
    """One attacher running every one of ``attachers``."""

    async def attach(station: Station, stop: asyncio.Event) -> None:
        await asyncio.gather(*(one(station, stop) for one in attachers))

    return attach
