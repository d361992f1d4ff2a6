"""The MQTT test rig: a real Mosquitto (with the deploy ACL itself, so the ACL is tested, and a
password file made by deploy/mosquitto/add-user.sh), a recording subscriber that survives
broker restarts (a persistent session, as the hub keeps one), and a real station (core, store,
journal) with its bridge."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from monitor.mqtt.bridge import MqttBridge
from monitor.settings import MqttConfig
from monitor.station.assembly import assemble
from monitor.station.station import Station, StationClock
from monitor.store.station_store import Store
from monitor.store.writer import Writer
from monitor.supervise import cancel_and_wait
from tests.core.rig import make_core
from tests.station.rig import plan_like

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USERS = ("home", "clinic2", "hub", "homeassistant")
START_TIMEOUT_S = 5.0


def password(user: str) -> str:
    return f"pw-{user}-0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_password_file(path: Path) -> None:
    """Through the deploy script, so it is tested too (password on standard input)."""
    for user in USERS:
        subprocess.run(
            [str(DEPLOY / "add-user.sh"), str(path), user],
            input=password(user) + "\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=10,
        )


@dataclass
class Broker:
    """One mosquitto process; stop() and start() again keep the port and the persistence."""

    folder: Path
    port: int
    extra_conf: str = ""
    acl: Path = DEPLOY / "acl"
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def write_conf(self) -> Path:
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        lines = [
            # As root mosquitto would switch to its own user, which cannot read the temp files.
            "user root" if os.geteuid() == 0 else "",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.folder / 'passwd'}",
            f"acl_file {self.acl}",
            "persistence true",
            f"persistence_location {data}/",
            f"log_dest file {self.folder / 'mosquitto.log'}",
            "log_type all",
            self.extra_conf,
        ]
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.write_conf())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start:\n{self.log[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def client(broker: Broker, user: str, **kwargs: object) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=password(user),
        timeout=5,
        keepalive=5,
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass
class Watcher:
    """Records every message on ``topics`` as ``user``; reconnects after a broker restart
    with a persistent session, so messages published meanwhile are queued for it."""

    broker: Broker
    user: str
    topics: tuple[str, ...]
    messages: list[aiomqtt.Message] = field(default_factory=list)
    connects: int = 0
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    _subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        ident = f"watcher-{self.user}-{id(self)}"
        while True:
            c = client(self.broker, self.user, identifier=ident, clean_session=False)
            try:
                async with c:
                    for topic in self.topics:
                        await c.subscribe(topic, qos=1)
                    self.connects += 1
                    self._subscribed.set()
                    async for message in c.messages:
                        self.messages.append(message)
                        self._new.set()
            except aiomqtt.MqttError:
                self._subscribed.clear()
                await asyncio.sleep(0.05)  # reconnect back-off while the broker is down

    async def until(
        self, predicate: Callable[[list[aiomqtt.Message]], bool], timeout_s: float = 10.0
    ) -> list[aiomqtt.Message]:
        """Wait until ``predicate(messages)`` holds; fail with what arrived if it never does."""

        async def wait() -> None:
            while not predicate(self.messages):
                self._new.clear()
                await self._new.wait()

        try:
            async with asyncio.timeout(timeout_s):
                await wait()
        except TimeoutError:
            got = [(str(m.topic), bytes(m.payload)[:100]) for m in self.messages[-20:]]  # type: ignore[arg-type]
            raise AssertionError(f"not seen within {timeout_s} s; last messages: {got}") from None
        return self.messages

    def on(self, topic: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.matches(topic)]


@contextlib.asynccontextmanager
async def watching(broker: Broker, user: str, *topics: str) -> AsyncIterator[Watcher]:
    w = Watcher(broker, user, topics)
    task = asyncio.create_task(w.run())
    try:
        await asyncio.wait_for(w._subscribed.wait(), 5)
        yield w
    finally:
        await cancel_and_wait(task, errors="raise")


@dataclass
class Rig:
    """A running station with its MQTT bridge."""

    station: Station
    store: Store
    bridge: MqttBridge
    link_changes: list[tuple[bool, float]]
    """What the bridge's on_link_change hook was told: (up, down_for_s)."""
    link_changed: asyncio.Event
    writer: Writer
    """Where the station's (and the bridge's) writes go."""

    async def next_link_change(self, timeout_s: float) -> tuple[bool, float]:
        await asyncio.wait_for(self.link_changed.wait(), timeout_s)
        self.link_changed.clear()
        return self.link_changes[-1]


@contextlib.asynccontextmanager
async def running_station(
    broker: Broker,
    folder: Path,
    name: str = "home",
    *,
    disk: Callable[[], None] | None = None,
    **config: Any,
) -> AsyncIterator[Rig]:
    """A real station (core, store, journal, 0.1 s ticker, no sensors) and its bridge.
    With ``disk`` (a ``before_commit`` hook) it writes through a :class:`StoreWriter` thread,
    as ``spotter run`` does; without, inline."""
    core = make_core()
    kind = "inline" if disk is None else "thread"
    plan = plan_like(core, folder / f"{name}.db", name, writer=kind, before_commit=disk)
    parts = await assemble(plan, StationClock())
    station, store, writer = parts.station, parts.store, parts.writer
    changes: list[tuple[bool, float]] = []
    changed = asyncio.Event()

    def on_link_change(up: bool, down_s: float) -> None:
        changes.append((up, down_s))
        changed.set()

    settings: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": broker.port,
        "password": password(name),
        "backoff_min_s": 0.1,
        "backoff_max_s": 0.3,
    }
    bridge = MqttBridge(
        MqttConfig(**(settings | config)),
        name,
        store,
        on_link_change=on_link_change,
        writer=writer,
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(station.run([], stop), name="station"),
        asyncio.create_task(bridge.run(station, stop), name="bridge"),
    ]
    try:
        yield Rig(station, store, bridge, changes, changed, writer)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
        finally:
            await parts.aclose()


def payload_json(message: aiomqtt.Message) -> Any:
    assert isinstance(message.payload, bytes)
    return json.loads(message.payload)
