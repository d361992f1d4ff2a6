"""TLS as a clinic sets it up: certificates from deploy/mosquitto/make-certs.sh, a TLS listener
that also wants a client certificate, the station connecting with ca_file/cert_file/key_file;
and a station that cannot reach its broker reports it."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import pytest

from monitor.mqtt.protocol import Topics
from tests.mqtt.rig import DEPLOY, Broker, free_port, password, running_station, watching

pytestmark = pytest.mark.timeout(60)

HOME = Topics.of("home")


def make_certs(folder: Path, *args: str) -> str:
    done = subprocess.run(
        [str(DEPLOY / "make-certs.sh"), str(folder), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout


def test_make_certs_is_idempotent(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    first = make_certs(certs, "--server", "broker.clinic", "--client", "home")
    assert "made ca.crt" in first
    assert "made server.crt" in first
    assert "made home.crt" in first
    before = {p.name: p.read_bytes() for p in certs.iterdir()}
    assert make_certs(certs, "--server", "broker.clinic", "--client", "home") == ""
    assert {p.name: p.read_bytes() for p in certs.iterdir()} == before
    assert "made clinic2.crt" in make_certs(certs, "--client", "clinic2")
    for key in ("ca.key", "server.key", "home.key"):
        assert (certs / key).stat().st_mode & 0o077 == 0, key
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.crt", "server.crt", "home.crt", "clinic2.crt"],
        cwd=certs,
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert verify.stdout.count(": OK") == 3


@pytest.mark.broker
@pytest.mark.asyncio
async def test_a_station_connects_over_mutual_tls(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    certs = tmp_path / "certs"
    make_certs(certs, "--server", "localhost", "--ip", "127.0.0.1", "--client", "home")
    tls_port = free_port()
    broker.stop()
    broker.extra_conf = "\n".join(
        [
            f"listener {tls_port} 127.0.0.1",
            f"cafile {certs / 'ca.crt'}",
            f"certfile {certs / 'server.crt'}",
            f"keyfile {certs / 'server.key'}",
            "require_certificate true",
        ]
    )
    broker.start()
    tls = {
        "port": tls_port,
        "tls": True,
        "ca_file": certs / "ca.crt",
        "cert_file": certs / "home.crt",
        "key_file": certs / "home.key",
        "discovery": False,
    }
    async with (
        watching(broker, "hub", HOME.status, HOME.state) as hub,  # on the plain listener
        running_station(broker, tmp_path, **tls) as rig,
    ):
        await hub.until(lambda _: bool(hub.on(HOME.state)))
        assert hub.on(HOME.status)[-1].payload == b"online"
        assert rig.bridge.connected
    assert "(TLS)" in caplog.text
    assert password("home") not in caplog.text  # never logged, not even by paho at DEBUG


@pytest.mark.broker
@pytest.mark.asyncio
async def test_a_station_that_never_reaches_its_broker_says_so(tmp_path: Path) -> None:
    nobody = Broker(tmp_path, free_port())  # never started: nothing listens there
    async with running_station(nobody, tmp_path, link_lost_after_s=0.3, discovery=False) as rig:
        for _ in range(50):  # the bridge has no event for it: poll the station's problems
            if "mqtt" in rig.station.problems:
                break
            await asyncio.sleep(0.1)
        assert "cannot reach the MQTT broker" in rig.station.problems["mqtt"]
        assert not rig.bridge.connected
        assert not rig.bridge.link_lost  # never up: a problem, not a lost link
        assert rig.link_changes == []
