"""What the replica tests share: a local HTTP receiver for escalation pushes (apprise's
``json://`` posts there, as it would to a real push service), ``spotter hub`` replicas as
processes of their own (so one can be SIGKILLed), and a station publishing on the real broker
with its own credentials."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from dashboard.clinic.bench import station_state
from monitor.bench.faults.mqtt import valid_alarm
from monitor.mqtt.protocol import ONLINE, Topics, encode
from tests.mqtt.rig import Broker, client, password


@dataclass
class PageReceiver:
    """Every push the hubs deliver: (path, title, body), in arrival order."""

    pages: list[tuple[str, str, str]] = field(default_factory=list)
    port: int = 0
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, person: str) -> str:
        return f"json://127.0.0.1:{self.port}/{person}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next(
                int(v)
                for k, _, v in (h.partition(":") for h in lines[1:])
                if k.lower() == "content-length"
            )
            body = json.loads(await reader.readexactly(length))
            self.pages.append((path.strip("/"), body.get("title", ""), body.get("message", "")))
            self._new.set()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    async def until(
        self, predicate: Callable[[list[tuple[str, str, str]]], bool], timeout_s: float
    ) -> None:
        async def wait() -> None:
            while not predicate(self.pages):
                self._new.clear()
                await self._new.wait()

        try:
            await asyncio.wait_for(wait(), timeout_s)
        except TimeoutError:
            raise AssertionError(
                f"pages not as expected within {timeout_s} s: {self.pages}"
            ) from None


@contextlib.asynccontextmanager
async def page_receiver() -> AsyncIterator[PageReceiver]:
    receiver = PageReceiver()
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


def write_hub_config(
    folder: Path,
    broker: Broker,
    replica: str,
    dsn: str,
    *,
    accept_within_s: float = 3.0,
    repeat_s: float = 120.0,
) -> Path:
    """A replica's TOML: the shared database, the shared subscription, its own name."""
    path = folder / f"hub-{replica}.toml"
    path.write_text(
        f'[hub]\nname = "clinic"\ndata_dir = "{folder / replica}"\nport = 0\n'
        f'replica = "{replica}"\nshare = "hubs"\ndatabase = "{dsn}"\nlink_timeout_s = 5\n\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "hub"\n'
        "keepalive_s = 2\nbackoff_min_s = 0.1\nbackoff_max_s = 0.5\n\n"
        f"[escalation]\naccept_within_s = {accept_within_s}\nrepeat_s = {repeat_s}\n"
    )
    return path


async def start_replica(config: Path, log: Path) -> asyncio.subprocess.Process:
    """``spotter hub --config`` as a process of its own (its log in ``log``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    env["SPOTTER_MQTT__PASSWORD"] = password("hub")
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor.cli",
            "hub",
            "--config",
            str(config),
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=env,
        )


@dataclass
class Station:
    """A station on the real broker, logged in as itself: heartbeats and alarm events."""

    broker: Broker
    name: str = "home"
    alarms: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0

    async def heartbeat(self, stop: asyncio.Event, client_: aiomqtt.Client) -> None:
        t = 0.0
        while not stop.is_set():
            state = station_state(self.name, t, self.alarms)
            await client_.publish(Topics.of(self.name).state, encode(state), qos=1, retain=True)
            t += 0.5
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def stream(self, client_: aiomqtt.Client, count: int, every_s: float) -> None:
        """``count`` alarm events, seq 1.., each acknowledged by the broker (QoS 1)."""
        for _ in range(count):
            self.sent += 1
            await client_.publish(
                Topics.of(self.name).alarms, encode(valid_alarm(self.name, self.sent)), qos=1
            )
            await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def station_online(st: Station) -> AsyncIterator[aiomqtt.Client]:
    """The station connected, online, its heartbeat running; its client to publish with."""
    stop = asyncio.Event()
    async with client(st.broker, st.name, identifier=f"station-{st.name}") as c:
        await c.publish(Topics.of(st.name).status, ONLINE, qos=1, retain=True)
        beat = asyncio.create_task(st.heartbeat(stop, c))
        try:
            yield c
        finally:
            stop.set()
            await beat
            await c.publish(Topics.of(st.name).state, b"", qos=1, retain=True)
            await c.publish(Topics.of(st.name).status, b"", qos=1, retain=True)
