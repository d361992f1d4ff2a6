"""Station faults: a slow disk, a failing (full) disk, the daemon killed at random moments, a
sensor silent mid-inversion, a sensor flapping for five minutes. Figures for
docs/reliability.md; every time is the station's clock, never a wall-clock margin.

- ``slow_disk``: a scenario driven through a real :class:`~monitor.station.station.Station` with the
  real writer thread, once with a healthy disk and once with every commit stalled 0.5-3 s of
  station time. The stall waits for the *station clock* to move on, so a station that waited
  on the disk would never move it and the run would time out: the figures can only come out
  at all if the safety loop does not wait. Figures: the alarm-to-sound delta (station time
  from the event to the sound sink having it) with and without the stall, false technical
  alarms, the largest store lag, that the lag was shown and then cleared, and that every
  event went beyond the station only after its commit.
- ``disk_full``: the same with every commit failing ("database or disk is full") for a
  while: the station keeps alarming, the problem shows, events after recovery are committed.
- ``kills``: ``spotter run --sim`` in a subprocess, SIGKILLed at a random moment, many times
  on one data directory (each run recovers the last): no event seen committed (read by
  another connection before the kill) is ever lost, and what the station showed but had not
  committed is only the tail that was in flight.
- ``silent`` and ``flapping``: over the virtual radio at a higher speed; the technical alarms
  must be what the replay of the recorded trace says, at the same station times, and nothing
  crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from firmware_sim.generate import header_of, records
from firmware_sim.scenario import Scenario, load_scenario, parse_scenario
from monitor.core.alarms import AlarmEvent, EventKind
from monitor.core.replay import TICK_S, core_for, replay
from monitor.core.sink import SinkBase
from monitor.core.trace import LinkChange, Notification, TraceReader, UserInput
from monitor.station.assembly import StationPlan, assembled
from monitor.station.simrun import SimRun, run_simulation, source_of
from monitor.station.station import Station
from monitor.store.alarm_log import StoredEvent
from monitor.store.station_store import Store
from monitor.store.writer import STORE_LAG, StoreWriter

log = logging.getLogger(__name__)

WAIT_S = 60.0
"""Real seconds a stalled commit waits for the station clock before calling the run stuck."""
DISK_FULL = "database or disk is full"
TECHNICAL = ".signal_lost"


# -- a station driven on its own clock, with a disk that stalls or fails -------------------


class StationTime:
    """The station clock of a driven run; the disk's stalls count on it too."""

    def __init__(self) -> None:
        self.t = 0.0
        self._cond = threading.Condition()
        self._released = False
        self._loop = asyncio.get_running_loop()
        self.stalling = False
        """A commit is stalled now, waiting for station time to pass."""
        self.stall_began = asyncio.Event()
        self._flushes: list[asyncio.Future[None]] = []

    def __call__(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        """Time moves on (and a stalled commit waiting for it may end)."""
        with self._cond:
            self.t = t
            self._cond.notify_all()

    def release(self) -> None:
        """The run is over: no stall waits any longer."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    async def drain(self) -> None:
        """Every flush :meth:`settle` started has finished."""
        await asyncio.gather(*self._flushes)

    def wait_until(self, t: float) -> None:
        """Block (the writer thread) until the station clock reaches ``t``."""
        with self._cond:
            self.stalling = True
            self._loop.call_soon_threadsafe(self.stall_began.set)
            try:
                if not self._cond.wait_for(lambda: self.t >= t or self._released, WAIT_S):
                    raise TimeoutError("the station clock stopped: the loop waits on the disk")
            finally:
                self.stalling = False

    async def settle(self, writer: StoreWriter) -> None:
        """Let the disk be as fast as it is: before time moves on, wait until the writer has
        done what it was given, or until it stalls (then time must move on to end the stall).
        The station never waits; this stands in for the world not outrunning the real disk."""
        await asyncio.sleep(0)  # the writer's reports come in
        if not writer.queued or self.stalling:
            return
        self.stall_began.clear()
        flushed = asyncio.ensure_future(writer.flush())
        stalled = asyncio.ensure_future(self.stall_began.wait())
        done, _ = await asyncio.wait(
            {flushed, stalled}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED
        )
        stalled.cancel()
        if not done:
            raise TimeoutError("the store writer neither finished nor stalled")
        self._flushes.append(flushed)


def slow_disk(clock: StationTime, seed: int, lo_s: float = 0.5, hi_s: float = 3.0) -> Any:
    """A ``before_commit`` hook: every commit takes ``lo_s``-``hi_s`` of station time."""
    rng = random.Random(seed)

    def before_commit() -> None:
        clock.wait_until(clock.t + rng.uniform(lo_s, hi_s))

    return before_commit


def failing_disk(clock: StationTime, start_s: float, end_s: float) -> Any:
    """A ``before_commit`` hook: every commit in ``[start_s, end_s)`` fails as on a full disk."""

    def before_commit() -> None:
        if start_s <= clock.t < end_s:
            raise sqlite3.OperationalError(DISK_FULL)

    return before_commit


class Heard(SinkBase):
    """The station's own sound, as the sound sink would get it: at once."""

    at_once = True

    def __init__(self, clock: StationTime) -> None:
        self.clock = clock
        self.got: list[tuple[float, AlarmEvent]] = []

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        self.got.extend((self.clock.t, e) for e in events)


class Beyond(SinkBase):
    """A sink beyond the station (dashboard, MQTT, push): checks each event it gets is in the
    store already, read on the loop's own connection, as the dashboard and MQTT read it."""

    def __init__(self, clock: StationTime, store: Store) -> None:
        self.clock = clock
        self.store = store
        self.last_seq = 0
        self.got: list[tuple[float, AlarmEvent]] = []
        self.uncommitted = 0
        """Events handed over that were not in the store (a failed commit)."""
        self._on_disk: list[AlarmEvent] = []

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        stored = self.store.events_since(self.last_seq)  # a group may hold later ones too
        if stored:
            self.last_seq = stored[-1].seq
        self._on_disk.extend(s.event for s in stored)
        for event in events:
            if event in self._on_disk:
                self._on_disk.remove(event)
                self.got.append((self.clock.t, event))
            else:
                self.uncommitted += 1


@dataclass
class Driven:
    """What a driven run showed."""

    heard: list[tuple[float, AlarmEvent]]
    beyond: Beyond
    committed: list[StoredEvent]
    problems: set[str]
    lag_cleared: bool
    store_cleared: bool
    max_lag_s: float
    groups: int


def _dispatch(station: Station, record: object) -> None:
    if isinstance(record, Notification):
        station.on_data(record.sensor, record.char, record.data)
    elif isinstance(record, LinkChange):
        station.on_link(record.sensor, record.connected)
    elif isinstance(record, UserInput):
        station.user_input(record.input, record.alarm, record.by)


async def drive(
    scenario: Scenario,
    data_dir: Path,
    disk: Callable[[StationTime], Any] | None = None,
) -> Driven:
    """Play ``scenario`` into a station with the real writer thread, on the station's clock:
    each record at its time, a tick on every 0.1 s mark, the loop free between ticks."""
    clock = StationTime()
    heard = Heard(clock)
    plan = StationPlan(
        "bench",
        dict(header_of(scenario).sensors),
        scenario.profile,
        data_dir / "spotter.db",
        age_years=scenario.model.age,
        started_at=datetime.now().astimezone(),
        writer="thread",
        writer_clock=clock,
        before_commit=None if disk is None else disk(clock),
    )
    problems: set[str] = set()
    async with assembled(plan, clock, [heard]) as parts:
        station, writer, store = parts.station, parts.writer, parts.store
        assert isinstance(writer, StoreWriter)
        beyond = Beyond(clock, store)
        station.sinks.append(beyond)
        try:
            pending = list(records(scenario))
            i, k = 0, 1
            while (t := round(k * TICK_S, 6)) <= scenario.model.duration_s:
                while i < len(pending) and pending[i].t <= t:
                    clock.set(pending[i].t)
                    _dispatch(station, pending[i])
                    i += 1
                clock.set(t)
                station.tick()
                problems |= {f"{part}: {text}" for part, text in station.problems.items()}
                k += 1
                await clock.settle(writer)
            clock.release()
            await asyncio.wait_for(writer.flush(), WAIT_S)
            await clock.drain()
            station.tick()  # the same time: only the problems are looked at again
            lag_cleared = STORE_LAG not in station.problems
            store_cleared = "store" not in station.problems
        finally:
            clock.release()
            await writer.aclose()
        committed = store.events_since(0)
    return Driven(
        heard.got,
        beyond,
        committed,
        problems,
        lag_cleared,
        store_cleared,
        writer.max_lag_s,
        writer.groups,
    )


def _key(events: Sequence[AlarmEvent]) -> list[tuple[float, str, str, str]]:
    return [(e.t, e.id, e.event.value, e.priority.label) for e in events]


def _technical_raised(events: Sequence[AlarmEvent]) -> int:
    return sum(1 for e in events if e.id.endswith(TECHNICAL) and e.event is EventKind.RAISED)


async def slow_disk_figures(data_dir: Path, seed: int = 14) -> dict[str, Any]:
    """The over-hold scenario with a healthy disk and with every commit stalled 0.5-3 s."""
    scenario = load_scenario("over-hold")
    base = await drive(scenario, data_dir / "healthy")
    slow = await drive(scenario, data_dir / "slow", lambda clock: slow_disk(clock, seed))
    base_events = [e for _, e in base.heard]
    slow_events = [e for _, e in slow.heard]
    return {
        "scenario": scenario.name,
        "events": len(slow_events),
        "same_events_as_healthy_disk": _key(base_events) == _key(slow_events),
        "alarm_to_sound_s_healthy": max((h - e.t for h, e in base.heard), default=0.0),
        "alarm_to_sound_s_slow": max((h - e.t for h, e in slow.heard), default=0.0),
        "false_technical_alarms": _technical_raised(slow_events) - _technical_raised(base_events),
        "technical_alarms_healthy": _technical_raised(base_events),
        "committed": len(slow.committed),
        "committed_in_order": [s.event for s in slow.committed] == slow_events,
        "sent_beyond_before_commit": slow.beyond.uncommitted,
        "sent_beyond": len(slow.beyond.got),
        "max_store_lag_s": round(slow.max_lag_s, 2),
        "max_store_lag_s_healthy": round(base.max_lag_s, 2),
        "lag_shown": any(p.startswith(f"{STORE_LAG}: store falling behind") for p in slow.problems),
        "lag_cleared": slow.lag_cleared,
        "commits_slow": slow.groups,
    }


async def disk_full_figures(data_dir: Path) -> dict[str, Any]:
    """The over-hold scenario with every commit failing from 60 s to 100 s."""
    scenario = load_scenario("over-hold")
    start_s, end_s = 60.0, 100.0
    run = await drive(
        scenario, data_dir / "full", lambda clock: failing_disk(clock, start_s, end_s)
    )
    events = [e for _, e in run.heard]
    on_disk = [s.event for s in run.committed]
    during = [e for e in events if start_s <= e.t < end_s]
    after = [e for e in events if e.t >= end_s + 1.0]
    return {
        "scenario": scenario.name,
        "failing_from_s": start_s,
        "failing_until_s": end_s,
        "alarm_events_while_failing": len(during),
        "sounded_while_failing": len(during),
        "problem_shown": any(p.startswith("store: ") and DISK_FULL in p for p in run.problems),
        "problem_cleared": run.store_cleared,
        "events_after_recovery": len(after),
        "events_after_recovery_committed": sum(1 for e in after if e in on_disk),
        "events_not_committed": sum(1 for e in events if e not in on_disk),
    }


# -- the daemon killed at random moments ---------------------------------------------------

KILL_SCENARIO = """\
name = "kill-me"
description = "inverted at once, a short hold limit: alarms come early and often"
duration_s = 60
theta = [[0, 0], [0.5, 25], [6, 25], [7, 0], [8, 0], [9, 25], [60, 25]]
hr = [[0, 70], [60, 72]]

[profile]
base = "beginner"
max_hold_s = 2

[sensors.tilt]
kind = "spotter_tilt"
rate_hz = 20

[sensors.hr]
kind = "heart_rate"

[[inputs]]
t = 4
input = "symptom"
by = "bench"
"""


SPOTTER = [sys.executable, "-m", "monitor.cli.main", "run"]


def _kill_config(folder: Path) -> Path:
    config = folder / "spotter.toml"
    config.write_text(
        f'[station]\nname = "killed"\ndata_dir = "{folder}"\n\n[dashboard]\nenabled = false\n'
    )
    return config


def _rows(db: Path) -> dict[int, tuple[Any, ...]]:
    """Every committed alarm event, read by another connection (what is on disk now)."""
    if not db.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5.0)) as conn:
            rows = conn.execute(
                "SELECT seq, t, alarm, priority, event FROM alarm_events"
            ).fetchall()
    except sqlite3.OperationalError as exc:  # not created yet
        if "no such table" in str(exc):
            return {}
        raise
    return {r[0]: tuple(r[1:]) for r in rows}


def _run_and_kill(
    cmd: list[str],
    env: dict[str, str],
    db: Path,
    seen: dict[int, tuple[Any, ...]],
    before: int,
    delay_s: float,
    *,
    from_start: bool,
) -> bytes:
    """Run ``cmd`` and SIGKILL it ``delay_s`` after it started (``from_start``) or after it
    committed its first event past ``before`` (or waited :data:`WAIT_S` for one), noting in
    ``seen`` every row it committed meanwhile; its stdout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        kill_at = time.monotonic() + delay_s if from_start else math.inf
        started = time.monotonic()
        while time.monotonic() < kill_at and proc.poll() is None:
            seen.update(_rows(db))
            if kill_at == math.inf and (
                max(seen, default=0) > before or time.monotonic() - started > WAIT_S
            ):
                kill_at = time.monotonic() + delay_s
            time.sleep(0.05)  # a moment to look again, not a synchronisation
        seen.update(_rows(db))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


def kill_figures(folder: Path, runs: int, seed: int = 14) -> dict[str, Any]:
    """SIGKILL ``spotter run --sim`` ``runs`` times at random moments on one data directory."""
    rng = random.Random(seed)
    scenario = folder / "kill-me.toml"
    scenario.write_text(KILL_SCENARIO)
    config = _kill_config(folder)
    db = folder / "sim.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    seen: dict[int, tuple[Any, ...]] = {}
    lost = in_flight = shown_total = committed_seen = 0
    prefix_ok = True
    for run_no in range(runs):
        before = max(_rows(db), default=0)
        # half the kills at a random moment from the start (starting up, recovering),
        # half at a random moment once this run has committed its first event
        delay_s = rng.uniform(0.5, 4.0) if run_no % 2 else rng.uniform(0.0, 3.0)
        cmd = [*SPOTTER, "--config", str(config), "--sim", str(scenario), "--speed", "4", "--json"]
        out = _run_and_kill(cmd, env, db, seen, before, delay_s, from_start=bool(run_no % 2))
        after = _rows(db)
        lost += sum(1 for seq, row in seen.items() if after.get(seq) != row)
        committed_seen = len(seen)
        shown = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        shown_keys = [(e["id"], e["priority"], e["event"]) for e in shown]
        mine = [after[seq][1:] for seq in sorted(after) if seq > before]
        prefix_ok &= mine == shown_keys[: len(mine)]
        in_flight += len(shown_keys) - len(mine)
        shown_total += len(shown_keys)
    store = Store.open(db)  # opens, migrates and recovers as a restarted daemon would
    try:
        intact = store.intact()
    finally:
        store.close()
    return {
        "kill_runs": runs,
        "store_intact_after_kills": intact,
        "events_seen_committed_before_kills": committed_seen,
        "committed_events_lost": lost,
        "shown_events": shown_total,
        "shown_not_committed_in_flight": in_flight,
        "committed_is_what_was_shown_in_order": prefix_ok,
    }


# -- sensors silent or flapping, over the virtual radio ------------------------------------


def flapping(minutes: float = 5.0, every_s: float = 2.0) -> Scenario:
    """The tilt sensor's link drops every ``every_s`` for half of it, for ``minutes``, while
    the user is inverted (a loose connector, a sensor at the edge of range)."""
    duration = minutes * 60
    faults = [
        {"kind": "disconnect", "sensor": "tilt", "start": s, "end": s + every_s / 2}
        for s in [10 + every_s * k for k in range(int((duration - 20) / every_s))]
    ]
    return parse_scenario(
        {
            "name": "flapping",
            "duration_s": duration,
            "profile": "beginner",
            "theta": [[0, 0], [2, 25], [duration - 5, 25], [duration - 2, 0], [duration, 0]],
            "hr": [[0, 70], [duration, 72]],
            "sensors": {
                "tilt": {"kind": "spotter_tilt", "rate_hz": 10},
                "hr": {"kind": "heart_rate"},
            },
            "faults": faults,
        },
        "flapping (bench)",
    )


class _Crashes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.records.append(self.format(record))


async def _live(scenario: Scenario, data_dir: Path, speed: float) -> tuple[SimRun, int]:
    crashes = _Crashes()
    logging.getLogger("monitor").addHandler(crashes)
    try:
        run = await run_simulation(
            source_of(scenario),
            profile=scenario.profile,
            age_years=scenario.model.age,
            data_dir=data_dir,
            speed=speed,
        )
    finally:
        logging.getLogger("monitor").removeHandler(crashes)
    return run, len(crashes.records)


def radio_figures(scenario: Scenario, data_dir: Path, speed: float) -> dict[str, Any]:
    """A live run over the virtual radio: its technical alarms against the trace's replay."""
    run, crashes = asyncio.run(_live(scenario, data_dir, speed))
    assert run.trace_path is not None, "the run recorded no session"
    with open(run.trace_path, encoding="utf-8") as fh:
        reader = TraceReader(fh, str(run.trace_path))
        replayed = list(replay(reader, core_for(reader, scenario.profile, scenario.model.age)))
    with open(run.trace_path, encoding="utf-8") as fh:
        drops = sum(
            1
            for r in TraceReader(fh, str(run.trace_path))
            if isinstance(r, LinkChange) and r.sensor == "tilt" and not r.connected
        )
    live_tech = [e for e in run.events if e.id.endswith(TECHNICAL)]
    again_tech = [e for e in replayed if e.id.endswith(TECHNICAL)]
    same = [k[1:] for k in _key(live_tech)] == [k[1:] for k in _key(again_tech)]
    delta = max((abs(a.t - b.t) for a, b in zip(live_tech, again_tech, strict=False)), default=0)
    return {
        "scenario": scenario.name,
        "speed": speed,
        "station_s": scenario.model.duration_s,
        "tilt_link_drops": drops,
        "technical_alarms_raised": _technical_raised(run.events),
        "technical_alarms_as_replay": same,
        "technical_alarm_max_offset_s": round(delta, 3),
        "alarms_as_replay": [k[1:] for k in _key(run.events)] == [k[1:] for k in _key(replayed)],
        "crashes": crashes,
    }


# -- the bench -----------------------------------------------------------------------------


@dataclass
class _Temp:
    folders: list[tempfile.TemporaryDirectory[str]] = field(default_factory=list)

    def __call__(self) -> Path:
        folder = tempfile.TemporaryDirectory(prefix="spotter-faults-")
        self.folders.append(folder)
        return Path(folder.name)

    def cleanup(self) -> None:
        for folder in self.folders:
            folder.cleanup()


def _iter_areas(quick: bool, temp: _Temp) -> Iterator[tuple[str, Any]]:
    yield "slow_disk", asyncio.run(slow_disk_figures(temp()))
    yield "disk_full", asyncio.run(disk_full_figures(temp()))
    yield "kills", kill_figures(temp(), 20 if quick else 100)
    yield "silent", radio_figures(load_scenario("tilt-silent"), temp(), 5.0)
    # The radio's own timeouts stay real: only at 1x does every 2 s flap reconnect; faster,
    # the link is down most of the time (still a sensor flapping, as the station sees it).
    yield "flapping", radio_figures(flapping(), temp(), 10.0 if quick else 1.0)


def run(quick: bool) -> dict[str, Any]:
    """Every station fault's figures (see the module's docstring)."""
    temp = _Temp()
    try:
        return dict(_iter_areas(quick, temp))
    finally:
        temp.cleanup()
