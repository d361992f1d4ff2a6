"""The owner's PIN (rate-limited, set and changed by the owner, also from the command line),
logging out in any role, and profiles chosen by name (never a path) or uploaded as TOML."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard import pairing_store
from dashboard.auth import COOKIE, HASHING, Access, _hash
from monitor.settings import load_settings
from monitor.store.station_store import Store
from tests.dashboard.conftest import Rig

pytestmark = [pytest.mark.timeout(120)]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.asyncio
async def test_wrong_pins_are_rate_limited_with_back_off(rig: Rig) -> None:
    clock = FakeClock()
    rig.access.clock = clock
    rig.access.set_pin("4321", by="owner")
    owner = await rig.paired()
    await owner.post("/api/users", json={"name": "anna"})
    change = {"user": "anna", "profile": "standard"}
    missing = await owner.put("/api/settings/profile", json=change)
    assert missing.status_code == 403
    for k in range(5):  # four more wrong ones are free: the same answer as a missing PIN
        wrong = await owner.put("/api/settings/profile", json={**change, "pin": f"000{k}"})
        assert wrong.status_code == 403
        assert wrong.json() == missing.json()
    verified = HASHING.verified
    limited = await owner.put("/api/settings/profile", json={**change, "pin": "4321"})
    assert limited.status_code == 429  # even the right PIN waits: no oracle while locked
    assert int(limited.headers["retry-after"]) >= 1
    assert HASHING.verified == verified  # refused before any hashing
    clock.t += 1.0
    wrong = await owner.put("/api/settings/profile", json={**change, "pin": "1111"})
    assert wrong.status_code == 403
    assert (await owner.put("/api/settings/profile", json=change)).status_code == 429
    clock.t += 1.9
    assert (await owner.put("/api/settings/profile", json=change)).status_code == 429
    clock.t += 0.1  # the second lock is twice the first
    ok = await owner.put("/api/settings/profile", json={**change, "pin": "4321"})
    assert ok.status_code == 200
    await owner.aclose()


@pytest.mark.asyncio
async def test_the_owner_sets_and_changes_the_pin_on_the_page(rig: Rig) -> None:
    owner = await rig.paired()
    user = await rig.paired("user", "anna")
    assert (await user.put("/api/settings/pin", json={"new": "1234"})).status_code == 403
    assert (await owner.put("/api/settings/pin", json={"new": "12"})).status_code == 422
    assert (await owner.put("/api/settings/pin", json={"new": "12ab"})).status_code == 422
    assert (await owner.get("/api/settings")).json()["pin_set"] is False
    first = await owner.put("/api/settings/pin", json={"new": "1234"})
    assert first.status_code == 200
    assert (await owner.get("/api/settings")).json()["pin_set"] is True
    again = await owner.put("/api/settings/pin", json={"new": "5678"})
    assert again.status_code == 403  # changing it needs the old one
    wrong = await owner.put("/api/settings/pin", json={"old": "9999", "new": "5678"})
    assert wrong.status_code == 403
    changed = await owner.put("/api/settings/pin", json={"old": "1234", "new": "5678"})
    assert changed.status_code == 200
    assert await rig.access.check_pin("5678", "test")
    assert not await rig.access.check_pin("1234", "test")
    actions = [a["action"] for a in rig.store.audit_log()]
    assert actions.count("owner PIN set") == 2
    await owner.aclose()
    await user.aclose()


@pytest.mark.asyncio
async def test_a_viewer_logs_out_and_the_session_is_deleted(rig: Rig) -> None:
    viewer = await rig.paired("viewer", "screen")
    cookie = next(c.value for c in viewer.cookies.jar if c.name == COOKIE and c.value)
    assert pairing_store.web_session(rig.store, _hash(cookie)) is not None
    del viewer.headers["X-CSRF-Token"]
    assert (await viewer.post("/api/logout")).status_code == 403  # the CSRF token is needed
    viewer.headers["X-CSRF-Token"] = (await viewer.get("/api/me")).json()["csrf"]
    assert (await viewer.post("/api/logout")).status_code == 200
    assert pairing_store.web_session(rig.store, _hash(cookie)) is None
    assert (await viewer.get("/api/me")).status_code == 401
    await viewer.aclose()


@pytest.mark.asyncio
async def test_profiles_from_the_network_are_names_never_paths(rig: Rig, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block the station's loop for ever
    secret = tmp_path / "secret.toml"
    secret.write_text('base = "standard"\n')
    doctor = await rig.paired("clinician", "Dr Lee")
    await doctor.post("/api/users", json={"name": "anna"})
    for path in (str(fifo), str(secret), "/dev/zero", "secret.toml", "../x"):
        for answer in (
            await doctor.put("/api/settings/profile", json={"user": "anna", "profile": path}),
            await doctor.post("/api/users", json={"name": "ben", "profile": path}),
        ):
            assert answer.status_code == 422, path
            assert str(tmp_path) not in answer.text
            assert "/dev/zero" not in answer.text
    unknown = await doctor.put("/api/settings/profile", json={"user": "anna", "profile": "fifo"})
    assert unknown.status_code == 422
    assert (
        unknown.json()["detail"]
        == "no profile named 'fifo' (built in: beginner, standard, or stored)"
    )
    await doctor.aclose()


@pytest.mark.asyncio
async def test_a_clinician_uploads_a_profile_as_toml_and_chooses_it_by_name(rig: Rig) -> None:
    doctor = await rig.paired("clinician", "Dr Lee")
    owner = await rig.paired()
    await doctor.post("/api/users", json={"name": "anna"})
    text = 'base = "standard"\nmax_angle_deg = 45\nmax_hold_s = 90\n'
    bad = await doctor.post("/api/profiles", json={"name": "gentle", "toml": "max_angle_deg = 95"})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("gentle: max_angle_deg:")
    broken = await doctor.post("/api/profiles", json={"name": "gentle", "toml": "= ="})
    assert broken.status_code == 422
    assert "not valid TOML" in broken.json()["detail"]
    assert (
        await doctor.post("/api/profiles", json={"name": "standard", "toml": text})
    ).status_code == 409
    assert (
        await owner.post("/api/profiles", json={"name": "gentle", "toml": text})
    ).status_code == 403
    huge = await doctor.post("/api/profiles", json={"name": "gentle", "toml": "#" * 20_000})
    assert huge.status_code == 422
    stored = await doctor.post("/api/profiles", json={"name": "gentle", "toml": text})
    assert stored.status_code == 201
    assert stored.json()["profile"]["max_angle_deg"] == 45
    chosen = await doctor.put("/api/settings/profile", json={"user": "anna", "profile": "gentle"})
    assert chosen.status_code == 200
    assert chosen.json()["profile"]["max_hold_s"] == 90
    settings = (await owner.get("/api/settings")).json()
    assert settings["stored_profiles"] == ["gentle"]
    added = await doctor.post("/api/users", json={"name": "ben", "profile": "gentle"})
    assert added.status_code == 201
    await doctor.aclose()
    await owner.aclose()


def test_spotter_pin_set_reads_the_pin_from_stdin(tmp_path: Path) -> None:
    spotter = [sys.executable, "-m", "monitor.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    config = tmp_path / "spotter.toml"
    made = subprocess.run(
        [*spotter, "init", "--path", str(config), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    bad = subprocess.run(
        [*spotter, "pin", "set", "--stdin", "--config", str(config)],
        input=b"12\n",
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2
    assert b"the PIN is 4 to 12 digits" in bad.stderr
    ok = subprocess.run(
        [*spotter, "pin", "set", "--stdin", "--config", str(config), "--by", "owner"],
        input=b"246810\n",
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    settings = load_settings(config)
    store = Store.open(settings.station.store_path)
    try:
        access = Access(store, settings.station.name)
        assert access.pin_set()
        assert access._hasher.verify(store.setting(settings.station.name, "owner_pin"), "246810")
        assert ("owner", "owner PIN set") in [(a["actor"], a["action"]) for a in store.audit_log()]
    finally:
        store.close()


@pytest.mark.asyncio
async def test_pin_checks_hash_off_the_event_loop(rig: Rig) -> None:
    rig.access.set_pin("4321", by="owner")
    owner = await rig.paired()
    await owner.post("/api/users", json={"name": "anna"})
    change = {"user": "anna", "profile": "standard", "pin": "0000"}
    checking = asyncio.create_task(owner.put("/api/settings/profile", json=change))
    turns = 0
    while not checking.done():  # the loop stays free while argon2 works in its thread
        turns += 1
        await asyncio.sleep(0)
    assert (await checking).status_code == 403
    # argon2 takes tens of milliseconds at least: held on the loop, it would leave only the
    # few turns the request's own awaits give
    assert turns > 100
    await owner.aclose()
