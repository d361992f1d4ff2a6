"""The safety loop never waits on the disk: the dashboard's and the MQTT bridge's writes go
through the store's writer thread too, so while a commit hangs the loop goes on ticking and
reading the sensor, and those writes are committed once the disk lets go.

How "the loop went on" is judged: the station's own ticks, counted by a ticking sink, while
the disk is known to hang (the ``before_commit`` hook has been entered and not let go) and
the writes are known to be waiting in the writer. A write made on the loop instead would
hold the loop in SQLite's busy wait (up to the store's 2 s timeout), so no tick could come
while it waits, the sensor's data would stop, and the write would fail "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dashboard.auth import COOKIE
from dashboard.server import DashboardConfig, DashboardServer
from monitor.core import gatt
from monitor.core.alarms import AlarmEvent
from monitor.core.sink import SinkBase
from monitor.core.trace import InputKind
from monitor.mqtt.outbound import LAST_SEQ_KEY
from monitor.station.assembly import assemble
from monitor.station.station import Station, StationClock
from monitor.store.station_store import Store
from monitor.store.writer import StoreWriter, Writer
from tests.core.rig import make_core, tilt_payload
from tests.dashboard.conftest import Rig as DashboardRig
from tests.mqtt.rig import Broker, running_station
from tests.station.rig import plan_like
from tests.station.test_writer import Disk

pytestmark = pytest.mark.timeout(60)

TICKS_WHILE_STALLED = 10
"""Ticks of the safety loop (one each 0.1 s of the station's clock) that must come while
the disk hangs and the writes wait: a second of station time."""


class Ticks(SinkBase):
    """A ticking sink of the station's own (like the sound and the watchdog: its heartbeat
    is never held for a commit): the station's clock at every tick of its safety loop, and a
    way to wait (on those ticks, not on the wall clock) for a condition or for more ticks."""

    at_once = True

    def __init__(self) -> None:
        self.t: list[float] = []
        self._want: Callable[[], bool] | None = None
        self._met = asyncio.Event()

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Not needed here."""

    def tick(self, t: float) -> None:
        self.t.append(t)
        if self._want is not None and self._want():
            self._want = None
            self._met.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait for the first tick at which ``condition`` holds."""
        self._met.clear()
        self._want = condition
        await self._met.wait()

    async def more(self, n: int) -> list[float]:
        """Wait for ``n`` more ticks; their station times."""
        start = len(self.t)
        await self.until(lambda: len(self.t) >= start + n)
        return self.t[start : start + n]


async def feed_tilt(station: Station, stop: asyncio.Event) -> None:
    """The tilt sensor's 50 Hz notifications, as a sensor link delivers them on the loop
    (a data source, not a synchronisation: nothing waits on it). A loop held on the disk
    starves it, and the estimator then sees the signal lost."""
    k = 0
    while not stop.is_set():
        k += 1
        station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, 0.0))
        await asyncio.sleep(0.02)


def signal_lost(station: Station) -> list[str]:
    """Every ``*.signal_lost`` the station raised (listed now, or stored at any time)."""
    listed = [a for a in station.core.alarms.alarms if a.endswith("signal_lost")]
    assert station.journal is not None
    stored = [s.event.id for s in station.journal.store.events_since(0)]
    return listed + [i for i in stored if i.endswith("signal_lost")]


async def hang(writer: Writer, disk: Disk) -> None:
    """Make the writer's next commit hang (an audit line of the test's), and wait until the
    writer thread is inside it, holding SQLite's write lock."""
    disk.stall()
    writer.submit(lambda store: store.audit("test", "disk hangs", {}))
    assert await asyncio.to_thread(disk.stalled.wait, 30)


@dataclass
class DashboardStation:
    station: Station
    store: Store
    writer: StoreWriter
    disk: Disk
    ticks: Ticks
    server: DashboardServer
    rig: DashboardRig


@contextlib.asynccontextmanager
async def dashboard_station(tmp_path: Path) -> AsyncIterator[DashboardStation]:
    """A station running for real (0.1 s ticker, a 50 Hz tilt feed) with its writer thread
    on a disk that can hang, and its dashboard wired as ``spotter run`` wires it."""
    disk = Disk()
    core = make_core(hr=False)
    plan = plan_like(core, tmp_path / "spotter.db", writer="thread", before_commit=disk)
    ticks = Ticks()
    parts = await assemble(plan, StationClock(), [ticks])
    station, store, writer = parts.station, parts.store, parts.writer
    assert isinstance(writer, StoreWriter)
    server = DashboardServer(station, store, "home", DashboardConfig(port=0))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app), base_url="http://127.0.0.1"
    )
    rig = DashboardRig(station, store, server.access, server.live, client)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(station.run([], stop), name="station"),
        asyncio.create_task(feed_tilt(station, stop), name="tilt"),
    ]
    try:
        yield DashboardStation(station, store, writer, disk, ticks, server, rig)
    finally:
        disk.let_go()
        stop.set()
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
            await client.aclose()
        finally:
            await parts.aclose()


@pytest.mark.asyncio
async def test_dashboard_writes_wait_for_the_disk_and_the_safety_loop_does_not(
    tmp_path: Path,
) -> None:
    async with dashboard_station(tmp_path) as s:
        owner = await s.rig.paired("owner", "anna")
        clinician = await s.rig.paired("clinician", "Dr Lee")
        added = await owner.post("/api/users", json={"name": "anna"})
        assert added.status_code == 201, added.text
        await s.ticks.more(TICKS_WHILE_STALLED)  # the tilt is flowing: a signal to lose
        assert signal_lost(s.station) == []
        await hang(s.writer, s.disk)
        before = s.writer.queued
        tablet = s.server.access.new_pairing("viewer", "tablet")
        requests = [
            asyncio.create_task(s.rig.app_client.get(f"/pair?token={tablet}")),
            asyncio.create_task(owner.post("/api/users/anna/screening", json={"none_apply": True})),
            asyncio.create_task(
                clinician.post(
                    "/api/profiles",
                    json={"name": "gentle", "toml": 'base = "beginner"\nmax_angle_deg = 20\n'},
                )
            ),
            asyncio.create_task(owner.put("/api/settings/pin", json={"new": "2468"})),
            asyncio.create_task(owner.post("/api/pairings", json={"role": "viewer", "name": "tv"})),
            asyncio.create_task(
                clinician.put("/api/settings/profile", json={"user": "anna", "profile": "standard"})
            ),
        ]
        # The pairing's row, then one write per request: all queued behind the hung commit.
        queued = before + 1 + len(requests)
        await s.ticks.until(lambda: s.writer.queued >= queued or any(r.done() for r in requests))
        assert [r.result().text for r in requests if r.done()] == []  # none answered early
        await s.ticks.more(TICKS_WHILE_STALLED)  # the safety loop goes on ticking ...
        assert not s.disk.going.is_set()  # ... while the disk hangs ...
        assert not any(r.done() for r in requests)  # ... and the requests wait for it
        assert signal_lost(s.station) == []
        s.disk.let_go()
        paired, screened, uploaded, pin, tv, chosen = await asyncio.gather(*requests)
        assert paired.status_code == 303, paired.text
        assert COOKIE in paired.cookies
        assert screened.status_code == 200, screened.text
        assert uploaded.status_code == 201, uploaded.text
        assert pin.status_code == 200, pin.text
        assert tv.status_code == 200, tv.text
        assert chosen.status_code == 200, chosen.text
        # Committed: what the answers said is on disk, read on the loop's own connection.
        anna = s.store.user("anna")
        assert anna is not None
        assert anna["profile"] == "standard"
        assert s.store.last_screening(anna["id"]) is not None
        assert s.server.dashboard.flow.stored_profiles() == ["gentle"]
        assert s.server.access.pin_set()
        assert s.server.access.login(paired.cookies[COOKIE]) is not None
        tv_token = tv.json()["url"].split("token=")[1]
        assert (await s.rig.app_client.get(f"/pair?token={tv_token}")).status_code == 303
        actions = [a["action"] for a in s.store.audit_log()]
        for done in (
            "device paired",
            "screening recorded",
            "profile stored",
            "owner PIN set",
            "profile changed",
        ):
            assert done in actions
        assert "store" not in s.writer.failures
        assert signal_lost(s.station) == []


@pytest.mark.broker
@pytest.mark.asyncio
async def test_the_bridge_saves_its_progress_through_the_writer_while_the_disk_hangs(
    broker: Broker, tmp_path: Path
) -> None:
    disk = Disk()
    async with running_station(broker, tmp_path, disk=disk, discovery=False) as rig:
        assert isinstance(rig.writer, StoreWriter)
        ticks = Ticks()
        rig.station.sinks.append(ticks)
        stop = asyncio.Event()
        feeding = asyncio.create_task(feed_tilt(rig.station, stop))
        try:
            await ticks.until(lambda: rig.bridge.connected)
            assert broker.proc is not None
            broker.proc.send_signal(signal.SIGSTOP)  # the PUBACK waits until the disk hangs
            try:
                rig.station.user_input(InputKind.SYMPTOM, None, "anna")
                await rig.writer.flush()  # the alarm is committed: the bridge sends it
                raised = rig.store.events_since(rig.bridge.last_seq)[-1]
                await hang(rig.writer, disk)
            finally:
                broker.proc.send_signal(signal.SIGCONT)
            await ticks.until(lambda: rig.bridge.last_seq >= raised.seq)  # acknowledged
            await ticks.more(TICKS_WHILE_STALLED)  # the safety loop goes on ticking ...
            assert not disk.going.is_set()  # ... while the bridge's save waits in the writer
            assert signal_lost(rig.station) == []
            disk.let_go()
            await rig.writer.flush()
            saved = rig.store.setting("home", LAST_SEQ_KEY)  # committed after
            assert saved == rig.bridge.last_seq >= raised.seq
            assert "store" not in rig.writer.failures
            assert signal_lost(rig.station) == []
        finally:
            disk.let_go()
            stop.set()
            await feeding
