"""The store writer: the station never waits on the disk; beyond it, only what is committed."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from monitor.bench.faults.station import DISK_FULL, Beyond, Heard, StationTime
from monitor.core import gatt
from monitor.core.trace import InputKind
from monitor.station.assembly import assemble
from monitor.station.recorder import TraceRecorder
from monitor.station.station import Station, StationClock
from monitor.store.station_store import Store
from monitor.store.writer import STORE_LAG, StoreWriter
from tests.core.rig import make_core, tilt_payload
from tests.station.rig import plan_like

pytestmark = pytest.mark.timeout(60)


class Disk:
    """A ``before_commit`` hook: a disk that can hang (until let go) or be full."""

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.going = threading.Event()
        self.going.set()
        self.full = False
        self.stalled = threading.Event()

    def stall(self) -> None:
        self.going.clear()

    def let_go(self) -> None:
        self.going.set()

    def __call__(self) -> None:
        if self.full:
            raise sqlite3.OperationalError(DISK_FULL)
        if not self.going.is_set():
            self.stalled.set()
            assert self.going.wait(30), "the test never let the disk go"


@dataclass
class Rig:
    clock: StationTime
    disk: Disk
    store: Store
    writer: StoreWriter
    station: Station
    heard: Heard
    beyond: Beyond

    def step(self, until: float, tilt_deg: float | None = None) -> None:
        """Time passes on the station's clock to ``until``: tilt at 50 Hz, a tick each 0.1 s."""
        k = round(self.clock.t * 50)
        while (t := round((k + 1) / 50, 6)) <= until + 1e-9:
            k += 1
            self.clock.set(t)
            if tilt_deg is not None:
                self.station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, tilt_deg))
            if k % 5 == 0:
                self.station.tick()


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = StationTime()
    disk = Disk()
    core = make_core(hr=False)
    plan = plan_like(
        core, tmp_path / "spotter.db", writer="thread", writer_clock=clock, before_commit=disk
    )
    heard = Heard(clock)
    parts = await assemble(plan, clock, [heard])
    beyond = Beyond(clock, parts.store)
    parts.station.sinks.append(beyond)
    assert isinstance(parts.writer, StoreWriter)
    yield Rig(clock, disk, parts.store, parts.writer, parts.station, heard, beyond)
    disk.let_go()
    clock.release()
    await parts.aclose()


def key(got: list) -> list[tuple[float, str, str]]:
    return [(at, e.id, e.event.value) for at, e in got]


@pytest.mark.asyncio
async def test_a_hung_disk_delays_nothing_on_the_station_and_nothing_uncommitted_leaves_it(
    rig: Rig,
) -> None:
    rig.disk.stall()
    rig.step(1.0, tilt_deg=0.0)
    rig.station.user_input(InputKind.SYMPTOM, None, "anna")
    assert key(rig.heard.got) == [(1.0, "user.symptom", "raised")]  # the sound: at once
    rig.step(3.0, tilt_deg=0.0)  # the disk hangs on; data flows; time passes
    assert await asyncio.to_thread(rig.disk.stalled.wait, 30)
    assert rig.beyond.got == []  # not committed: not sent beyond the station
    assert rig.station.problems[STORE_LAG].startswith("store falling behind: ")
    lag_s = float(rig.station.problems[STORE_LAG].split(": ")[1].removesuffix(" s"))
    assert lag_s > 1.0
    assert not [e for _, e in rig.heard.got if e.id.endswith("signal_lost")]
    rig.disk.let_go()
    await rig.writer.flush()
    # after their commit, in order, nothing before it: all at 3.0 s, when the disk let go
    assert [e for _, e in rig.beyond.got] == [e for _, e in rig.heard.got]
    assert {at for at, _ in rig.beyond.got} == {3.0}
    assert rig.beyond.uncommitted == 0
    rig.step(3.1, tilt_deg=0.0)
    assert STORE_LAG not in rig.station.problems  # caught up: the problem clears
    assert [s.event for s in rig.store.events_since(0)] == [e for _, e in rig.heard.got]


@pytest.mark.asyncio
async def test_a_full_disk_keeps_the_station_alarming_and_the_events_after_it_are_committed(
    rig: Rig,
) -> None:
    rig.disk.full = True
    rig.step(1.0)
    rig.station.user_input(InputKind.SYMPTOM, None, "anna")
    rig.step(1.1)
    await rig.writer.flush()
    assert key(rig.heard.got)[0] == (1.0, "user.symptom", "raised")  # the station alarms
    assert DISK_FULL in rig.station.problems["store"]  # and shows why nothing is kept
    assert rig.beyond.got == []
    assert rig.beyond.uncommitted == len(rig.heard.got)  # push still got its call
    rig.disk.full = False
    rig.station.user_input(InputKind.ACKNOWLEDGE, "user.symptom", "anna")
    await rig.writer.flush()
    rig.step(1.2)
    assert "store" not in rig.station.problems
    committed = [(s.event.id, s.event.event.value) for s in rig.store.events_since(0)]
    assert ("user.symptom", "acknowledged") in committed
    assert ("user.symptom", "raised") not in committed  # lost to the full disk, and shown so


@pytest.mark.asyncio
async def test_the_1_hz_writes_coalesce_while_the_disk_hangs_and_lose_no_trend(rig: Rig) -> None:
    rig.step(1.0, tilt_deg=0.0)
    rig.station.user_input(InputKind.SESSION_START, None, "anna")
    rig.step(2.0, tilt_deg=0.0)
    await rig.writer.flush()
    rig.disk.stall()
    rig.step(4.0, tilt_deg=0.0)  # the first 1 Hz write now hangs in its commit
    assert await asyncio.to_thread(rig.disk.stalled.wait, 30)
    rig.step(30.0, tilt_deg=0.0)
    assert rig.writer.queued <= 3  # the hung one, and one 1 Hz write taking in the rest
    rig.disk.let_go()
    await rig.writer.flush()
    (session,) = rig.store.sessions()
    seconds = [t for _, t, _, _ in rig.store.trends(session["id"])]
    assert seconds[0] < 4.0  # from before the hang ...
    assert seconds[-1] > 29.0  # ... to its end ...
    assert all(0.9 < b - a < 1.25 for a, b in itertools.pairwise(seconds))  # ... each second


@pytest.mark.asyncio
async def test_one_failing_write_in_a_group_rolls_back_alone(rig: Rig) -> None:
    rig.disk.stall()
    rig.writer.submit(lambda store: store.audit("x", "first", {}))  # hangs in its commit
    assert await asyncio.to_thread(rig.disk.stalled.wait, 30)
    failed: list[Exception] = []

    def broken(store: Store) -> None:
        store.audit("x", "half", {})
        raise sqlite3.IntegrityError("a bug")

    rig.writer.submit(broken, None, failed.append)
    rig.writer.submit(lambda store: store.audit("x", "after", {}))
    rig.disk.let_go()
    await rig.writer.flush()
    assert [a["action"] for a in rig.store.audit_log()] == ["first", "after"]
    assert "a bug" in str(failed[0])
    assert rig.writer.groups == 2  # the hung one; then the other two in one commit


@pytest.mark.asyncio
async def test_the_station_clock_ignores_wall_clock_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = StationClock()
    wall = time.time
    stamps = [clock()]
    for step_s in (3600.0, -7200.0, 86400.0):
        monkeypatch.setattr(time, "time", lambda s=step_s: wall() + s)
        stamps.append(clock())
    assert stamps == sorted(stamps)  # never back with the wall clock
    assert stamps[-1] - stamps[0] < 3600.0  # nor forward with it


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o002])
def test_the_store_and_traces_are_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        store = Store.open(tmp_path / "data" / "spotter.db")
        store.audit("x", "y", {})
        core = make_core(hr=False)
        now = datetime.datetime.now().astimezone()
        recorder = TraceRecorder(tmp_path / "data" / "traces", "home", dict(core.sensors), now)
        path = recorder.session_started(0.0)
        recorder.close(1.0)
    finally:
        os.umask(old)
    wal, shm = (store.path.with_name(store.path.name + end) for end in ("-wal", "-shm"))
    for made in (store.path, wal, shm, path):
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
    for folder in (store.path.parent, path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    store.close()
