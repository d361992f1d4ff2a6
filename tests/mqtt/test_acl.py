"""The clinic broker's ACL (deploy/mosquitto/acl), on a real Mosquitto.

Mosquitto drops a denied PUBLISH silently and aiomqtt reports success either way, so every
check looks at what a subscriber receives: a forbidden message, published before an allowed
"sentinel" on the same connection, would have arrived before it.
"""

from __future__ import annotations

import aiomqtt
import pytest

from tests.mqtt.rig import Broker, client, password, watching

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def topics_of(messages: list[aiomqtt.Message]) -> list[tuple[str, bytes]]:
    return [(str(m.topic), bytes(m.payload)) for m in messages]  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_station_writes_only_its_own_topics(broker: Broker) -> None:
    async with (
        watching(broker, "hub", "spotter/v1/#") as hub,
        watching(broker, "homeassistant", "homeassistant/#") as ha,
        client(broker, "home") as home,
    ):
        forbidden = [
            "spotter/v1/clinic2/state",
            "spotter/v1/clinic2/alarms",
            "spotter/v1/clinic2/status",
            "spotter/v1/home/cmd",  # a station only reads its commands
            "spotter/v1/clinic2/cmd",
            "spotter/v1/home/anything",
            "homeassistant/device/spotter_clinic2/config",
            "homeassistant/status",
        ]
        for topic in forbidden:
            await home.publish(topic, b"forged", qos=1)
        allowed = [
            "spotter/v1/home/status",
            "spotter/v1/home/state",
            "spotter/v1/home/telemetry",
            "spotter/v1/home/alarms",
            "spotter/v1/home/cmd/reply",
        ]
        for topic in allowed:
            await home.publish(topic, b"ok", qos=1)
        await home.publish("homeassistant/device/spotter_home/config", b"ok", qos=1)
        await hub.until(lambda m: len(m) >= len(allowed))
        await ha.until(lambda m: len(m) >= 1)
        assert topics_of(hub.messages) == [(t, b"ok") for t in allowed]
        assert topics_of(ha.messages) == [("homeassistant/device/spotter_home/config", b"ok")]
    assert "Denied PUBLISH" in broker.log


@pytest.mark.asyncio
async def test_only_the_hub_writes_commands_and_each_station_reads_only_its_own(
    broker: Broker,
) -> None:
    async with (
        watching(broker, "home", "spotter/v1/home/cmd", "spotter/v1/clinic2/cmd") as home,
        watching(broker, "clinic2", "spotter/v1/+/cmd") as clinic2,
        watching(broker, "hub", "spotter/v1/#") as hub,
        client(broker, "hub") as hub_client,
        client(broker, "clinic2") as clinic2_client,
        client(broker, "homeassistant") as ha_client,
    ):
        await clinic2_client.publish("spotter/v1/home/cmd", b"from clinic2", qos=1)
        await ha_client.publish("spotter/v1/home/cmd", b"from homeassistant", qos=1)
        await hub_client.publish("spotter/v1/home/state", b"forged by the hub", qos=1)
        await hub_client.publish("spotter/v1/clinic2/cmd", b"for clinic2", qos=1)
        await hub_client.publish("spotter/v1/home/cmd", b"for home", qos=1)
        await home.until(lambda m: len(m) >= 1)
        await clinic2.until(lambda m: len(m) >= 1)
        await hub.until(lambda m: len(m) >= 2)
        assert topics_of(home.messages) == [("spotter/v1/home/cmd", b"for home")]
        assert topics_of(clinic2.messages) == [("spotter/v1/clinic2/cmd", b"for clinic2")]
        assert topics_of(hub.messages) == [
            ("spotter/v1/clinic2/cmd", b"for clinic2"),
            ("spotter/v1/home/cmd", b"for home"),
        ]


@pytest.mark.asyncio
async def test_a_wrong_password_is_refused(broker: Broker) -> None:
    wrong = aiomqtt.Client(
        "127.0.0.1", broker.port, username="home", password=password("clinic2"), timeout=5
    )
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with wrong:
            pass
    assert refused.value.rc in (5, 135)  # not authorized (MQTT 3.1.1 / 5)
