"""The hub against a real Mosquitto and real stations on the virtual radio."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from dashboard.clinic.service import Hub
from dashboard.clinic.settings import HubSection, HubSettings
from dashboard.clinic.store import HubStore
from firmware_sim.scenario import parse_scenario
from monitor.settings import MqttConfig
from monitor.station.assembly import mqtt_attacher
from monitor.station.simrun import SimRun, run_simulation, source_of
from monitor.store.station_store import Store
from tests.mqtt.rig import Broker, password

pytestmark = [pytest.mark.broker, pytest.mark.radio]


def scenario(
    name: str, duration_s: float, symptom_at: float | None = None, hold_limit: float = 5
) -> object:
    data = {
        "name": name,
        "description": "a hold with a short limit",
        "duration_s": duration_s,
        "profile": {"base": "beginner", "max_hold_s": hold_limit},
        "theta": [
            [0, 0],
            [1, 0],
            [2, 25],
            [duration_s - 3, 25],
            [duration_s - 2, 0],
            [duration_s, 0],
        ],
        "hr": [[0, 70], [duration_s, 72]],
        "sensors": {"tilt": {"kind": "spotter_tilt", "rate_hz": 25}, "hr": {"kind": "heart_rate"}},
    }
    if symptom_at is not None:
        data["inputs"] = [{"t": symptom_at, "input": "symptom"}]
    return parse_scenario(data, name)


def mqtt(broker: Broker, user: str, **extra: object) -> MqttConfig:
    return MqttConfig(
        enabled=True,
        host="127.0.0.1",
        port=broker.port,
        username=user,
        password=SecretStr(password(user)),
        keepalive_s=2,
        backoff_max_s=1.0,
        **extra,  # type: ignore[arg-type]
    )


async def station(
    name: str, sc: object, broker: Broker, data: Path, speed: float, **extra: object
) -> SimRun:
    return await run_simulation(
        source_of(sc),  # type: ignore[arg-type]
        profile=sc.profile,  # type: ignore[attr-defined]
        age_years=None,
        data_dir=data / name,
        station_name=name,
        speed=speed,
        attach=mqtt_attacher(mqtt(broker, name, **extra), name),
    )


async def until(check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_two_stations_and_a_hub_with_a_mirrored_acknowledge(
    broker: Broker, tmp_path: Path
) -> None:
    store = HubStore.open(tmp_path / "hub.db")
    hub = Hub(HubSettings(hub=HubSection(name="t1"), mqtt=mqtt(broker, "hub")), store)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.wait_for(hub.connected.wait(), 10)
        home = asyncio.create_task(
            station("home", scenario("a", 40, symptom_at=4), broker, tmp_path, 2)
        )
        other = asyncio.create_task(station("clinic2", scenario("b", 40), broker, tmp_path, 2))
        await until(lambda: {"home", "clinic2"} <= set(hub.core.stations), 20)
        await until(
            lambda: any(e["alarm"] == "user.symptom" for e in store.station_events("home")), 30
        )
        raised = next(e for e in store.station_events("home") if e["alarm"] == "user.symptom")
        assert raised["priority"] == "medium"
        assert raised["limit"] == 5.0
        await until(
            lambda: any(
                e["alarm"] == "inversion.hold_limit" for e in store.station_events("clinic2")
            ),
            30,
        )
        hold = next(
            e for e in store.station_events("clinic2") if e["alarm"] == "inversion.hold_limit"
        )
        assert hold["message"].startswith("Inverted for")
        snapshot = hub.snapshot()
        assert {t["station"] for t in snapshot["stations"]} == {"home", "clinic2"}
        await hub.command("home", "acknowledge", "user.symptom", "pat")
        await until(
            lambda: any(
                e["alarm"] == "user.symptom" and e["event"] == "acknowledged"
                for e in store.station_events("home")
            ),
            20,
        )
        acked = next(e for e in store.station_events("home") if e["event"] == "acknowledged")
        assert acked["message"] == "Acknowledged by pat"
        runs = await asyncio.gather(home, other)
        assert [a["action"] for a in store.audit_log()].count("acknowledge sent") == 1
    finally:
        stop.set()
        await running
        store.close()
    station_store = Store.open(tmp_path / "home" / "sim.db")
    try:
        actions = [(a["kind"], a["alarm"], a["by"]) for a in station_store.actions()]
        assert ("acknowledge", "user.symptom", "pat") in actions  # recorded on both sides
    finally:
        station_store.close()
    assert runs[0].origin is not None


@pytest.mark.timeout(180)
@pytest.mark.asyncio
async def test_a_broker_outage_loses_nothing_and_duplicates_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    store = HubStore.open(tmp_path / "hub.db")
    hub = Hub(HubSettings(hub=HubSection(name="t2"), mqtt=mqtt(broker, "hub")), store)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.wait_for(hub.connected.wait(), 10)
        # Holds of 5 s with a 2 s limit, over and over: alarms keep coming during the outage.
        theta: list[list[float]] = [[0, 0]]
        for k in range(12):
            start = 1 + k * 8
            theta += [[start, 0], [start + 0.5, 25], [start + 5, 25], [start + 5.5, 0]]
        theta.append([100, 0])
        sc = parse_scenario(
            {
                "name": "busy",
                "description": "alarm after alarm",
                "duration_s": 100,
                "profile": {"base": "beginner", "max_hold_s": 2, "min_rest_s": 1},
                "theta": theta,
                "hr": [[0, 70], [100, 70]],
                "sensors": {
                    "tilt": {"kind": "spotter_tilt", "rate_hz": 20},
                    "hr": {"kind": "heart_rate"},
                },
            },
            "busy",
        )
        home = asyncio.create_task(
            station("home", sc, broker, tmp_path, 2.5, link_lost_after_s=2.0)
        )
        await until(lambda: len(store.station_events("home")) >= 3, 30)
        broker.stop()
        await asyncio.sleep(20)  # the outage itself, not a synchronisation
        broker.start()
        run = await home
        station_store = Store.open(tmp_path / "home" / "sim.db")
        try:
            committed = [e.seq for e in station_store.events_since(0)]
            lost_link = [e for e in station_store.events_since(0) if e.event.id == "link.lost"]
        finally:
            station_store.close()
        await until(lambda: store.last_seq("home") == committed[-1], 30)
        received = [e["seq"] for e in store.station_events("home")]
        assert received == committed  # every event, in order, none twice
        assert lost_link  # the station raised its own link.lost while the broker was away
        assert run.origin is not None
        # Both hub links came back by themselves: no supervised task crashed, nothing the
        # station sent across the outage was refused, nothing was dropped as a flood.
        assert not hub.crashes
        assert hub.rejections.total == 0
        assert not hub.rate_limited
        assert hub.connected.is_set()
        assert "home" in hub.state_subscribed
    finally:
        stop.set()
        await running
        store.close()


@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_a_killed_station_raises_link_lost_at_the_hub(broker: Broker, tmp_path: Path) -> None:
    store = HubStore.open(tmp_path / "hub.db")
    hub = Hub(HubSettings(hub=HubSection(name="t3"), mqtt=mqtt(broker, "hub")), store)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    config = tmp_path / "home.toml"
    config.write_text(
        f'[station]\nname = "home"\ndata_dir = "{tmp_path / "home"}"\n\n[dashboard]\nenabled = false\n\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive_s = 2\n'
    )
    scenario_file = tmp_path / "long.toml"
    scenario_file.write_text(
        'name = "long"\ndescription = "a long hold"\nduration_s = 120\n'
        "theta = [[0, 0], [1, 0], [3, 25], [120, 25]]\nhr = [[0, 70], [120, 70]]\n"
        '[sensors.tilt]\nkind = "spotter_tilt"\nrate_hz = 20\n[sensors.hr]\nkind = "heart_rate"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    env["SPOTTER_MQTT__PASSWORD"] = password("home")
    proc = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "monitor.cli.main",
            "run",
            "--sim",
            str(scenario_file),
            "--json",
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        await asyncio.wait_for(hub.connected.wait(), 10)
        await until(
            lambda: (
                hub.core.stations.get("home")
                and (hub.core.stations["home"].state or {}).get("phase") == "inverted"
            ),
            40,
        )
        proc.send_signal(signal.SIGKILL)
        # How soon is the broker's keepalive and the hub's rule (SPEC: 5 s of silence), judged
        # on the hub's clock below; the wait is only a hang guard (a busy machine is slower).
        await until(lambda: "link.lost" in hub.core.stations["home"].alarms.alarms, 60)
        view = hub.core.stations["home"]
        alarm = view.alarms.alarms["link.lost"]
        assert alarm.priority.label == "high"  # the station was inverted
        raised = [
            e for e in store.hub_events() if (e["alarm"], e["event"]) == ("link.lost", "raised")
        ]
        assert len(raised) == 1
        # Raised for the right reason and not early: the broker's last will said the station
        # is gone (value None), or it was silent for the hub's timeout on the hub's clock.
        value = raised[0]["value"]
        assert (value is None and view.status == "offline") or value >= hub.core.link_timeout_s
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        stop.set()
        await running
        store.close()
