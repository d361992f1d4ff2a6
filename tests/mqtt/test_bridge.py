"""The station's MQTT bridge against a real Mosquitto, seen as the hub sees it: status, the
retained state heartbeat, alarm events with sequence numbers, commands, outages, the last will.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.core.trace import InputKind
from monitor.mqtt.protocol import Topics
from tests.mqtt.rig import REPO, Broker, client, payload_json, running_station, watching

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

HOME = Topics.of("home")


def seqs(messages: list) -> list[int]:  # type: ignore[type-arg]
    return [payload_json(m)["seq"] for m in messages]


@pytest.mark.asyncio
async def test_status_state_and_alarms_reach_the_hub(broker: Broker, tmp_path: Path) -> None:
    async with (
        watching(broker, "hub", "spotter/v1/#") as hub,
        running_station(broker, tmp_path, discovery=False) as rig,
    ):
        await hub.until(lambda _: bool(hub.on(HOME.status)) and len(hub.on(HOME.state)) >= 1)
        assert hub.on(HOME.status)[-1].payload == b"online"
        rig.station.user_input(InputKind.SYMPTOM)
        await hub.until(lambda _: len(hub.on(HOME.alarms)) >= 2)  # raised, then cleared
        raised = payload_json(hub.on(HOME.alarms)[0])
        assert raised["id"] == "user.symptom"
        assert raised["event"] == "raised"
        assert raised["station"] == "home"
        assert raised["priority"] == "medium"
        assert raised["value"] == 0.0
        assert raised["limit"] == 5.0
        assert raised["message"]
        stored = rig.store.events_since(0)
        assert seqs(hub.on(HOME.alarms)) == [e.seq for e in stored]
        # The next state comes after the last event's PUBACK: last_seq has moved by then.
        await hub.until(lambda m: m[-1].topic.matches(HOME.state))
        assert rig.bridge.last_seq == stored[-1].seq
        assert rig.store.setting("home", "mqtt.last_seq") == stored[-1].seq
        # The state names the alarm at once (on change), and keeps coming as a heartbeat.
        await hub.until(
            lambda _: any(
                a["id"] == "user.symptom" for a in payload_json(hub.on(HOME.state)[-1])["alarms"]
            )
        )
        n = len(hub.on(HOME.state))
        await hub.until(lambda _: len(hub.on(HOME.state)) >= n + 2, timeout_s=3.5)
        state = payload_json(hub.on(HOME.state)[-1])
        assert state["station"] == "home"
        assert state["phase"] == "idle"
        assert state["hr_bpm"] is None  # no strap: null, never 0
        assert rig.bridge.connected
        assert not rig.bridge.link_lost
        assert "mqtt" not in rig.station.problems

    # A late subscriber gets the retained status and state; a clean stop said offline.
    async with watching(broker, "hub", "spotter/v1/home/#") as late:
        await late.until(lambda _: bool(late.on(HOME.status)) and bool(late.on(HOME.state)))
        assert late.on(HOME.status)[0].retain
        assert late.on(HOME.status)[0].payload == b"offline"
        assert late.on(HOME.state)[0].retain


@pytest.mark.asyncio
async def test_telemetry_batches_the_ticks(broker: Broker, tmp_path: Path) -> None:
    async with (
        watching(broker, "hub", HOME.telemetry) as hub,
        running_station(broker, tmp_path, discovery=False),
    ):
        await hub.until(lambda m: len(m) >= 2, timeout_s=5)
        batch = payload_json(hub.messages[-1])
        assert batch["station"] == "home"
        assert 5 <= len(batch["t"]) <= 15  # about 10 samples a second
        assert len(batch["theta_deg"]) == len(batch["hr_bpm"]) == len(batch["t"])
        assert batch["t"] == sorted(batch["t"])
        assert set(batch["hr_bpm"]) == {None}  # no sensors: unknown, not 0
        assert not hub.messages[-1].retain


@pytest.mark.asyncio
async def test_hub_acknowledge_reaches_the_station_and_is_audited(
    broker: Broker, tmp_path: Path
) -> None:
    async with (
        watching(broker, "hub", "spotter/v1/#") as hub,
        running_station(broker, tmp_path, discovery=False) as rig,
        client(broker, "hub") as hub_client,
    ):
        rig.station.user_input(InputKind.SYMPTOM)
        assert "user.symptom" in rig.station.core.alarms.alarms
        await hub.until(lambda _: len(hub.on(HOME.alarms)) >= 2)
        command = b'{"cmd": "acknowledge", "alarm": "user.symptom", "by": "nurse Ana", "id": "c1"}'
        await hub_client.publish(HOME.cmd, command, qos=1)
        replies = await hub.until(lambda _: bool(hub.on(HOME.reply)))
        reply = payload_json(hub.on(HOME.reply)[0])
        assert reply["id"] == "c1"
        assert reply["ok"] is True
        assert reply["cmd"] == "acknowledge"
        assert replies
        # The latched symptom alarm is acknowledged and resolved, and the hub sees both.
        assert "user.symptom" not in rig.station.core.alarms.alarms
        await hub.until(lambda _: len(hub.on(HOME.alarms)) >= 4)
        events = [payload_json(m) for m in hub.on(HOME.alarms)]
        assert [e["event"] for e in events] == ["raised", "cleared", "acknowledged", "resolved"]
        assert events[2]["message"] == "Acknowledged by nurse Ana"
        assert seqs(hub.on(HOME.alarms)) == [e.seq for e in rig.store.events_since(0)]
        audit = [a for a in rig.store.audit_log() if a["action"] == "mqtt command"]
        assert audit == [
            {
                "at": audit[0]["at"],
                "actor": "nurse Ana",
                "action": "mqtt command",
                "detail": {
                    "cmd": "acknowledge",
                    "alarm": "user.symptom",
                    "id": "c1",
                    "listed": True,
                    "via": "mqtt",
                },
            }
        ]
        actions = rig.store.actions()
        assert [(a["kind"], a["alarm"], a["by"]) for a in actions] == [
            ("symptom", None, None),
            ("acknowledge", "user.symptom", "nurse Ana"),
        ]

        # silence (every alarm) and end_session are applied the same way.
        rig.station.user_input(InputKind.SYMPTOM)
        await hub_client.publish(HOME.cmd, b'{"cmd": "silence", "by": "nurse Ana"}', qos=1)
        await hub_client.publish(
            HOME.cmd, b'{"cmd": "end_session", "by": "Dr B", "id": "e"}', qos=1
        )
        await hub.until(lambda _: len(hub.on(HOME.reply)) >= 3)
        assert [payload_json(m)["ok"] for m in hub.on(HOME.reply)] == [True, True, True]
        await hub.until(
            lambda _: "silenced" in [payload_json(m)["event"] for m in hub.on(HOME.alarms)]
        )
        kinds = [(a["kind"], a["by"]) for a in rig.store.actions()]
        assert kinds[-2:] == [("silence", "nurse Ana"), ("session_end", "Dr B")]


@pytest.mark.asyncio
async def test_malformed_commands_are_refused_audited_and_harmless(
    broker: Broker, tmp_path: Path
) -> None:
    bad = [
        b"not json at all",
        b'{"cmd": "reboot", "by": "mallory", "id": "x1"}',
        b'{"cmd": "acknowledge", "by": "nurse"}',  # which alarm?
        b'{"cmd": "acknowledge", "alarm": "user.symptom"}',  # by whom?
        b'{"cmd": "silence", "by": "nurse", "extra": 1}',
        b'{"cmd": "acknowledge", "alarm": "DROP TABLE;", "by": "x"}',
        b"[1, 2, 3]",
        b"\xff\xfe",
        b"x" * 5000,
    ]
    async with watching(broker, "hub", "spotter/v1/#") as hub, client(broker, "hub") as hub_client:
        # A retained command is refused: it would be applied again at every reconnect.
        retained = b'{"cmd": "end_session", "by": "x", "id": "r"}'
        await hub_client.publish(HOME.cmd, retained, qos=1, retain=True)
        async with running_station(broker, tmp_path, discovery=False) as rig:
            await hub.until(lambda _: bool(hub.on(HOME.reply)) and bool(hub.on(HOME.state)))
            first = payload_json(hub.on(HOME.reply)[0])
            assert first["id"] == "r"
            assert first["ok"] is False
            assert "retained" in first["error"]
            # Clearing it (an empty retained message) reaches the station too: ignored quietly.
            await hub_client.publish(HOME.cmd, b"", qos=1, retain=True)

            rig.station.user_input(InputKind.SYMPTOM)
            for payload in bad:
                await hub_client.publish(HOME.cmd, payload, qos=1)
            await hub.until(lambda _: len(hub.on(HOME.reply)) >= len(bad) + 1)
            replies = [payload_json(m) for m in hub.on(HOME.reply)[1:]]
            assert [r["ok"] for r in replies] == [False] * len(bad)
            assert replies[1]["id"] == "x1"
            assert "cmd" in replies[1]["error"]
            assert "alarm" in replies[2]["error"]
            assert "by" in replies[3]["error"]
            assert "5000 bytes" in replies[-1]["error"]
            refused = [a for a in rig.store.audit_log() if a["action"] == "mqtt command refused"]
            assert len(refused) == len(bad) + 1
            assert all(a["actor"] == "mqtt" for a in refused)
            assert all(a["detail"]["reason"] for a in refused)
            # Nothing was applied; the station and the bridge carry on.
            assert "user.symptom" in rig.station.core.alarms.alarms
            assert [a["kind"] for a in rig.store.actions()] == ["symptom"]
            n = len(hub.on(HOME.state))
            await hub.until(lambda _: len(hub.on(HOME.state)) >= n + 2, timeout_s=3.5)
            assert rig.bridge.connected


@pytest.mark.asyncio
async def test_broker_outage_loses_nothing_and_repeats_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    async with (
        watching(broker, "hub", HOME.alarms, HOME.state) as hub,
        running_station(broker, tmp_path, discovery=False, link_lost_after_s=2.0) as rig,
    ):
        station = rig.station
        station.user_input(InputKind.SYMPTOM)
        await hub.until(lambda _: len(hub.on(HOME.alarms)) >= 2)
        # A state after the events: the bridge has their PUBACKs. (An event whose PUBACK is
        # lost with the connection is sent again after it: at-least-once, the hub de-dups.)
        await hub.until(lambda m: m[-1].topic.matches(HOME.state))
        before = len(hub.on(HOME.alarms))

        broker.stop()
        # Alarms go on while the broker is down: raised, cleared, acknowledged, resolved...
        for _ in range(3):
            station.user_input(InputKind.ACKNOWLEDGE, "user.symptom", "nurse")
            station.user_input(InputKind.SYMPTOM)
            station.tick()  # the step after a STOP press: its condition clears (latched)
        committed = rig.store.events_since(0)
        assert len(committed) == before + 3 * 4  # acknowledged, resolved, raised, cleared
        # The station's side of link.lost: a problem and the hook, after link_lost_after_s.
        up, silent_s = await rig.next_link_change(5)
        assert not up
        assert silent_s >= 2.0
        assert rig.bridge.link_lost
        assert "no answer from the MQTT broker" in station.problems["mqtt"]

        broker.start()
        await hub.until(lambda _: len(hub.on(HOME.alarms)) >= len(committed), timeout_s=15)
        got = seqs(hub.on(HOME.alarms))
        assert got == [e.seq for e in committed]  # every one, in order, none twice
        assert got == list(range(got[0], got[0] + len(got)))
        up, down_s = await rig.next_link_change(5)
        assert up
        assert down_s >= 2.0
        assert not rig.bridge.link_lost
        assert "mqtt" not in station.problems
        assert len(rig.link_changes) == 2

        # ...and it continues live.
        station.user_input(InputKind.ACKNOWLEDGE, "user.symptom", "nurse")
        n = len(rig.store.events_since(0))
        await hub.until(lambda _: len(hub.on(HOME.alarms)) >= n)
        assert seqs(hub.on(HOME.alarms)) == [e.seq for e in rig.store.events_since(0)]


@pytest.mark.asyncio
async def test_a_restarted_station_sends_only_what_the_hub_missed(
    broker: Broker, tmp_path: Path
) -> None:
    async with watching(broker, "hub", HOME.alarms) as hub:
        async with running_station(broker, tmp_path, discovery=False) as rig:
            rig.station.user_input(InputKind.SYMPTOM)
            await hub.until(lambda _: len(hub.on(HOME.alarms)) >= 2)
        assert rig.bridge.last_seq == 2  # a clean stop: every PUBACK is in
        broker.stop()
        async with running_station(broker, tmp_path, discovery=False) as rig:  # same store
            assert rig.bridge.last_seq == 2
            rig.station.user_input(InputKind.SYMPTOM)
            broker.start()
            await hub.until(lambda _: len(hub.on(HOME.alarms)) >= 4)
            assert seqs(hub.on(HOME.alarms)) == [1, 2, 3, 4]


@pytest.mark.asyncio
async def test_last_will_says_offline_when_the_station_dies(broker: Broker, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.mqtt.station_proc",
        str(broker.port),
        str(tmp_path / "dying.db"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with watching(broker, "hub", HOME.status, HOME.state) as hub:
            await hub.until(
                lambda _: bool(hub.on(HOME.state)) and hub.on(HOME.status)[-1].payload == b"online",
                timeout_s=20,
            )
            proc.send_signal(signal.SIGKILL)
            await hub.until(lambda _: hub.on(HOME.status)[-1].payload == b"offline", timeout_s=5)
            assert await asyncio.wait_for(proc.wait(), 5) == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
