"""A clinic group's central page in real Chromium: the stations grouped by site, and a site
whose bridge goes down shown as such (its heading and its stations' tiles).

No broker here: what the central broker would deliver (bridged ``sites/...`` topics and the
bridges' notifications) is handed to the hub's own message handler, parser first. The same
path through three real brokers and a cut bridge is tests/hub/test_hub_sites.py."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, expect

from dashboard.clinic.app import create_hub_app, hash_password
from dashboard.clinic.bench import station_state
from dashboard.clinic.service import Hub, HubSection, HubSettings
from dashboard.clinic.store import HubStore
from dashboard.server import _QuietServer
from monitor.mqtt.protocol import encode
from monitor.settings import MqttConfig
from tests.mqtt.rig import free_port

pytestmark = [pytest.mark.browser]
THERAPIST = "a long therapist password"


class CentralHub:
    """A central hub and its page served from a loop in a thread of their own."""

    def __init__(self, settings: HubSettings, store_path: Path, port: int) -> None:
        self.settings = settings
        self.store_path = store_path
        self.port = port
        self.started = threading.Event()
        # asyncio.run: whatever the server leaves pending (the page's stream) is cancelled
        # and finished before the loop closes.
        self.thread = threading.Thread(target=asyncio.run, args=(self._run(),))

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        store = HubStore.open(self.store_path)  # SQLite: opened in the thread that uses it
        store.add_person("pat", "therapist", hash_password(THERAPIST))
        self.hub = Hub(self.settings, store)
        try:
            await self._serve()
        finally:
            store.close()

    async def _serve(self) -> None:
        server = _QuietServer(
            uvicorn.Config(
                create_hub_app(self.hub),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=1,  # the page's event stream stays open
            )
        )
        serving = asyncio.create_task(server.serve())
        running = asyncio.create_task(self.hub.run(self.stop))
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.02)
        self.started.set()
        await self.stop.wait()
        server.should_exit = True
        await asyncio.gather(serving, running)

    def deliver(self, topic: str, payload: bytes) -> None:
        """One message as the broker would hand it to the hub."""

        async def one() -> None:
            await self.hub._handle(topic, payload, False)

        asyncio.run_coroutine_threadsafe(one(), self.loop).result(10)


@contextlib.contextmanager
def central_hub(tmp_path: Path) -> Iterator[CentralHub]:
    settings = HubSettings(
        hub=HubSection(name="group", sites=True),
        # nobody listens there: the hub's broker links retry in the background
        mqtt=MqttConfig(enabled=True, host="127.0.0.1", port=free_port(), backoff_max_s=1.0),
    )
    central = CentralHub(settings, tmp_path / "hub.db", free_port())
    central.thread.start()
    try:
        assert central.started.wait(30), "the hub page did not start"
        yield central
    finally:
        central.loop.call_soon_threadsafe(central.stop.set)
        central.thread.join(30)
        assert not central.thread.is_alive(), "the hub did not stop"


@pytest.mark.timeout(120)
def test_stations_grouped_by_site_and_a_bridge_down_shown(tmp_path: Path, browser: Browser) -> None:
    with central_hub(tmp_path) as central:
        for site, station in (("north", "home"), ("south", "clinic2")):
            central.deliver(f"sites/{site}/bridge", b"1")
            central.deliver(f"sites/{site}/spotter/v1/{station}/status", b"online")
            state = encode(station_state(station, 1.0, [])).encode()
            central.deliver(f"sites/{site}/spotter/v1/{station}/state", state)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"http://127.0.0.1:{central.port}/")
        page.fill("input[name=name]", "pat")
        page.fill("input[name=password]", THERAPIST)
        page.click("form#login button[type=submit]")
        north = page.locator("#tiles h3.site[data-site=north]")
        expect(north).to_have_attribute("data-bridge", "up", timeout=30_000)
        expect(page.locator("#tiles h3.site[data-site=south]")).to_contain_text("bridge up")
        order = page.evaluate(
            "() => [...document.querySelectorAll('#tiles > *')]"
            ".map((e) => e.dataset.site || e.dataset.station)"
        )
        assert order == ["north", "home", "south", "clinic2"]  # each site's stations under it
        started = time.monotonic()
        central.deliver("sites/north/bridge", b"0")
        expect(north).to_have_attribute("data-bridge", "down", timeout=30_000)
        expect(north).to_contain_text("BRIDGE DOWN")
        home = page.locator("article.tile[data-station=home]")
        expect(home).to_contain_text("site north's bridge is down")
        expect(home).to_have_attribute("data-link", "lost")  # its link.lost, at once
        other = page.locator("article.tile[data-station=clinic2]")
        expect(other).not_to_contain_text("bridge is down")
        assert time.monotonic() - started < 120  # a hang guard, not a timing
        page.close()
