"""monitor.station.service: the sd_notify exchange against real datagram sockets, and the watchdog
pings that come only from the safety loop's heartbeat."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.ble.backend import BleBackend
from monitor.ble.link import LinkStatus, SensorLink
from monitor.core.sensors import SensorKind
from monitor.core.sink import SinkBase
from monitor.core.trace import InputKind
from monitor.settings import BleConfig, SensorConfig
from monitor.station.service import (
    ServiceNotifier,
    socket_address,
    status_text,
    watchdog_interval_s,
)
from monitor.station.station import Station, StationClock
from monitor.store.writer import STORE_LAG
from tests.core.rig import make_core

PID = os.getpid()


@dataclass
class Receiver:
    """A datagram socket standing in for systemd's notify socket."""

    sock: socket.socket
    notify_socket: str
    """What systemd would put in $NOTIFY_SOCKET."""

    def drain(self) -> list[str]:
        """Every message waiting, oldest first."""
        got = []
        while True:
            try:
                got.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return got

    def env(self, **more: str) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.notify_socket, **more}


def _bind(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Receiver]:
    if request.param == "path":
        path = str(tmp_path / "notify")
        sock, name = _bind(path), path
    else:
        name = f"spotter-test-{uuid.uuid4().hex}"
        sock, name = _bind("\0" + name), "@" + name
    try:
        yield Receiver(sock, name)
    finally:
        sock.close()


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


# -- the protocol ------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_ready_status_stopping_arrive_as_one_datagram_each(receiver: Receiver) -> None:
    notifier = ServiceNotifier(receiver.env(), pid=PID)
    assert notifier.enabled
    notifier.ready("starting")
    notifier.status("streaming: tilt, hr; alarms: 1 high")
    notifier.status("streaming: tilt, hr; alarms: 1 high")  # unchanged: not sent again
    notifier.status("two\nlines")  # one message per datagram, one line per field
    notifier.stopping()
    assert receiver.drain() == [
        "READY=1\nSTATUS=starting",
        "STATUS=streaming: tilt, hr; alarms: 1 high",
        "STATUS=two lines",
        "STOPPING=1",
    ]


@pytest.mark.timeout(30)
def test_watchdog_pings_at_half_the_interval(receiver: Receiver) -> None:
    clock = FakeClock()
    env = receiver.env(WATCHDOG_USEC="2000000", WATCHDOG_PID=str(PID))
    notifier = ServiceNotifier(env, pid=PID, clock=clock)
    assert notifier.watchdog_s == 2.0
    assert notifier.ping_every_s == 1.0
    pinged_at = []
    for k in range(51):  # the station's 0.1 s ticker for 5 s
        clock.now = k / 10
        notifier.tick(clock.now)
        got = receiver.drain()
        assert got in ([], ["WATCHDOG=1"])
        if got:
            pinged_at.append(clock.now)
    assert pinged_at == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]

    # A late tick pings at once; the next ping is due half an interval after it.
    for now, expected in [(7.3, ["WATCHDOG=1"]), (8.2, []), (8.3, ["WATCHDOG=1"])]:
        clock.now = now
        notifier.tick(now)
        assert receiver.drain() == expected, now


@pytest.mark.timeout(30)
def test_the_watchdog_counts_real_time_not_station_time(receiver: Receiver) -> None:
    clock = FakeClock()
    env = receiver.env(WATCHDOG_USEC="1000000")  # no WATCHDOG_PID: ours
    notifier = ServiceNotifier(env, pid=PID, clock=clock)
    notifier.tick(0.0)
    notifier.tick(100.0)  # a simulation at speed: station time races, real time does not
    assert receiver.drain() == ["WATCHDOG=1"]


@pytest.mark.timeout(30)
def test_another_process_watchdog_means_no_pings(receiver: Receiver) -> None:
    clock = FakeClock()
    env = receiver.env(WATCHDOG_USEC="2000000", WATCHDOG_PID=str(PID + 1))
    notifier = ServiceNotifier(env, pid=PID, clock=clock)
    assert notifier.watchdog_s is None
    for k in range(100):
        clock.now = k / 10
        notifier.tick(clock.now)
    notifier.ready()
    assert receiver.drain() == ["READY=1"]  # still talks to systemd; only the watchdog is off


@pytest.mark.timeout(30)
def test_without_notify_socket_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("no socket without NOTIFY_SOCKET")

    monkeypatch.setattr(socket, "socket", no_socket)
    notifier = ServiceNotifier({"WATCHDOG_USEC": "2000000"}, pid=PID)
    assert not notifier.enabled
    assert notifier.watchdog_s is None
    notifier.ready("up")
    notifier.status("streaming")
    for k in range(30):
        notifier.tick(k / 10)
    notifier.stopping()
    notifier.alarm_events([])


@pytest.mark.timeout(30)
def test_the_environment_defaults_to_os_environ(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", receiver.notify_socket)
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(PID))
    notifier = ServiceNotifier()
    assert notifier.watchdog_s == 4.0
    notifier.ready()
    assert receiver.drain() == ["READY=1"]


@pytest.mark.timeout(30)
def test_a_vanished_socket_is_logged_once_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notify"
    clock = FakeClock()
    notifier = ServiceNotifier(
        {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}, pid=PID, clock=clock
    )
    with caplog.at_level(logging.INFO, logger="monitor.station.service"):
        notifier.ready()
        for k in range(20):
            clock.now = k / 10
            notifier.tick(clock.now)
        notifier.status("still here")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert str(path) in warnings[0].getMessage()

        sock = _bind(str(path))  # systemd is back
        try:
            clock.now += 1.0
            notifier.tick(clock.now)
            assert Receiver(sock, str(path)).drain() == ["WATCHDOG=1"]
        finally:
            sock.close()
    assert "notifying systemd again" in caplog.text


@pytest.mark.timeout(30)
def test_a_full_socket_drops_the_message_instead_of_blocking(receiver: Receiver) -> None:
    clock = FakeClock()
    notifier = ServiceNotifier(receiver.env(WATCHDOG_USEC="2000"), pid=PID, clock=clock)
    for k in range(5000):  # nobody reads: the receiver's queue fills up
        clock.now = k
        notifier.tick(clock.now)  # a blocking send would hang here (the test's timeout)
    assert 0 < len(receiver.drain()) < 5000


def test_notify_socket_addresses() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@spotter/notify") == "\0spotter/notify"
    for bad in ("run/notify", "@", "vsock:2:1234"):
        with pytest.raises(ValueError, match="NOTIFY_SOCKET"):
            socket_address(bad)


def test_watchdog_enabled_semantics() -> None:
    assert watchdog_interval_s({}, PID) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "10000000"}, PID) == 10.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(PID)}, PID) == 10.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, PID) is None
    for env in (
        {"WATCHDOG_USEC": "ten"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "-5"},
        {"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "me"},
        {"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "0"},
    ):
        with pytest.raises(ValueError, match="WATCHDOG_"):
            watchdog_interval_s(env, PID)


@pytest.mark.timeout(30)
def test_a_malformed_watchdog_setting_turns_the_watchdog_off(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor.station.service"):
        notifier = ServiceNotifier(receiver.env(WATCHDOG_USEC="soon"), pid=PID)
    assert notifier.watchdog_s is None
    assert "WATCHDOG_USEC" in caplog.text
    notifier.tick(0.0)
    assert receiver.drain() == []


# -- with a real station -------------------------------------------------------------------


@dataclass
class Staller(SinkBase):
    """A sink whose tick hangs the event loop once, like an engine stuck in a loop."""

    receiver: Receiver
    stall_s: float
    armed: bool = False
    before: list[str] = field(default_factory=list)
    during: list[str] = field(default_factory=list)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def alarm_events(self, events: object) -> None:
        pass

    def tick(self, t: float) -> None:
        if not self.armed:
            return
        self.armed = False
        self.before = self.receiver.drain()
        time.sleep(self.stall_s)  # blocks the whole loop: no ticker, no pings
        self.during = self.receiver.drain()
        self.resumed.set()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_a_stalled_safety_loop_stops_the_pings_until_it_beats_again(
    receiver: Receiver,
) -> None:
    watchdog_s = 0.3
    env = receiver.env(WATCHDOG_USEC=str(int(watchdog_s * 1e6)), WATCHDOG_PID=str(PID))
    notifier = ServiceNotifier(env, pid=PID)
    staller = Staller(receiver, stall_s=4 * watchdog_s)
    station = Station(make_core(), StationClock(), [notifier, staller])
    stop = asyncio.Event()
    running = asyncio.create_task(station.run([], stop))
    loop = asyncio.get_running_loop()
    try:
        # The heartbeat pings while the loop runs (their cadence, half the watchdog interval,
        # is judged on a fake clock above: a busy machine only delays them). The waits here
        # and below are hang guards.
        for _ in range(3):
            message = await asyncio.wait_for(loop.sock_recv(receiver.sock, 4096), 60)
            assert message == b"WATCHDOG=1"

        staller.armed = True
        await asyncio.wait_for(staller.resumed.wait(), 60)
        assert set(staller.before) <= {"WATCHDOG=1"}
        assert staller.during == []  # systemd would have seen silence for the whole stall

        message = await asyncio.wait_for(loop.sock_recv(receiver.sock, 4096), 60)
        assert message == b"WATCHDOG=1"  # beating again: pings resume
    finally:
        stop.set()
        await running


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_attend_says_ready_after_the_first_beat_then_status_then_stopping(
    receiver: Receiver,
) -> None:
    notifier = ServiceNotifier(receiver.env(), pid=PID)
    station = Station(make_core(), StationClock())
    stop = asyncio.Event()
    attending = asyncio.create_task(notifier.attend(station, stop, every_s=0.05))
    running = asyncio.create_task(station.run([], stop))
    loop = asyncio.get_running_loop()
    try:
        first = await asyncio.wait_for(loop.sock_recv(receiver.sock, 4096), 5.0)
        assert notifier in station.sinks
        assert station.last_tick > 0  # not before the safety loop has beaten
        assert first == b"READY=1\nSTATUS=idle; no alarms"

        station.user_input(InputKind.SYMPTOM)
        status = await asyncio.wait_for(loop.sock_recv(receiver.sock, 4096), 5.0)
        assert status.startswith(b"STATUS=idle; alarms: 1 ")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(running, attending), 5.0)
    assert receiver.drain() == ["STOPPING=1\nSTATUS=stopping"]


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_attend_says_only_stopping_if_stopped_before_the_first_beat(
    receiver: Receiver,
) -> None:
    notifier = ServiceNotifier(receiver.env(), pid=PID)
    station = Station(make_core(), StationClock())
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(notifier.attend(station, stop), 5.0)
    assert receiver.drain() == ["STOPPING=1\nSTATUS=stopping"]


def test_status_text_names_links_by_state_problems_and_alarms() -> None:
    station = Station(make_core(), lambda: 1.0)
    ble, backend = BleConfig(), BleBackend()
    station.links = [
        SensorLink("tilt", SensorConfig(kind=SensorKind.SPOTTER_TILT), ble, backend, station),
        SensorLink("hr", SensorConfig(kind=SensorKind.HEART_RATE), ble, backend, station),
    ]
    station.links[0].state.status = LinkStatus.STREAMING
    assert status_text(station.view()) == "idle; streaming: tilt; searching: hr; no alarms"

    station.links[1].state.status = LinkStatus.STREAMING
    station.problems["store"] = "disk full"
    station.user_input(InputKind.SYMPTOM)
    [alarm] = station.core.alarms.alarms.values()
    assert status_text(station.view()) == (
        f"idle; streaming: tilt, hr; store failing; alarms: 1 {alarm.priority.label}"
    )
    station.problems[STORE_LAG] = "store falling behind: 2.3 s"
    assert status_text(station.view()) == (
        "idle; streaming: tilt, hr; store failing; store falling behind: 2.3 s; "
        f"alarms: 1 {alarm.priority.label}"
    )
