"""Every dashboard endpoint, with its refusals: no session, wrong role, bad input."""

from __future__ import annotations

import pytest

from monitor.core.screening import CONTRAINDICATIONS
from monitor.core.trace import InputKind
from tests.dashboard.conftest import Rig

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

CHECKED = {"ankle_clamps_locked": True, "spotter_present": True, "warm_up_done": True}


async def test_every_api_call_needs_a_paired_session(rig: Rig) -> None:
    for path in (
        "/api/me",
        "/api/state",
        "/api/alarms",
        "/api/users",
        "/api/sessions",
        "/api/settings",
    ):
        response = await rig.app_client.get(path)
        assert response.status_code == 401, path
        assert "not paired" in response.json()["detail"]
    response = await rig.app_client.post("/api/symptom")
    assert response.status_code == 401
    assert (await rig.app_client.get("/healthz")).json()["ok"] is True


async def test_a_pairing_token_works_once(rig: Rig) -> None:
    token = rig.access.new_pairing("owner", "anna")
    first = await rig.app_client.get(f"/pair?token={token}")
    assert first.status_code == 303
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" in cookie  # on localhost
    again = await rig.app_client.get(f"/pair?token={token}")
    assert again.status_code == 403
    assert "used up or expired" in again.text


async def test_writes_need_the_csrf_header(rig: Rig) -> None:
    client = await rig.paired()
    del client.headers["X-CSRF-Token"]
    response = await client.post("/api/symptom")
    assert response.status_code == 403
    assert "X-CSRF-Token" in response.json()["detail"]
    client.headers["X-CSRF-Token"] = "forged"
    assert (await client.post("/api/symptom")).status_code == 403
    await client.aclose()


async def test_a_viewer_watches_but_cannot_act(rig: Rig) -> None:
    viewer = await rig.paired("viewer", "screen")
    assert (await viewer.get("/api/state")).status_code == 200
    response = await viewer.post("/api/symptom")
    assert response.status_code == 403
    assert "only watch" in response.json()["detail"]
    await viewer.aclose()


async def test_state_stop_acknowledge_silence(rig: Rig) -> None:
    client = await rig.paired()
    state = (await client.get("/api/state")).json()
    assert state["phase"] == "idle"
    assert state["alarms"] == []
    assert (await client.post("/api/symptom")).json() == {"ok": True}
    (alarm,) = (await client.get("/api/alarms")).json()
    assert alarm["id"] == "user.symptom"
    assert alarm["priority"] == "medium"
    assert "STOP" in alarm["message"]
    missing = await client.post("/api/alarms/hr.high/acknowledge", json={})
    assert missing.status_code == 404
    # who acknowledges is the paired device, never a name in the body
    bad = await client.post("/api/alarms/user.symptom/acknowledge", json={"by": "tom"})
    assert bad.status_code == 422
    extra = await client.post("/api/alarms/silence", json={"everything": True})
    assert extra.status_code == 422
    assert (await client.post("/api/alarms/silence", json={})).status_code == 200
    acked = await client.post("/api/alarms/user.symptom/acknowledge", json={})
    assert acked.status_code == 200
    events = (await client.get("/api/alarms/events?after=0")).json()
    assert [(e["event"], e["seq"]) for e in events] == [
        ("raised", 1),
        ("cleared", 2),
        ("silenced", 3),
        ("acknowledged", 4),
        ("resolved", 5),
    ]
    assert events[3]["message"] == "Acknowledged by owner"
    assert [e["seq"] for e in (await client.get("/api/alarms/events?after=3")).json()] == [4, 5]
    actions = rig.store.actions()
    assert ("acknowledge", "user.symptom", "owner") in [
        (a["kind"], a["alarm"], a["by"]) for a in actions
    ]
    await client.aclose()


def sensors_streaming(rig: Rig) -> None:
    """Both sensors connected, each with a fresh reading, at station time 1 s."""
    from monitor.core import gatt
    from tests.core.rig import tilt_payload

    station = rig.station
    now = [0.0]
    station.clock = lambda: now[0]
    station.on_link("tilt", True)
    station.on_link("hr", True)
    for k in range(1, 11):  # 10 a second: the estimator's median needs a few samples
        now[0] = k / 10
        station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, 0.0, (0.0, 0.0, 1.0)))
        station.tick()
    station.on_data("hr", gatt.HEART_RATE_MEASUREMENT, bytes([0x06, 70]))  # contact, 70 bpm
    station.tick()


async def test_guided_start_is_screened_and_audited(rig: Rig) -> None:
    owner = await rig.paired()
    assert (await owner.post("/api/users", json={"name": "anna", "age": 52})).status_code == 201
    bad_name = await owner.post("/api/users", json={"name": "<script>"})
    assert bad_name.status_code == 422
    # No sensor has spoken yet: refused, with what to fix, before anything else.
    lost = await owner.post("/api/session/start", json={"user": "anna", **CHECKED})
    assert lost.status_code == 409
    assert lost.json()["reasons"] == [
        "Tilt sensor: not connected: fix it before starting",
        "Heart-rate strap: not connected: fix it before starting",
    ]
    sensors_streaming(rig)
    blocked = await owner.post("/api/session/start", json={"user": "anna", **CHECKED})
    assert blocked.status_code == 409
    assert blocked.json()["reasons"][0].startswith("not screened")
    both = await owner.post(
        "/api/users/anna/screening", json={"conditions": ["hernia"], "none_apply": True}
    )
    assert both.status_code == 422
    unknown = await owner.post("/api/users/anna/screening", json={"conditions": ["flu"]})
    assert unknown.status_code == 422
    screened = await owner.post("/api/users/anna/screening", json={"conditions": ["hernia"]})
    assert screened.json() == {"contraindications": ["hernia"]}
    still = await owner.post("/api/session/start", json={"user": "anna", **CHECKED})
    assert still.status_code == 409
    not_clinician = await owner.post("/api/users/anna/clearance", json={"conditions": ["hernia"]})
    assert not_clinician.status_code == 403
    doctor = await rig.paired("clinician", "Dr Lee")
    cleared = await doctor.post(
        "/api/users/anna/clearance", json={"conditions": ["hernia"], "note": "ok"}
    )
    assert cleared.status_code == 200
    pain = await owner.post(
        "/api/session/start", json={"user": "anna", **CHECKED, "pain_before": 11}
    )
    assert pain.status_code == 422
    started = await owner.post(
        "/api/session/start", json={"user": "anna", **CHECKED, "pain_before": 4}
    )
    assert started.status_code == 200, started.text
    assert started.json()["target"] == {"angle_deg": 25.0, "hold_s": 60.0, "session_s": 120.0}
    assert rig.station.core.session.in_session
    (session,) = (await owner.get("/api/sessions?user=anna")).json()
    assert session["user"] == "anna"
    assert session["pain_before"] == 4
    ended = await owner.post("/api/session/end", json={"pain_after": 2})
    assert ended.json()["session"] == session["id"]
    detail = (await owner.get(f"/api/sessions/{session['id']}")).json()
    assert detail["pain_after"] == 2
    assert set(detail["trend"]) == {"t", "theta_deg", "hr_bpm"}
    assert (await owner.get("/api/sessions/999")).status_code == 404
    audit = [a["action"] for a in rig.store.audit_log()]
    assert audit.count("session start blocked") == 2
    assert "session start allowed" in audit
    assert "clearance recorded" in audit
    users = (await owner.get("/api/users")).json()
    assert users[0]["clearances"][0]["clinician"] == "Dr Lee"
    checklist = (await owner.get("/api/checklist")).json()
    assert set(checklist["contraindications"]) == set(CONTRAINDICATIONS)
    await owner.aclose()
    await doctor.aclose()


async def test_progress_and_unknown_users(rig: Rig) -> None:
    owner = await rig.paired()
    await owner.post("/api/users", json={"name": "anna"})
    progress = (await owner.get("/api/progress?user=anna&weeks=4")).json()
    assert len(progress["weekly"]) == 4
    assert progress["plan"]["step"] == 1
    assert progress["plan"]["target"]["angle_deg"] == 25.0
    assert (await owner.get("/api/progress?user=zoe")).status_code == 404
    assert (await owner.get("/api/sessions?user=zoe")).status_code == 404
    await owner.aclose()


async def test_limits_change_needs_a_clinician_or_the_owner_pin(rig: Rig) -> None:
    owner = await rig.paired()
    await owner.post("/api/users", json={"name": "anna"})
    change = {"user": "anna", "profile": "standard"}
    refused = await owner.put("/api/settings/profile", json=change)
    assert refused.status_code == 403
    rig.access.set_pin("4321", by="owner")
    wrong = await owner.put("/api/settings/profile", json={**change, "pin": "0000"})
    assert wrong.status_code == 403
    ok = await owner.put("/api/settings/profile", json={**change, "pin": "4321"})
    assert ok.status_code == 200
    assert ok.json()["profile"]["max_angle_deg"] == 60
    doctor = await rig.paired("clinician", "Dr Lee")
    bad = await doctor.put("/api/settings/profile", json={"user": "anna", "profile": "heroic"})
    assert bad.status_code == 422
    assert "no profile named 'heroic'" in bad.json()["detail"]
    back = await doctor.put("/api/settings/profile", json={"user": "anna", "profile": "beginner"})
    assert back.status_code == 200
    changes = [a for a in rig.store.audit_log() if a["action"] == "profile changed"]
    assert [(c["actor"], c["detail"]["to"], c["detail"]["by_pin"]) for c in changes] == [
        ("owner", "standard", True),
        ("Dr Lee", "beginner", False),
    ]
    settings = (await owner.get("/api/settings")).json()
    assert settings["pin_set"] is True
    assert "beginner" in settings["builtin_profiles"]
    await owner.aclose()
    await doctor.aclose()


async def test_only_the_owner_pairs_more_devices(rig: Rig) -> None:
    owner = await rig.paired()
    made = await owner.post("/api/pairings", json={"role": "viewer", "name": "clinic screen"})
    assert made.status_code == 200
    assert "/pair?token=" in made.json()["url"]
    user = await rig.paired("user", "anna")
    assert (await user.post("/api/pairings", json={})).status_code == 403
    assert (await owner.post("/api/pairings", json={"role": "god"})).status_code == 422
    await owner.aclose()
    await user.aclose()


async def test_logout_ends_the_session(rig: Rig) -> None:
    client = await rig.paired()
    assert (await client.post("/api/logout")).status_code == 200
    assert (await client.get("/api/me")).status_code == 401
    await client.aclose()


async def test_openapi_documents_the_api_behind_login(rig: Rig) -> None:
    for page in ("/openapi.json", "/docs", "/redoc"):
        assert (await rig.app_client.get(page)).status_code == 401, page
    client = await rig.paired("viewer", "screen")
    spec = (await client.get("/openapi.json")).json()
    assert (await client.get("/docs")).status_code == 200
    await client.aclose()
    for path in (
        "/api/state",
        "/api/stream",
        "/api/alarms/{alarm_id}/acknowledge",
        "/api/session/start",
    ):
        assert path in spec["paths"], path


async def test_the_station_input_reaches_the_core(rig: Rig) -> None:
    rig.station.user_input(InputKind.SESSION_START)
    client = await rig.paired()
    assert (await client.get("/api/state")).json()["phase"] == "upright"
    await client.aclose()


async def test_a_tilt_sensor_too_slow_for_impact_detection_shows_on_the_dashboard(
    rig: Rig,
) -> None:
    from monitor.core import gatt
    from tests.core.rig import tilt_payload

    station = rig.station
    now = [0.0]
    station.clock = lambda: now[0]  # station time by hand: 10 samples a second for 5 s
    station.on_link("tilt", True)
    for k in range(1, 51):
        now[0] = k / 10
        station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, 0.0, (0.0, 0.0, 1.0)))
        station.tick()
    client = await rig.paired("viewer", "screen")
    state = (await client.get("/api/state")).json()
    assert state["problems"]["impact detection"] == "impact detection unavailable: sensor at 10 Hz"
    (tilt,) = [s for s in state["sensors"] if s["name"] == "tilt"]
    assert tilt["rate_hz"] == 10.0
    assert (await rig.app_client.get("/healthz")).json()["ok"] is False
    for k in range(51, 751):  # 100 a second from now: after a full window, the problem goes
        now[0] = 5.0 + (k - 50) / 100
        station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, 0.0, (0.0, 0.0, 1.0)))
        station.tick()
    state = (await client.get("/api/state")).json()
    assert "impact detection" not in state["problems"]
    await client.aclose()
