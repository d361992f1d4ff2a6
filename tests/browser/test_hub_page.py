"""The clinic's central page in real Chromium: a broker, a hub and two simulated stations as
processes; tiles coloured by priority (with words), and an acknowledge sent from the page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.rig import ARTIFACTS
from tests.mqtt.rig import Broker, free_port, password

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.radio]
SPOTTER = [sys.executable, "-m", "monitor.cli.main"]
THERAPIST = "a long therapist password"


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    out.update(extra)
    return out


def station_config(tmp_path: Path, name: str, broker: Broker) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[station]\nname = "{name}"\ndata_dir = "{tmp_path / name}"\n\n[dashboard]\nenabled = false\n\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive_s = 2\n'
    )
    return path


def scenario(tmp_path: Path, name: str, hold_limit: float, hr: float) -> Path:
    path = tmp_path / f"{name}-scenario.toml"
    path.write_text(
        f'name = "{name}"\ndescription = "a long hold"\nduration_s = 90\n'
        f'profile = {{ base = "standard", max_hold_s = {hold_limit} }}\n'
        "theta = [[0, 0], [1, 0], [3, 25], [90, 25]]\n"
        f"hr = [[0, {hr}], [90, {hr}]]\n"
        '[sensors.tilt]\nkind = "spotter_tilt"\nrate_hz = 20\n[sensors.hr]\nkind = "heart_rate"\n'
    )
    return path


@pytest.mark.timeout(150)
def test_the_central_page_shows_every_station_and_acknowledges_remotely(
    tmp_path: Path, broker: Broker, browser: Browser
) -> None:
    hub_toml = tmp_path / "hub.toml"
    hub_port = free_port()
    hub_toml.write_text(
        f'[hub]\nname = "clinic"\ndata_dir = "{tmp_path / "hub"}"\nport = {hub_port}\n\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "hub"\n'
    )
    subprocess.run(
        [*SPOTTER, "hub", "--config", str(hub_toml), "person", "add", "pat", "--role", "therapist"],
        env=env(SPOTTER_HUB_PASSWORD=THERAPIST),
        check=True,
        capture_output=True,
        timeout=60,
    )
    procs = [
        subprocess.Popen(
            [*SPOTTER, "hub", "--config", str(hub_toml)],
            env=env(SPOTTER_MQTT__PASSWORD=password("hub")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    outputs: dict[str, Path] = {}
    for name, hold, hr in (("home", 6, 70), ("clinic2", 600, 130)):
        outputs[name] = tmp_path / f"{name}.out"
        with open(outputs[name], "w") as out:
            procs.append(
                subprocess.Popen(
                    [
                        *SPOTTER,
                        "run",
                        "--sim",
                        str(scenario(tmp_path, name, hold, hr)),
                        "--json",
                        "--config",
                        str(station_config(tmp_path, name, broker)),
                    ],
                    env=env(SPOTTER_MQTT__PASSWORD=password(name)),
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                )
            )
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        deadline = time.monotonic() + 30
        while True:
            try:
                page.goto(f"http://127.0.0.1:{hub_port}/")
                break
            except Exception:
                assert time.monotonic() < deadline, "the hub page never came up"
                time.sleep(0.3)
        page.fill("input[name=name]", "pat")
        page.fill("input[name=password]", THERAPIST)
        page.click("form#login button[type=submit]")
        home = page.locator("article.tile[data-station=home]")
        other = page.locator("article.tile[data-station=clinic2]")
        expect(home).to_be_visible(timeout=40_000)
        expect(other).to_be_visible(timeout=40_000)
        # home: the 6 s hold limit goes high at 12 s; clinic2: HR 130 > 120 is medium
        expect(home).to_have_attribute("data-priority", "high", timeout=40_000)
        expect(home).to_contain_text("HIGH")
        expect(other).to_have_attribute("data-priority", "medium", timeout=40_000)
        expect(other).to_contain_text("MEDIUM")
        # one JS turn: the tiles are redrawn four times a second
        color = page.evaluate(
            "() => getComputedStyle(document.querySelector("
            "'article.tile[data-station=home]')).borderTopColor"
        )
        assert re.search(r"rgb\(204, 0, 0\)", color), color
        row = page.locator("tr[data-alarm='home:inversion.hold_limit']")
        expect(row).to_be_visible(timeout=10_000)
        # nobody is on the escalation list (pat has no rank): the page says so, loudly
        nobody = page.locator("#no-escalation")
        expect(nobody).to_have_attribute("data-high", "true", timeout=10_000)
        expect(nobody).to_contain_text("No one to escalate to: HIGH alarms reach no phone")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hub.png"), full_page=True)
        row.locator("button[data-action=ack]").click()
        deadline = time.monotonic() + 30
        acked = False
        while not acked and time.monotonic() < deadline:
            lines = outputs["home"].read_text().splitlines()
            events = [json.loads(line) for line in lines if line.startswith("{")]
            acked = any(
                e["id"] == "inversion.hold_limit"
                and e["event"] == "acknowledged"
                and "pat" in e["message"]
                for e in events
            )
            time.sleep(0.2)
        assert acked, "the station never recorded the hub's acknowledge"
        expect(page.locator("#log")).to_contain_text(
            "acknowledged inversion.hold_limit", timeout=10_000
        )

        # after a reload the event log comes from the store, each line with its time, and
        # older pages on demand
        page.goto(f"http://127.0.0.1:{hub_port}/?log_page=3")
        log = page.locator("#log li")
        expect(log.first).to_be_visible(timeout=10_000)
        expect(page.locator("#log")).to_contain_text("acknowledged inversion.hold_limit")
        stamp = log.first.locator("time")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", stamp.get_attribute("datetime") or "")
        assert re.search(r"\d\d:\d\d", stamp.inner_text())
        expect(page.locator("#log-more")).to_be_visible()
        oldest = log.last.get_attribute("data-key")
        shown = log.count()
        page.click("#log-more")
        expect(log.last).not_to_have_attribute("data-key", oldest or "", timeout=10_000)
        assert log.count() >= shown + 1
        first = page.request.get(f"http://127.0.0.1:{hub_port}/hub/api/log?limit=3").json()
        second = page.request.get(
            f"http://127.0.0.1:{hub_port}/hub/api/log?limit=3&offset=3"
        ).json()
        assert first["more"]
        times = [e["received_at"] for e in first["events"] + second["events"]]
        assert times == sorted(times, reverse=True)  # newest first, pages in order

        # clinic2 vanishes (killed: its broker will says offline): its tile keeps the last
        # values as stale, with their age; acknowledging its alarm is refused with the reason
        procs[2].kill()
        tile = page.locator("article.tile[data-station=clinic2]")
        expect(tile).to_have_attribute("data-stale", "true", timeout=30_000)
        expect(tile).to_contain_text("OFFLINE — last heard")
        expect(tile).to_contain_text("sensors: unknown while the station is offline")
        expect(tile.locator(".big.stale").last).to_contain_text("HR 130")
        page.locator("tr[data-alarm='clinic2:hr.high'] button[data-action=ack]").click()
        expect(page.locator("#action-result")).to_contain_text(
            "clinic2 is offline: the acknowledgement cannot reach it", timeout=10_000
        )
        page.screenshot(path=str(ARTIFACTS / "hub-offline.png"), full_page=True)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
