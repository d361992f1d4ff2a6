"""The hub against bad input and faults, on the real test broker (its ACL: each station
publishes with its own credentials): every malformed payload on every topic the hub reads,
and the hub killed with retained poison on the broker. The scenarios are the bench's
(:mod:`monitor.bench.faults.mqtt`), so the figures and the tests measure the same thing."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from dashboard.clinic.app import hash_password
from dashboard.clinic.bench import station_state
from dashboard.clinic.service import Hub, UnknownStation
from dashboard.clinic.settings import HubSettings
from dashboard.clinic.store import HubStore
from monitor.bench.faults.mqtt import (
    LINK_TIMEOUT_S,
    Peers,
    hub_restart_with_poison,
    link_lost_raised,
    poison_hub,
    running_hub,
    until,
    valid_alarm,
)
from monitor.mqtt.protocol import ONLINE, HubMessage, Topics, encode
from tests.hub.test_hub_app import PASSWORD, client
from tests.mqtt.rig import Broker, password

pytestmark = [pytest.mark.broker]


@pytest.mark.timeout(300)
@pytest.mark.asyncio
async def test_no_malformed_payload_blinds_the_hub(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pages: list[httpx.AsyncClient] = []

    async def after_each(hub: Hub, i: int) -> None:
        if not pages:
            hub.store.add_person("ada", "admin", hash_password(PASSWORD))
            pages.append(await client(hub, "ada"))
        response = await pages[0].get("/hub/api/snapshot")
        assert response.status_code == 200, f"payload {i}: {response.status_code}"
        problems = response.json()["problems"]
        assert "mqtt home" in problems  # the bad messages are shown on the page
        assert not [k for k in problems if k.startswith("task ")]  # and nothing crashed

    caplog.set_level(logging.WARNING, logger="dashboard.clinic.service")
    try:
        figures = await poison_hub(Peers(broker.port, password), tmp_path, after_each)
    finally:
        for page in pages:
            await page.aclose()
    assert min(figures["payloads_per_kind"].values()) >= 50
    assert figures["rejected"] == figures["payloads_tried"]  # each counted
    assert figures["crashes"] == 0
    assert figures["task_problems"] == []
    assert figures["alarms_of_others_lost"] == 0
    # link.lost for the station that sent only poison after its one state: on the hub's clock
    # (the alarm's value is how long the station had been silent when the hub raised it)
    # past the timeout by no more than the ticker's gap before the raising tick (hub's clock)
    gap = figures["link_lost_tick_gap_s"]
    assert gap is not None, "raised by the hub's ticker"
    assert 0.0 <= figures["link_lost_late_s"] <= gap + 0.01  # the value has 2 decimals
    logged = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(logged) == 1  # once per source, not per message
    assert "home" in logged[0].getMessage()


@pytest.mark.timeout(240)
@pytest.mark.asyncio
async def test_a_hub_killed_with_retained_poison_on_the_broker_comes_back(
    broker: Broker, tmp_path: Path
) -> None:
    figures = await hub_restart_with_poison(Peers(broker.port, password), tmp_path)
    assert figures["alive_after_restart"]
    assert figures["crashes"] == 0
    assert figures["events_lost"] == 0
    assert figures["link_lost_raised_after_restart"]


@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_a_crashing_listener_is_shown_and_restarted_and_link_lost_goes_on(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peers = Peers(broker.port, password)
    home, other = Topics.of("home"), Topics.of("clinic2")
    async with (
        running_hub(peers, tmp_path) as hub,
        peers.client("home") as h,
        peers.client("clinic2") as c,
    ):
        await h.publish(home.status, ONLINE, qos=1, retain=True)
        await h.publish(home.state, encode(station_state("home", 0.0, [])), qos=1, retain=True)
        await until(
            lambda: hub.core.stations.get("home") and hub.core.stations["home"].state,
            10,
            "home heard",
        )
        apply = hub._apply

        def buggy(message: HubMessage) -> None:  # a bug past parsing, injected
            if message.station == "clinic2":
                raise RuntimeError("injected bug")
            apply(message)

        monkeypatch.setattr(hub, "_apply", buggy)
        await c.publish(other.alarms, encode(valid_alarm("clinic2", 1)), qos=1)
        await until(lambda: hub.crashes["hub listener"] >= 1, 10, "the listener crashed")
        assert "injected bug" in hub.snapshot()["problems"]["task hub listener"]
        # The ticker does not depend on the listener: home (silent) gets its link.lost on time.
        await until(lambda: link_lost_raised(hub, "home"), 15, "home's link.lost")
        assert 0.0 <= link_lost_raised(hub, "home")[0]["value"] - LINK_TIMEOUT_S <= 1.0
        monkeypatch.undo()
        await c.publish(other.alarms, encode(valid_alarm("clinic2", 2)), qos=1)
        await until(lambda: hub.store.last_seq("clinic2") == 2, 20, "the restarted listener")
        await h.publish(home.state, b"", qos=1, retain=True)
        await h.publish(home.status, b"", qos=1, retain=True)


@pytest.mark.asyncio
async def test_rejecting_an_escalation_of_a_made_up_station_is_refused(tmp_path: Path) -> None:
    store = HubStore.open(tmp_path / "hub.db")
    try:
        hub = Hub(HubSettings(), store)
        assert not hub.known_station("nowhere")
        with pytest.raises(UnknownStation, match="nowhere"):
            hub.reject_escalation("nowhere", "link.lost", "pat")
        store.seen("home", "online")  # a station of an earlier run counts as known
        assert hub.known_station("home")
        assert hub.reject_escalation("home", "link.lost", "pat") is None  # nothing to hand on
    finally:
        store.close()
