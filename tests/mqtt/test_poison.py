"""A station's bridge against poisoned commands, on the real broker: a 100 000-deep command,
retained, is counted and dropped; the link stays up and does not reconnect over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.benchfaults.mqtt import NESTED
from monitor.mqtt_protocol import ONLINE, Topics
from tests.mqtt.rig import Broker, client, payload_json, running_station, watching

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]
HOME = Topics.of("home")


@pytest.mark.asyncio
async def test_a_deeply_nested_retained_command_is_counted_and_dropped(
    broker: Broker, tmp_path: Path
) -> None:
    async with (
        watching(broker, "hub", HOME.status, HOME.state, HOME.reply) as hub,
        client(broker, "hub") as hub_client,
    ):
        await hub_client.publish(HOME.cmd, NESTED, qos=1, retain=True)  # poison, waiting
        async with running_station(broker, tmp_path, discovery=False) as rig:
            await hub.until(lambda _: bool(hub.on(HOME.reply)))
            assert rig.bridge.rejections.total == 1
            reply = payload_json(hub.on(HOME.reply)[0])
            assert reply["ok"] is False
            assert "retained" in reply["error"]
            # Live too, and deep but small enough to pass the size check: the depth check.
            await hub_client.publish(HOME.cmd, b"[" * 4000, qos=1)
            await hub_client.publish(HOME.cmd, b'{"a":' * 800, qos=1)
            await hub.until(lambda _: len(hub.on(HOME.reply)) >= 3)
            assert "nested deeper" in payload_json(hub.on(HOME.reply)[1])["error"]
            assert rig.bridge.rejections.total == 3
            # The link carried on: heartbeats keep coming, and it never reconnected (each
            # connection announces itself "online" once).
            n = len(hub.on(HOME.state))
            await hub.until(lambda _: len(hub.on(HOME.state)) >= n + 3)
            assert rig.bridge.connected
            onlines = [m for m in hub.on(HOME.status) if m.payload == ONLINE.encode()]
            assert len(onlines) == 1
            assert not rig.bridge.crashes
            problems = rig.station.problems
            assert "task MQTT bridge" not in problems
            assert "3 bad MQTT commands refused" in problems["mqtt commands"]
        await hub_client.publish(HOME.cmd, b"", qos=1, retain=True)
