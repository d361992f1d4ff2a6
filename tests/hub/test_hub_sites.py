"""A clinic group, all real: two sites' Mosquittos bridged (by the deploy scripts' own
configuration) to a central broker with per-site users and ACLs; the central hub groups the
stations by site, shows a site whose bridge is down (its stations' link.lost follows), and
catches up in order when it is back, while the site's own hub kept working alone."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dashboard.clinic.service import Hub
from dashboard.clinic.settings import HubSection, HubSettings
from dashboard.clinic.store import HubStore
from monitor.settings import MqttConfig
from tests.hub.replica_rig import Station, station_online
from tests.mqtt.rig import (
    DEPLOY,
    Broker,
    client,
    free_port,
    make_password_file,
    password,
    payload_json,
    watching,
)

pytestmark = [pytest.mark.broker]


class Cable:
    """A TCP link the test can cut: the site bridge reaches the central broker through it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None
        while self._pipes:  # every copy ended, every socket closed
            await asyncio.gather(*self._pipes, return_exceptions=True)

    async def aclose(self) -> None:
        if self._server is not None:
            await self.cut()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        task.add_done_callback(self._pipes.discard)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._open |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            for w in (writer, up_writer):
                w.close()
                self._open.discard(w)
                with contextlib.suppress(OSError):
                    await w.wait_closed()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


def site_bridge(site: str, port: int) -> str:
    """The bridge section, written by the deploy script (so it is tested too)."""
    return subprocess.run(
        [str(DEPLOY / "site-bridge.sh"), site, f"127.0.0.1:{port}"],
        input=password(f"site-{site}") + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout


def central_acl(*sites: str) -> str:
    """The central broker's ACL, by the deploy script."""
    return subprocess.run(
        [str(DEPLOY / "central-acl.sh"), *sites],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout


def add_user(passwd: Path, user: str) -> None:
    subprocess.run(
        [str(DEPLOY / "add-user.sh"), str(passwd), user],
        input=password(user) + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=10,
    )


def hub_settings(port: int, name: str, sites: bool) -> HubSettings:
    return HubSettings(
        hub=HubSection(name=name, sites=sites, link_timeout_s=5.0),
        mqtt=MqttConfig(
            enabled=True,
            host="127.0.0.1",
            port=port,
            username="hub",
            password=password("hub"),
            keepalive_s=2,
            backoff_min_s=0.1,
            backoff_max_s=0.5,
        ),
    )


@contextlib.asynccontextmanager
async def running(hub: Hub) -> AsyncIterator[Hub]:
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.wait_for(hub.connected.wait(), 20)
        yield hub
    finally:
        stop.set()
        await task
        hub.store.close()


async def until(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s  # a hang guard only
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_two_sites_bridged_one_cut_then_caught_up_in_order(tmp_path: Path) -> None:
    central_dir = tmp_path / "central"
    central_dir.mkdir()
    make_password_file(central_dir / "passwd")
    for site in ("north", "south"):
        add_user(central_dir / "passwd", f"site-{site}")
    acl = central_dir / "acl"
    acl.write_text(central_acl("north", "south"))
    central = Broker(central_dir, free_port(), acl=acl)
    central.start()
    cable = Cable(central.port)
    await cable.connect()
    sites: dict[str, Broker] = {}
    try:
        for site, port in (("north", cable.port), ("south", central.port)):
            folder = tmp_path / site
            folder.mkdir()
            make_password_file(folder / "passwd")
            sites[site] = Broker(folder, free_port(), extra_conf=site_bridge(site, port))
            sites[site].start()
        central_hub = Hub(
            hub_settings(central.port, "group", True), HubStore.open(tmp_path / "c.db")
        )
        north_hub = Hub(
            hub_settings(sites["north"].port, "north", False), HubStore.open(tmp_path / "n.db")
        )
        home = Station(sites["north"], "home")
        other = Station(sites["south"], "clinic2")
        async with (
            running(central_hub),
            running(north_hub),
            station_online(home) as h,
            station_online(other),
        ):
            await until(
                lambda: (
                    central_hub.bridges == {"north": True, "south": True}
                    and {"home", "clinic2"} <= set(central_hub.core.stations)
                ),
                30,
                "both sites and their stations at the central hub",
            )
            tiles = {t["station"]: t for t in central_hub.snapshot()["stations"]}
            assert (tiles["home"]["site"], tiles["clinic2"]["site"]) == ("north", "south")
            await home.stream(h, 5, 0.01)
            await until(lambda: central_hub.store.last_seq("home") == 5, 20, "events through")
            await cable.cut()
            await until(lambda: central_hub.bridges["north"] is False, 20, "north's bridge down")
            snapshot = central_hub.snapshot()
            assert snapshot["sites"]["north"] == {"bridge_up": False}
            assert "site north" in snapshot["problems"]
            # Its stations' link.lost follows from the silence; the other site's does not.
            await until(
                lambda: "link.lost" in central_hub.core.stations["home"].alarms.alarms,
                20,
                "home's link.lost at the central hub",
            )
            lost = central_hub.core.stations["home"].alarms.alarms["link.lost"]
            assert lost.value is None  # raised because the bridge is down, not after silence
            assert "bridge" in central_hub.core.stations["home"].alarms.describe(lost)
            assert "link.lost" not in central_hub.core.stations["clinic2"].alarms.alarms
            tiles = {t["station"]: t for t in central_hub.snapshot()["stations"]}
            assert tiles["home"]["site_down"]
            assert not tiles["clinic2"]["site_down"]
            # The site goes on alone: its own hub stores what its station sends meanwhile.
            await home.stream(h, 20, 0.01)
            await until(lambda: north_hub.store.last_seq("home") == 25, 20, "the site's hub")
            assert "link.lost" not in north_hub.core.stations["home"].alarms.alarms
            assert central_hub.store.last_seq("home") == 5
            await cable.connect()
            await until(lambda: central_hub.bridges["north"], 30, "north's bridge back")
            await until(lambda: central_hub.store.last_seq("home") == 25, 30, "the catch-up")
            assert [e["seq"] for e in central_hub.store.station_events("home")] == list(
                range(1, 26)
            )  # every event, in order
            await until(
                lambda: (
                    "link.lost" not in central_hub.core.stations["home"].alarms.alarms
                    or central_hub.core.stations["home"].alarms.alarms["link.lost"].state.value
                    != "active"
                ),
                20,
                "home heard again",
            )
            assert "site north" not in central_hub.snapshot()["problems"]
            # A command from the central hub reaches the station through its site's bridge.
            async with watching(sites["north"], "home", "spotter/v1/home/cmd") as cmds:
                command = await central_hub.command("home", "silence", None, "pat")
                got = await cmds.until(lambda m: bool(m), 20)
                assert payload_json(got[0])["id"] == command
    finally:
        await cable.aclose()
        for b in sites.values():
            b.stop()
        central.stop()


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_site_bridge_user_writes_only_its_own_site(tmp_path: Path) -> None:
    make_password_file(tmp_path / "passwd")
    for site in ("north", "south"):
        add_user(tmp_path / "passwd", f"site-{site}")
    acl = tmp_path / "acl"
    acl.write_text(central_acl("north", "south"))
    central = Broker(tmp_path, free_port(), acl=acl)
    central.start()
    try:
        async with (
            watching(central, "hub", "sites/#") as hub,
            client(central, "site-north", identifier="pretender") as north,
        ):
            await north.publish("sites/south/spotter/v1/home/alarms", b"{}", qos=1)  # denied
            await north.publish("sites/north/spotter/v1/home/cmd", b"{}", qos=1)  # denied
            await north.publish("sites/north/spotter/v1/home/alarms", b"{}", qos=1)
            got = await hub.until(lambda m: bool(m), 10)
            # The broker handles one client's messages in order: the denied ones came first.
            assert [str(m.topic) for m in got] == ["sites/north/spotter/v1/home/alarms"]
    finally:
        central.stop()


@pytest.mark.asyncio
async def test_site_topics_are_parsed_before_they_are_trusted(tmp_path: Path) -> None:
    hub = Hub(hub_settings(1, "group", True), HubStore.open(tmp_path / "hub.db"))
    try:
        hub._message("sites/north/bridge", b"1")
        hub._message("sites/north/bridge", b"0")
        assert hub.bridges == {"north": False}
        assert "site north" in hub.snapshot()["problems"]
        for topic, payload in (
            ("sites/north/bridge", b"2"),  # not a bridge state
            ("sites/no+rth/bridge", b"1"),  # not a site name
            ("sites/north", b"1"),  # nothing under it
            ("sites/north/spotter/v1/../alarms", b"{}"),  # not a station
        ):
            hub._message(topic, payload)
        assert hub.rejections.total == 4
        assert hub.bridges == {"north": False}
        assert hub.site_of == {}
    finally:
        hub.store.close()
