"""A station's bridge against poisoned commands, on the real broker: a 100 000-deep command,
retained, is counted and dropped; the link stays up and does not reconnect over it."""

from __future__ import annotations

from pathlib import Path

import aiomqtt
import pytest

from monitor.bench.faults.mqtt import NESTED
from monitor.core.trace import InputKind
from monitor.mqtt.protocol import ONLINE, Topics
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


@pytest.mark.asyncio
async def test_a_crashing_bridge_is_a_station_problem_and_restarts_losing_nothing(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        watching(broker, "hub", HOME.state, HOME.alarms) as hub,
        running_station(broker, tmp_path, discovery=False) as rig,
    ):
        await hub.until(lambda _: bool(hub.on(HOME.state)))
        bridge = rig.bridge
        publish_events = bridge._publish_events
        calls = 0

        async def buggy(client: aiomqtt.Client) -> None:  # a bug in the I/O task, injected
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("injected bug")
            await publish_events(client)

        monkeypatch.setattr(bridge, "_publish_events", buggy)
        rig.station.user_input(InputKind.SYMPTOM)  # an alarm event to publish
        # Restarted, it sends the event from the store (the outbox): nothing lost; and its
        # state says what happened.
        await hub.until(lambda _: bool(hub.on(HOME.alarms)))
        assert bridge.crashes["MQTT bridge"] == 1
        assert payload_json(hub.on(HOME.alarms)[0])["id"] == "user.symptom"
        assert "injected bug" in rig.station.problems["task MQTT bridge"]
        await hub.until(
            lambda _: any(
                "task MQTT bridge" in payload_json(m)["problems"] for m in hub.on(HOME.state)
            )
        )
