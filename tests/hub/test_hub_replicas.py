"""Hub replicas on one broker and one PostgreSQL, all real: alarm events through an MQTT v5
shared subscription, escalation steps claimed in the database. A replica SIGKILLed in the
middle of a stream of alarms and of an escalation; the database restarted under load."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dashboard.clinic.app import hash_password
from dashboard.clinic.pg import PgHubStore
from dashboard.clinic.service import Hub
from dashboard.clinic.settings import EscalationSection, HubSection, HubSettings
from monitor.bench.faults.mqtt import listed_high_alarm
from monitor.settings import MqttConfig
from tests.hub.pg_rig import Postgres
from tests.hub.replica_rig import (
    PageReceiver,
    Station,
    page_receiver,
    start_replica,
    station_online,
    write_hub_config,
)
from tests.mqtt.rig import Broker, password

pytestmark = [pytest.mark.broker, pytest.mark.postgres]
EVENTS = 150
ACCEPT_WITHIN_S = 6.0
"""Long enough that the kill comes before the hand-on even on a loaded machine (checked)."""


async def until(
    check: object, timeout_s: float, what: str, explain: Callable[[], str] = lambda: ""
) -> None:
    deadline = time.monotonic() + timeout_s  # a hang guard only
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}. {explain()}"
        await asyncio.sleep(0.05)


def people(db: PgHubStore, receiver: PageReceiver) -> None:
    db.add_person("pat", "therapist", hash_password("a long password 1"), receiver.url("pat"), 1)
    db.add_person("sam", "therapist", hash_password("a long password 2"), receiver.url("sam"), 2)


def claims(db: PgHubStore) -> dict[str, tuple[str, int]]:
    rows = db._all("SELECT step, replica, done FROM escalation_claims")
    return {step: (replica, done) for step, replica, done in rows}


@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_a_replica_killed_mid_stream_and_mid_escalation(
    broker: Broker, pg_dsn: str, tmp_path: Path
) -> None:
    db = PgHubStore.open_dsn(pg_dsn)
    procs: dict[str, asyncio.subprocess.Process] = {}
    configs = {
        r: write_hub_config(tmp_path, broker, r, pg_dsn, accept_within_s=ACCEPT_WITHIN_S)
        for r in ("a", "b")
    }
    try:
        async with page_receiver() as receiver:
            people(db, receiver)
            for r, config in configs.items():
                procs[r] = await start_replica(config, tmp_path / f"{r}.log")
            await until(
                lambda: broker.log.count("$share/hubs/spotter/v1/+/alarms") >= 2,
                60,
                "both replicas on the shared subscription",
            )
            station = Station(broker, alarms=[listed_high_alarm()])
            async with station_online(station) as c:
                stream = asyncio.create_task(station.stream(c, EVENTS, 0.03))
                await receiver.until(lambda pages: len(pages) >= 1, 30)
                assert receiver.pages[0][0] == "pat"
                await until(
                    lambda: claims(db).get("pat:sent", ("", 0))[1] == 1, 10, "pat's page done"
                )
                holder = claims(db)["pat:sent"][0]
                assert not stream.done()  # mid-stream
                assert "sam:sent" not in claims(db)  # mid-escalation: the hand-on is to come
                sent_before_kill = station.sent
                procs[holder].send_signal(signal.SIGKILL)
                await procs[holder].wait()
                # The survivor carries the escalation on: pat did not accept in time, so sam.
                await receiver.until(lambda pages: len(pages) >= 2, 30)
                assert [p[0] for p in receiver.pages] == ["pat", "sam"]
                survivor = "b" if holder == "a" else "a"
                assert claims(db)["sam:sent"][0] == survivor
                await stream
                assert sent_before_kill < EVENTS
                # The killed replica comes back (as its service manager restarts it) and gets
                # the events the broker held in its session.
                procs[holder] = await start_replica(configs[holder], tmp_path / f"{holder}.log")
                await until(
                    lambda: len(db.station_events("home")) >= EVENTS,
                    60,
                    "every event stored",
                    lambda: (
                        f"{len(db.station_events('home'))} stored; the restarted replica's "
                        f"log: {(tmp_path / f'{holder}.log').read_text()[-3000:]}"
                    ),
                )
                seqs = [e["seq"] for e in db.station_events("home")]
                assert sorted(seqs) == list(range(1, EVENTS + 1))  # each once, none lost
                # No page twice: the restarted replica went through the same steps and found
                # them done; nothing more is due before the repeat (120 s).
                await asyncio.sleep(ACCEPT_WITHIN_S + 1)  # an absence check, not a timing
                assert [p[0] for p in receiver.pages] == ["pat", "sam"]
                steps = [(e["person"], e["step"]) for e in db.escalations()]
                for step in [
                    ("pat", "sent"),
                    ("pat", "delivered"),
                    ("pat", "not accepted"),
                    ("sam", "sent"),
                    ("sam", "delivered"),
                ]:
                    assert steps.count(step) == 1, steps
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        db.close()


def replica_settings(broker: Broker, dsn: str, replica: str) -> HubSettings:
    return HubSettings(
        hub=HubSection(name="clinic", replica=replica, share="hubs", database=dsn),
        mqtt=MqttConfig(
            enabled=True,
            host="127.0.0.1",
            port=broker.port,
            username="hub",
            password=password("hub"),
            keepalive_s=2,
            backoff_min_s=0.1,
            backoff_max_s=0.5,
        ),
        escalation=EscalationSection(),
    )


@pytest.mark.timeout(120)
@pytest.mark.asyncio
async def test_postgresql_restarted_under_load_loses_nothing(
    broker: Broker, pg_cluster: Postgres, pg_dsn: str
) -> None:
    hubs = []
    for r in ("a", "b"):
        settings = replica_settings(broker, pg_dsn, r)
        hubs.append(Hub(settings, settings.open_store()))
    stop = asyncio.Event()
    running = [asyncio.create_task(h.run(stop)) for h in hubs]
    db = PgHubStore.open_dsn(pg_dsn)
    try:
        for h in hubs:
            await asyncio.wait_for(h.connected.wait(), 20)
        station = Station(broker)
        async with station_online(station) as c:
            stream = asyncio.create_task(station.stream(c, 400, 0.01))
            await until(lambda: len(db.station_events("home")) >= 20, 20, "the first events")
            db.close()
            await asyncio.to_thread(pg_cluster.restart)  # meanwhile the broker holds them
            assert not stream.done()  # the restart came in the middle of the stream
            await stream
            await until(lambda: len(db.station_events("home")) >= 400, 30, "every event stored")
        assert sorted(e["seq"] for e in db.station_events("home")) == list(range(1, 401))
        assert sum(h.store_outages for h in hubs) >= 1  # the restart was felt, and waited out
        for h in hubs:
            assert not h.crashes
            assert "store" not in h.problems  # reconnected
            assert h.connected.is_set()
            assert not [k for k in h.problems if k.startswith("task hub listener")]
    finally:
        stop.set()
        await asyncio.gather(*running)
        for h in hubs:
            h.store.close()
        db.close()
