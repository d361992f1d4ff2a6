"""Home Assistant discovery as Home Assistant's broker user sees it: retained on connect, and
published again when Home Assistant announces itself on homeassistant/status."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.mqtt.protocol import Topics
from tests.mqtt.rig import Broker, client, payload_json, running_station, watching

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

CONFIG = "homeassistant/device/spotter_home/config"
HOME = Topics.of("home")


@pytest.mark.asyncio
async def test_discovery_is_retained_and_republished_when_home_assistant_starts(
    broker: Broker, tmp_path: Path
) -> None:
    async with (
        running_station(broker, tmp_path) as rig,
        watching(broker, "hub", HOME.state) as hub,
    ):
        await hub.until(lambda m: len(m) >= 1)  # the writer sends discovery before the state
        # Home Assistant starts after the station: it finds the retained payload.
        async with (
            watching(broker, "homeassistant", "homeassistant/device/+/config", HOME.state) as ha,
            client(broker, "homeassistant") as ha_client,
        ):
            await ha.until(lambda _: bool(ha.on(CONFIG)) and bool(ha.on(HOME.state)))
            first = ha.on(CONFIG)[0]
            assert first.retain
            payload = payload_json(first)
            assert {"dev", "o", "cmps"} <= set(payload)
            assert payload["o"]["name"] == "Spotter"
            hr = payload["cmps"]["heart_rate"]
            assert hr["p"] == "sensor"
            assert hr["unique_id"] == "spotter_home_heart_rate"
            assert hr["availability"][0]["topic"] == HOME.status
            # What the entity reads: no strap, so null (unavailable), not 0.
            assert payload_json(ha.on(HOME.state)[-1])["hr_bpm"] is None

            await ha_client.publish("homeassistant/status", b"online", qos=1)
            await ha.until(lambda _: len(ha.on(CONFIG)) >= 2)
            assert payload_json(ha.on(CONFIG)[1]) == payload
            assert rig.bridge.connected
            # Its "offline" (Home Assistant stopping) asks for nothing.
            await ha_client.publish("homeassistant/status", b"offline", qos=1)
            n = len(ha.messages)
            await ha.until(lambda m: len(m) >= n + 2)  # two more states go by
            assert len(ha.on(CONFIG)) == 2
