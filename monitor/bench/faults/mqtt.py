"""MQTT faults (``spotter bench faults``, area ``mqtt``): malformed and poisoned payloads on
every topic the hub reads, a hub killed and restarted with retained poison on the broker, a
broker restart, 200 stations and a flooding client on one hub. Real Mosquitto, loopback only.

Each scenario is a coroutine taking :class:`Peers` (the broker's port and the users'
passwords), so the tests run the same scenarios against the ACL'd test broker
(``tests/hub/test_hub_faults.py``) that :func:`run` runs against a throw-away one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiomqtt
from pydantic import SecretStr

from dashboard.clinic.bench import Mosquitto, launch_publisher, published_alarms, station_state
from monitor.mqtt.protocol import MAX_BYTES, ONLINE, TOPIC_ROOT, Topics, encode
from monitor.settings import MqttConfig
from monitor.store.database import now_iso
from monitor.supervise import cancel_and_wait

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub

RETAINED = frozenset({"status", "state"})
"""The topic kinds the stations publish retained (so poison there is delivered again)."""
LIVE_KINDS = ("status", "state", "alarms", "cmd/reply")
"""The topic kinds the hub subscribes to."""
LINK_TIMEOUT_S = 5.0
NESTED = b"[" * 100_000
"""A 100 000-deep array (what killed the station's link with a RecursionError)."""
_RAW = "\x00raw\x00"


class Restartable(Protocol):
    """A broker that can be stopped and started again on the same port."""

    def stop(self) -> None: ...
    def start(self) -> None: ...


@dataclass(frozen=True)
class Peers:
    """How to reach the broker, and as whom."""

    port: int
    secret: Callable[[str], str] | None = None
    """A user's password (None: an anonymous broker)."""

    def client(self, user: str, identifier: str | None = None) -> aiomqtt.Client:
        """A client logged in as ``user``."""
        return aiomqtt.Client(
            "127.0.0.1",
            self.port,
            username=None if self.secret is None else user,
            password=None if self.secret is None else self.secret(user),
            identifier=identifier or f"faults-{user}-{os.getpid()}-{time.monotonic_ns()}",
            timeout=10,
            keepalive=5,
        )

    def mqtt(self, user: str) -> MqttConfig:
        """The ``[mqtt]`` settings of a station or hub logged in as ``user``."""
        return MqttConfig(
            enabled=True,
            host="127.0.0.1",
            port=self.port,
            username=user,
            password=None if self.secret is None else SecretStr(self.secret(user)),
            keepalive_s=2,
            backoff_min_s=0.1,
            backoff_max_s=1.0,
        )


# -- the payloads ------------------------------------------------------------------------------


def valid_alarm(station: str, seq: int) -> dict[str, Any]:
    """An ``alarms`` message the hub accepts."""
    return {
        "t": float(seq),
        "id": "user.symptom",
        "priority": "medium",
        "event": "raised" if seq % 2 else "cleared",
        "value": None,
        "limit": 5.0,
        "message": "Symptom reported",
        "seq": seq,
        "station": station,
        "at": now_iso(),
    }


def listed_high_alarm() -> dict[str, Any]:
    """A high alarm as a station's ``state`` lists it (the hub escalates it at once)."""
    return {
        "id": "hr.high",
        "priority": "high",
        "state": "active",
        "condition": True,
        "acknowledged": False,
        "sounding": True,
        "silenced_for_s": 0.0,
        "value": 150.0,
        "limit": 140.0,
        "message": "Heart rate high",
        "raised_s_ago": 3.0,
    }


def valid_reply(station: str) -> dict[str, Any]:
    """A ``cmd/reply`` message the hub accepts."""
    return {"id": "c0ffee", "cmd": "silence", "ok": True, "station": station, "at": now_iso()}


GENERIC: tuple[bytes, ...] = (
    b"[1]",
    b'"x"',
    b"5",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b"{",
    b"}",
    b"[",
    b"not json",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\x00",
    b" ",
    b"\n",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    NESTED,
    b'{"a":' * 50_000,
    b"[[[[[[[[[[[[1]]]]]]]]]]]]",
    b'{"alarms":[{}]}',
    b'{"seq": 1e400}',
    b'{"at": "2026-01-01T00:00:00"}',
    b"9" * 5000,
    b'"' + b"x" * 70_000 + b'"',
    b"\xef\xbb\xbf{}",
    b'{"station": "home", "seq": 1}',
)
"""Malformed on every topic kind (none is an object of the right shape)."""
_BAD_VALUES: tuple[str, ...] = ("1e400", "NaN", '{"x": [1]}', "[[[[[[[[[1]]]]]]]]]")
"""Raw JSON values no field of any topic accepts (non-finite, wrong shape, too deep)."""
_OPTIONAL = {"error", "note"}


def _mutations(valid: dict[str, Any]) -> list[bytes]:
    out: list[bytes] = []
    for key in valid:
        if key not in _OPTIONAL:
            out.append(encode({k: v for k, v in valid.items() if k != key}).encode())
        for raw in _BAD_VALUES:
            text = encode({**valid, key: _RAW}).replace(json.dumps(_RAW), raw)
            out.append(text.encode())
    out.append(encode({**valid, "zzz": 1}).encode())
    return out


def malformed(station: str) -> list[tuple[str, bytes]]:
    """At least 50 malformed payloads for each topic kind the hub reads, as ``(kind, payload)``:
    the generic ones, every field of a valid message dropped or given a bad value, and the
    kind's own traps (a naive time, ``seq`` out of range, another station's name...)."""
    at = now_iso()
    state = station_state(station, 12.5, [])
    alarm = valid_alarm(station, 1)
    reply = valid_reply(station)
    own: dict[str, list[bytes]] = {
        "status": list(_BAD_STATUS),
        "state": _bad_states(state, at),
        "alarms": _bad_alarms(alarm, at),
        "cmd/reply": _bad_replies(reply, at),
    }
    bases: dict[str, dict[str, Any] | None] = {
        "status": None,
        "state": state,
        "alarms": alarm,
        "cmd/reply": reply,
    }
    table: list[tuple[str, bytes]] = []
    for kind in LIVE_KINDS:
        base = bases[kind]
        payloads = list(GENERIC) + own[kind] + ([] if base is None else _mutations(base))
        table += [(kind, p) for p in payloads]
    return table


_BAD_STATUS = (
    b"ONLINE",
    b"Online",
    b"online ",
    b" online",
    b"online\n",
    b'"online"',
    b"offline\x00",
    b"onlin",
    b"on line",
    b"1",
    b"0",
    b"yes",
    b"up",
    b"online" * 3,
    b"\xffonline",
    b'{"status": "online"}',
    b'["online"]',
    b"offline!",
    b"OFFLINE",
    b"off",
    b"online\r",
    b"\tonline",
)
"""Status payloads that are almost ``online`` or ``offline``."""


def _bad_states(state: dict[str, Any], at: str) -> list[bytes]:
    """A valid ``state`` given a bad value somewhere (``at``: a valid time)."""
    row = listed_high_alarm()
    return [
        encode({**state, "station": "someone_else"}).encode(),
        encode({**state, "at": at[:-6]}).encode(),
        encode({**state, "phase": "x" * 100}).encode(),
        encode({**state, "alarms": [row] * 65}).encode(),
        encode({**state, "alarms": [{**row, "priority": "urgent"}]}).encode(),
        encode({**state, "alarms": [{**row, "sounding": "yes"}]}).encode(),
        encode({**state, "problems": {f"p{i}": "x" for i in range(33)}}).encode(),
        encode({**state, "problems": {"p": "x" * MAX_BYTES["state"]}}).encode(),
        encode({**state, "theta_deg": "25"}).encode(),
        encode({**state, "sensors": [{}]}).encode(),
    ]


def _bad_alarms(alarm: dict[str, Any], at: str) -> list[bytes]:
    """A valid alarm event given a bad value somewhere (``at``: a valid time)."""
    return [
        encode({**alarm, "seq": 0}).encode(),
        encode({**alarm, "seq": -1}).encode(),
        encode({**alarm, "seq": 1.5}).encode(),
        encode({**alarm, "seq": "1"}).encode(),
        encode({**alarm, "seq": 2**64}).encode(),
        encode({**alarm, "at": at[:-6]}).encode(),
        encode({**alarm, "at": "yesterday"}).encode(),
        encode({**alarm, "station": "someone_else"}).encode(),
        encode({**alarm, "station": "a/b"}).encode(),
        encode({**alarm, "id": "DROP TABLE"}).encode(),
        encode({**alarm, "priority": "urgent"}).encode(),
        encode({**alarm, "event": "exploded"}).encode(),
        encode({**alarm, "message": "x" * 600}).encode(),
        encode({**alarm, "t": "1"}).encode(),
    ]


def _bad_replies(reply: dict[str, Any], at: str) -> list[bytes]:
    """A valid command reply given a bad value somewhere (``at``: a valid time)."""
    return [
        encode({**reply, "ok": "true"}).encode(),
        encode({**reply, "ok": 1}).encode(),
        encode({**reply, "id": "x" * 65}).encode(),
        encode({**reply, "error": "x" * 600}).encode(),
        encode({**reply, "at": at[:-6]}).encode(),
        encode({**reply, "station": "someone_else"}).encode(),
        encode([reply]).encode(),
        b"[]",
    ]


# -- helpers ------------------------------------------------------------------------------------


async def until(
    check: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.02
) -> None:
    """Poll ``check`` every ``every_s`` until true; TimeoutError naming ``what`` after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def running_hub(
    peers: Peers, folder: Path, name: str = "faults", **section: Any
) -> AsyncIterator[Hub]:
    """A hub (in this process) on its own store, connected; stopped on exit. ``section``: more
    ``[hub]`` settings."""
    from dashboard.clinic.service import Hub
    from dashboard.clinic.settings import HubSection, HubSettings
    from dashboard.clinic.store import HubStore

    store = HubStore.open(folder / f"{name}.db")
    hub = Hub(HubSettings(hub=HubSection(name=name, **section), mqtt=peers.mqtt("hub")), store)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.wait_for(hub.connected.wait(), 15)
        yield hub
    finally:
        stop.set()
        await running
        store.close()


def link_lost_raised(hub: Hub, station: str | None = None) -> list[dict[str, Any]]:
    """The hub's stored ``link.lost`` raised events (of ``station``, or all) (``value``: how
    long the station had been silent, on the hub's clock, when the hub raised it)."""
    return [
        e
        for e in hub.store.hub_events()
        if e["alarm"] == "link.lost"
        and e["event"] == "raised"
        and (station is None or e["station"] == station)
    ]


def _tick_gap(hub: Hub, station: str) -> float | None:
    """How long the hub's ticker had slept (its clock) before the tick that raised
    ``station``'s ``link.lost``: the bound of that alarm's lateness (None: not the ticker)."""
    gap = hub.link_lost_tick_gap_s.get(station)
    return None if gap is None else round(gap, 3)


# -- scenarios ----------------------------------------------------------------------------------


async def poison_hub(
    peers: Peers,
    folder: Path,
    after_each: Callable[[Hub, int], Awaitable[None]] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Station ``home`` publishes every malformed payload (retained where its topic is) with
    its own credentials; after each, station ``clinic2``'s next alarm must be stored and the
    payload counted. ``home`` sent one valid state first and then only poison: the hub must
    raise ``link.lost`` for it on time (poison is no heartbeat)."""
    table = malformed("home")[:limit]
    home_topics, other = Topics.of("home"), Topics.of("clinic2")
    async with (
        # no rate limit here: this measures parsing, not flooding (see load())
        running_hub(peers, folder, state_rate_per_s=10_000) as hub,
        peers.client("home") as home,
        peers.client("clinic2") as clinic2,
    ):
        first = encode(station_state("home", 0.0, []))
        await home.publish(home_topics.status, ONLINE, qos=1, retain=True)
        await home.publish(home_topics.state, first, qos=1, retain=True)
        await until(lambda: "home" in hub.core.stations, 10, "home's state at the hub")

        def counted_and_stored(n: int) -> bool:
            return hub.rejections.total >= n and hub.store.last_seq("clinic2") >= n

        for i, (kind, payload) in enumerate(table, 1):
            topic = f"{TOPIC_ROOT}/home/{kind}"
            await home.publish(topic, payload, qos=1, retain=kind in RETAINED)
            await clinic2.publish(other.alarms, encode(valid_alarm("clinic2", i)), qos=1)
            await until(
                functools.partial(counted_and_stored, i),
                20,
                f"payload {i} ({kind}) counted and clinic2's alarm {i} stored",
            )
            hub.snapshot()
            if after_each is not None:
                await after_each(hub, i)
        await until(lambda: link_lost_raised(hub, "home"), 3 * LINK_TIMEOUT_S, "home's link.lost")
        raised = link_lost_raised(hub, "home")[0]
        for kind in RETAINED:  # the station clears its own retained poison (the hub may not)
            await home.publish(f"{TOPIC_ROOT}/home/{kind}", b"", qos=1, retain=True)
        stored = len(hub.store.station_events("clinic2"))
        return {
            "payloads_tried": len(table),
            "payloads_per_kind": {k: sum(1 for kind, _ in table if kind == k) for k in LIVE_KINDS},
            "rejected": hub.rejections.total,
            "crashes": sum(hub.crashes.values()),
            "task_problems": sorted(k for k in hub.problems if k.startswith("task ")),
            "alarms_of_others_sent": len(table),
            "alarms_of_others_lost": len(table) - stored,
            "link_lost_raised_after_s": raised["value"],
            "link_lost_late_s": round(raised["value"] - LINK_TIMEOUT_S, 3),
            "link_lost_tick_gap_s": _tick_gap(hub, "home"),
        }


def _db_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute(sql).fetchall()
    except sqlite3.Error:
        return []


class _HubProcess:
    """``spotter hub`` as a process on ``peers``' broker, its configuration, data and log in
    ``folder``, and what it stored."""

    def __init__(self, peers: Peers, folder: Path) -> None:
        data = folder / "hubdata"
        self.config = folder / "hub.toml"
        self.config.write_text(
            f'[hub]\nname = "faults-proc"\ndata_dir = "{data}"\nport = 0\n\n'
            f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {peers.port}\nusername = "hub"\n'
            "keepalive_s = 2\nbackoff_min_s = 0.1\nbackoff_max_s = 1.0\n"
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
        if peers.secret is not None:
            self.env["SPOTTER_MQTT__PASSWORD"] = peers.secret("hub")
        self.db = data / "hub.db"
        self.log_file = folder / "hub.log"

    def start(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "monitor.cli.main", "hub", "--config", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env=self.env,
            )

    def up(self) -> bool:
        return bool(_db_rows(self.db, "SELECT 1 FROM stations WHERE name='home'"))

    def stored(self, seq: int) -> bool:
        return bool(
            _db_rows(self.db, f"SELECT 1 FROM station_events WHERE station='clinic2' AND seq={seq}")
        )

    def link_losts(self) -> int:
        sql = (
            "SELECT COUNT(*) FROM hub_events "
            "WHERE station='home' AND alarm='link.lost' AND event='raised'"
        )
        rows = _db_rows(self.db, sql)
        return int(rows[0][0]) if rows else 0

    @staticmethod
    async def stop(proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (then SIGKILL after 15 s) if it still runs."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)


async def hub_restart_with_poison(peers: Peers, folder: Path) -> dict[str, Any]:
    """``spotter hub`` as a process, with retained poison on the broker (a malformed state, a
    100 000-deep one, a naive time): it must come up, store alarms and raise ``link.lost``;
    then SIGKILL and a restart: the same, and how long it took."""
    hub = _HubProcess(peers, folder)
    home, other = Topics.of("home"), Topics.of("clinic2")
    poison = [
        b"[1]",
        NESTED,
        encode({**station_state("home", 1.0, []), "at": "2026-01-01T00:00:00"}).encode(),
    ]
    async with peers.client("home") as h, peers.client("clinic2") as c:
        await h.publish(home.status, "online", qos=1, retain=True)
        for payload in poison:  # the last one stays retained; each is delivered as it comes
            await h.publish(home.state, payload, qos=1, retain=True)
        proc = hub.start()
        try:
            started = time.monotonic()
            await until(hub.up, 30, "hub up")
            await c.publish(other.alarms, encode(valid_alarm("clinic2", 1)), qos=1)
            await until(lambda: hub.stored(1), 30, "alarm 1 stored")
            first_up_s = time.monotonic() - started
            await until(lambda: hub.link_losts() >= 1, 3 * LINK_TIMEOUT_S, "link.lost for home")
            for payload in poison:  # once more, now live, then retained for the restart
                await h.publish(home.state, payload, qos=1, retain=True)
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
            killed = time.monotonic()
            await c.publish(other.alarms, encode(valid_alarm("clinic2", 2)), qos=1)
            proc = hub.start()
            await until(lambda: hub.stored(2), 30, "alarm 2 stored after the restart")
            recovery_s = time.monotonic() - killed
            await until(lambda: hub.link_losts() >= 2, 3 * LINK_TIMEOUT_S, "link.lost again")
            alive = proc.poll() is None
        finally:
            await hub.stop(proc)
        await h.publish(home.state, b"", qos=1, retain=True)
    log_text = hub.log_file.read_text(errors="replace")
    return {
        "retained_poison": len(poison),
        "first_start_to_alarm_stored_s": round(first_up_s, 2),
        "sigkill_to_alarm_stored_s": round(recovery_s, 2),
        "alive_after_restart": alive,
        "crashes": log_text.count(" crashed"),
        "link_lost_raised_after_restart": hub.link_losts() >= 2,
        "events_lost": 2 - sum(hub.stored(s) for s in (1, 2)),
    }


async def broker_restart(
    peers: Peers, folder: Path, broker: Restartable, events: int = 40, down_s: float = 2.0
) -> dict[str, Any]:
    """A station's outbox publishing alarm events (each until acknowledged, as the real
    station's store-backed outbox does) while the broker is stopped and started again."""
    async with running_hub(peers, folder, "restart") as hub:
        topic = Topics.of("clinic2").alarms
        sent = 0

        async def outbox() -> None:
            nonlocal sent
            while sent < events:
                try:
                    async with peers.client("clinic2", "faults-outbox-clinic2") as c:
                        while sent < events:
                            payload = encode(valid_alarm("clinic2", sent + 1))
                            await c.publish(topic, payload, qos=1, timeout=2)
                            sent += 1
                            await asyncio.sleep(0.05)
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.1)

        station = asyncio.create_task(outbox())
        try:
            await until(lambda: sent >= events // 4, 20, "events before the outage")
            await asyncio.to_thread(broker.stop)
            await until(lambda: not hub.connected.is_set(), 10, "the hub sees the outage")
            await asyncio.sleep(down_s)  # the outage itself
            await asyncio.to_thread(broker.start)
            back = time.monotonic()
            await asyncio.wait_for(hub.connected.wait(), 30)
            reconnect_s = time.monotonic() - back
            await asyncio.wait_for(station, 60)
            await until(lambda: hub.store.last_seq("clinic2") >= events, 30, "every event")
            caught_up_s = time.monotonic() - back
        finally:
            await cancel_and_wait(station, errors="raise")
        seqs = [e["seq"] for e in hub.store.station_events("clinic2")]
        return {
            "events": events,
            "outage_s": down_s,
            "hub_reconnect_s": round(reconnect_s, 2),
            "all_events_stored_s": round(caught_up_s, 2),
            "events_lost": events - len(set(seqs)),
            "events_duplicated": len(seqs) - len(set(seqs)),
            "crashes": sum(hub.crashes.values()),
        }


async def _launch_flooder(port: int, seconds: float) -> asyncio.subprocess.Process:
    """The flooding client (``flood``, below) as another process; its figures on stdout."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.bench.faults.mqtt",
        "flood",
        "--port",
        str(port),
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )


async def load(
    peers: Peers, folder: Path, stations: int, seconds: float, flooding: bool = True
) -> dict[str, Any]:
    """``stations`` simulated stations (:func:`dashboard.clinic.bench.publish`, another process)
    and a flooding client (another process, as fast as it can) on one hub; one more station
    falls silent: its ``link.lost`` must come on time, and no alarm of the others be lost."""
    assert peers.secret is None, "the simulated stations connect anonymously"
    async with running_hub(peers, folder, "load") as hub:
        launched = hub.now()
        publisher = await launch_publisher(peers.port, stations, seconds, alarm_every_s=2)
        flooder = await _launch_flooder(peers.port, seconds if flooding else 0)
        false_losses = 0

        async def watch() -> None:  # link.lost of stations that are surely still publishing
            nonlocal false_losses
            while hub.now() < launched + seconds:
                lost = {e["station"] for e in link_lost_raised(hub)}
                false_losses = sum(1 for n in names if n in lost)
                await asyncio.sleep(0.5)

        names = [f"bench{i:02d}" for i in range(stations)]
        watcher = asyncio.create_task(watch())
        silent = Topics.of("silent")
        async with peers.client("silent") as c:
            await c.publish(silent.status, ONLINE, qos=1)
            await c.publish(silent.state, encode(station_state("silent", 0.0, [])), qos=1)
        await until(lambda: "silent" in hub.core.stations, 30, "the silent station heard")
        await until(lambda: link_lost_raised(hub, "silent"), seconds + 30, "silent's link.lost")
        raised = link_lost_raised(hub, "silent")[0]
        flood_out, _ = await flooder.communicate()
        published = await published_alarms(publisher)
        await watcher

        def stored() -> int:
            return sum(hub.store.last_seq(n) for n in names)  # each station's seqs: 1, 2...

        await until(lambda: stored() >= published, 60, "every simulated alarm", every_s=0.5)
        received = sum(len(hub.store.station_events(n)) for n in names)
        heard = sum(1 for n in names if n in hub.core.stations)  # before they fell silent
        flood = json.loads(flood_out.decode())
        lat = sorted(hub.latencies_ms)
        return {
            "stations": stations,
            "seconds": seconds,
            "stations_heard": heard,
            "alarms_published": published,
            "alarms_lost": published - received,
            "alarm_latency_ms_p50": _pct(lat, 50),
            "alarm_latency_ms_p99": _pct(lat, 99),
            "flood_messages_sent": flood["sent"],
            "flood_rate_per_s": flood["rate_per_s"],
            "silent_station_link_lost_after_s": raised["value"],
            "silent_station_link_lost_late_s": round(raised["value"] - LINK_TIMEOUT_S, 3),
            "silent_station_link_lost_tick_gap_s": _tick_gap(hub, "silent"),
            "link_lost_of_publishing_stations": false_losses,
            "flood_dropped_unread_at_hub": hub.rate_limited["flood"],
            "flood_station_muted": bool(link_lost_raised(hub, "flood")) or "flood" in hub.muted,
            "rejected": hub.rejections.total,
            "crashes": sum(hub.crashes.values()),
        }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1)], 1)


def flood(port: int, seconds: float) -> dict[str, Any]:
    """One station publishing state as fast as it can (one in ten malformed), QoS 0, with
    paho directly (aiomqtt waits on each publish): the client a broken or hostile station
    would be."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

    topic = Topics.of("flood").state
    good = encode(station_state("flood", 1.0, [])).encode()
    bad = b'{"alarms":[{}]}'
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"faults-flood-{os.getpid()}")
    c.max_queued_messages_set(10_000)
    c.connect("127.0.0.1", port, keepalive=5)
    c.loop_start()
    c.publish(Topics.of("flood").status, ONLINE, qos=1).wait_for_publish(10)  # a known station
    sent = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            info = c.publish(topic, bad if sent % 10 == 0 else good, qos=0)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                time.sleep(0.001)  # paho's own queue is full: the socket is the limit
                continue
            sent += 1
    finally:
        took = time.monotonic() - start
        c.disconnect()
        c.loop_stop()
    return {"sent": sent, "rate_per_s": round(sent / took, 1)}


def fuzz(inputs: int, seed: int = 14) -> dict[str, Any]:
    """The pure parsers on ``inputs`` random payloads a topic kind each (random bytes, random
    splices of valid messages, the malformed table's payloads mutated): counts of accepted,
    rejected, and anything else raised (a crash: must be 0)."""
    from monitor.mqtt.protocol import Rejected, command_id, parse_command, parse_hub_message

    rng = random.Random(seed)
    kinds = [*LIVE_KINDS, "telemetry", "cmd"]
    seeds = [p for _, p in malformed("home") if len(p) < 5000] + [
        encode(station_state("home", 1.0, [])).encode(),
        encode(valid_alarm("home", 3)).encode(),
        encode(valid_reply("home")).encode(),
        b'{"cmd": "silence", "by": "Ana", "id": "1"}',
    ]
    counts = {"accepted": 0, "rejected": 0, "crashes": 0}
    for _ in range(inputs):
        how = rng.random()
        if how < 0.2:
            payload = rng.randbytes(rng.randrange(0, 200))
        else:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(0, len(data) + 1)
                if rng.random() < 0.5 and data:
                    del data[at : at + rng.randrange(1, 8)]
                else:
                    data[at:at] = rng.choice(
                        [
                            b"[",
                            b"{",
                            b"]",
                            b"}",
                            b'"',
                            b",",
                            b"1e400",
                            b"NaN",
                            b"-",
                            b"\\",
                            b"\xff",
                            b"null",
                            b"0",
                        ]
                    )
            payload = bytes(data)
        kind = rng.choice(kinds)
        try:
            if kind == "cmd":
                command_id(payload)
                parse_command(payload)
            else:
                parse_hub_message("home", kind, payload)
            counts["accepted"] += 1
        except Rejected:
            counts["rejected"] += 1
        except Exception:  # what the parsers must never do: counted as a crash
            counts["crashes"] += 1
    return {"inputs": inputs, **counts}


# -- the bench ------------------------------------------------------------------------------


async def _all(quick: bool, folder: Path, broker: Mosquitto) -> dict[str, Any]:
    peers = Peers(broker.port)
    (folder / "p").mkdir()
    (folder / "k").mkdir()
    (folder / "b").mkdir()
    (folder / "l").mkdir()
    return {
        "fuzz": fuzz(20_000 if quick else 200_000),
        "poison": await poison_hub(peers, folder / "p"),
        "hub_sigkill_with_retained_poison": await hub_restart_with_poison(peers, folder / "k"),
        "broker_restart": await broker_restart(peers, folder / "b", broker),
        "load": await load(peers, folder / "l", 200, 10.0 if quick else 30.0),
    }


def run(quick: bool) -> dict[str, Any]:
    """The MQTT figures (``quick``: a shorter load run)."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp), max_queued_messages=1000)  # Mosquitto's default
        broker.start()
        try:
            figures = asyncio.run(_all(quick, Path(tmp), broker))
        finally:
            broker.stop()
    p, k, b, ld = (
        figures[x] for x in ("poison", "hub_sigkill_with_retained_poison", "broker_restart", "load")
    )
    figures["summary"] = {
        "payloads_tried": p["payloads_tried"],
        "payloads_rejected": p["rejected"],
        "parser_fuzz_inputs": figures["fuzz"]["inputs"],
        "crashes": p["crashes"]
        + k["crashes"]
        + b["crashes"]
        + ld["crashes"]
        + figures["fuzz"]["crashes"],
        "events_lost": p["alarms_of_others_lost"]
        + k["events_lost"]
        + b["events_lost"]
        + ld["alarms_lost"],
        "hub_recovery_after_sigkill_s": k["sigkill_to_alarm_stored_s"],
        "broker_restart_recovery_s": b["all_events_stored_s"],
        "flood_rate_survived_per_s": ld["flood_rate_per_s"],
        "stations_on_one_hub": ld["stations_heard"],
    }
    return figures


def main() -> None:
    """``python -m monitor.bench.faults.mqtt flood --port P --seconds S``: the flooding client
    (prints its figures as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m monitor.bench.faults.mqtt")
    parser.add_argument("what", choices=["flood"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(flood(args.port, args.seconds)))


if __name__ == "__main__":
    main()
