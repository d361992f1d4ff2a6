"""The hub's page API: logins, roles, the merged view, escalation, people, audit, review."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from dashboard.auth import HASHING
from dashboard.clinic.app import COOKIE, MAX_TRACE_BYTES, create_hub_app, csv_cell, hash_password
from dashboard.clinic.service import Hub
from dashboard.clinic.settings import HubSettings
from dashboard.clinic.store import HubStore
from dashboard.limiter import Limiter
from tests.core.rig import scenario_trace

pytestmark = [pytest.mark.timeout(60)]
PASSWORD = "correct horse battery"


@pytest_asyncio.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    store = HubStore.open(tmp_path / "hub.db")
    store.add_person("ada", "admin", hash_password(PASSWORD))
    store.add_person("pat", "therapist", hash_password(PASSWORD), "json://127.0.0.1:9/x", 1)
    store.add_person("vic", "viewer", hash_password(PASSWORD))
    hub = Hub(HubSettings(), store)
    yield hub
    store.close()


async def client(hub: Hub, name: str | None = None) -> httpx.AsyncClient:
    c = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_hub_app(hub)), base_url="http://127.0.0.1"
    )
    if name is not None:
        response = await c.post("/hub/api/login", json={"name": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        # a Secure cookie (localhost counts as secure for browsers): httpx needs it set by hand
        c.cookies.set(COOKIE, response.cookies[COOKIE])
        c.headers["X-CSRF-Token"] = response.json()["csrf"]
    return c


@pytest.mark.asyncio
async def test_login_is_required_and_wrong_passwords_are_refused_and_audited(hub: Hub) -> None:
    anon = await client(hub)
    assert (await anon.get("/hub/api/snapshot")).status_code == 401
    wrong = await anon.post("/hub/api/login", json={"name": "pat", "password": "nope"})
    assert wrong.status_code == 401
    nobody = await anon.post("/hub/api/login", json={"name": "zed", "password": PASSWORD})
    assert nobody.status_code == 401
    pat = await client(hub, "pat")
    assert (await pat.get("/hub/api/me")).json()["role"] == "therapist"
    actions = [(a["actor"], a["action"]) for a in hub.store.audit_log()]
    assert ("pat", "login refused") in actions
    assert ("pat", "logged in") in actions
    assert (await pat.post("/hub/api/logout")).status_code == 200
    assert (await pat.get("/hub/api/me")).status_code == 401
    await anon.aclose()
    await pat.aclose()


@pytest.mark.asyncio
async def test_the_snapshot_shows_stations_as_tiles_and_the_merged_alarms(hub: Hub) -> None:
    hub.core.state(
        0.0,
        "home",
        {
            "phase": "inverted",
            "theta_deg": 25.0,
            "hr_bpm": 71,
            "alarms": [
                {
                    "id": "inversion.hold_limit",
                    "priority": "medium",
                    "message": "Inverted for 62 s (limit 60 s)",
                    "acknowledged": False,
                }
            ],
        },
    )
    hub.core.state(0.0, "clinic2", {"phase": "upright", "alarms": []})
    vic = await client(hub, "vic")
    snap = (await vic.get("/hub/api/snapshot")).json()
    tiles = {t["station"]: t for t in snap["stations"]}
    assert tiles["home"]["highest_priority"] == "medium"
    assert tiles["home"]["theta_deg"] == 25.0
    assert tiles["clinic2"]["highest_priority"] is None
    assert snap["alarms"][0]["message"] == "Inverted for 62 s (limit 60 s)"
    refused = await vic.post("/hub/api/stations/home/silence", json={})
    assert refused.status_code == 403  # viewers watch
    await vic.aclose()


@pytest.mark.asyncio
async def test_commands_need_a_broker_and_a_known_station(hub: Hub) -> None:
    hub.core.state(0.0, "home", {"phase": "upright", "alarms": []})
    pat = await client(hub, "pat")
    missing = await pat.post("/hub/api/stations/nowhere/alarms/hr.high/acknowledge")
    assert missing.status_code == 404
    offline = await pat.post("/hub/api/stations/home/alarms/hr.high/acknowledge")
    assert offline.status_code == 503
    assert "not connected" in offline.json()["detail"]
    del pat.headers["X-CSRF-Token"]
    assert (await pat.post("/hub/api/stations/home/silence", json={})).status_code == 403
    await pat.aclose()


@pytest.mark.asyncio
async def test_escalation_accept_and_reject_are_recorded(hub: Hub) -> None:
    alarm = {
        "station": "home",
        "id": "hr.high",
        "priority": "high",
        "acknowledged": False,
        "message": "HR 160 > 150",
    }
    hub.escalation.due(0.0, [alarm], ["pat"])
    pat = await client(hub, "pat")
    accepted = await pat.post("/hub/api/escalations/home/hr.high/accept")
    assert accepted.status_code == 200
    again = await pat.post("/hub/api/escalations/home/hr.high/accept")
    assert again.status_code == 404
    steps = [(e["person"], e["step"]) for e in (await pat.get("/hub/api/escalations")).json()]
    assert ("pat", "accepted") in steps
    await pat.aclose()


@pytest.mark.asyncio
async def test_people_are_added_by_admins_with_hashed_passwords(hub: Hub) -> None:
    pat = await client(hub, "pat")
    refused = await pat.post(
        "/hub/api/people", json={"name": "sam", "role": "therapist", "password": "x" * 12}
    )
    assert refused.status_code == 403
    ada = await client(hub, "ada")
    short = await ada.post(
        "/hub/api/people", json={"name": "sam", "role": "therapist", "password": "short"}
    )
    assert short.status_code == 422
    made = await ada.post(
        "/hub/api/people", json={"name": "sam", "role": "therapist", "password": "long enough pw"}
    )
    assert made.status_code == 201
    same = await ada.post(
        "/hub/api/people", json={"name": "sam", "role": "viewer", "password": "long enough pw"}
    )
    assert same.status_code == 409  # a clear refusal, not the store's 503
    stored = hub.store.person("sam")
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2")
    people = (await ada.get("/hub/api/people")).json()
    assert all("password_hash" not in p for p in people)
    await pat.aclose()
    await ada.aclose()


@pytest.mark.asyncio
async def test_the_audit_log_is_for_admins_and_exports_as_csv(hub: Hub) -> None:
    pat = await client(hub, "pat")
    assert (await pat.get("/hub/api/audit")).status_code == 403
    ada = await client(hub, "ada")
    response = await ada.get("/hub/api/audit.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["at", "actor", "action", "detail"]
    assert ["pat", "logged in"] in [r[1:3] for r in rows]
    await pat.aclose()
    await ada.aclose()


class FakeClock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.asyncio
async def test_logins_are_rate_limited_and_do_not_tell_which_names_exist(hub: Hub) -> None:
    clock = FakeClock()
    app = create_hub_app(hub, Limiter(free=3, base_s=10.0), clock)
    anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
    before = HASHING.verified
    nobody = await anon.post("/hub/api/login", json={"name": "zed", "password": PASSWORD})
    assert HASHING.verified == before + 1  # an unknown name costs one argon2 like a known one
    wrong = await anon.post("/hub/api/login", json={"name": "pat", "password": "nope"})
    assert HASHING.verified == before + 2
    assert (nobody.status_code, nobody.json()) == (wrong.status_code, wrong.json())
    for _ in range(2):
        assert (
            await anon.post("/hub/api/login", json={"name": "pat", "password": "x"})
        ).status_code == 401
    limited = await anon.post("/hub/api/login", json={"name": "pat", "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "10"
    assert HASHING.verified == before + 4  # refused before hashing
    clock.t += 10.0
    ok = await anon.post("/hub/api/login", json={"name": "pat", "password": PASSWORD})
    assert ok.status_code == 200
    await anon.aclose()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    for cell in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'):
        assert csv_cell(cell) == "'" + cell
    for cell in ("pat", "2026-12-02T10:00:00+00:00", "", "a=b", "1"):
        assert csv_cell(cell) == cell
    assert csv_cell(None) == ""


@pytest.mark.asyncio
async def test_planted_formulas_in_the_audit_log_are_exported_inert(hub: Hub) -> None:
    anon = await client(hub)
    planted = ['=HYPERLINK("http://evil.example","x")', "+cmd", "-2+3", "@SUM(A1)", "\tx"]
    for name in planted:
        await anon.post("/hub/api/login", json={"name": name, "password": "whatever"})
    ada = await client(hub, "ada")
    rows = list(csv.reader(io.StringIO((await ada.get("/hub/api/audit.csv")).text)))
    refused = [r[1] for r in rows if r[2] == "login refused"]
    assert refused == ["'" + name for name in planted]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)
    await anon.aclose()
    await ada.aclose()


@pytest.mark.asyncio
async def test_reject_is_only_for_known_stations(hub: Hub) -> None:
    pat = await client(hub, "pat")
    made_up = await pat.post("/hub/api/escalations/nowhere/hr.high/reject")
    assert made_up.status_code == 404
    assert hub.store.escalations() == []
    hub.core.state(0.0, "home", {"phase": "upright", "alarms": []})
    assert (await pat.post("/hub/api/escalations/home/hr.high/reject")).status_code == 200
    await pat.aclose()


@pytest.mark.asyncio
async def test_the_hub_boundary_refuses_before_login_and_hides_its_docs(hub: Hub) -> None:
    anon = await client(hub)
    big = await anon.post(
        "/hub/api/review",
        content=b"x" * 10,
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Length": str(MAX_TRACE_BYTES + 1),
        },
    )
    assert big.status_code == 413
    assert (
        await anon.post("/hub/api/login", content=b"{}", headers={"Content-Type": "text/plain"})
    ).status_code == 415
    assert (await anon.get("/hub/api/me", headers={"Host": "evil.example"})).status_code == 421
    for page in ("/openapi.json", "/docs", "/redoc"):
        assert (await anon.get(page)).status_code == 401
    assert anon.headers.get("X-CSRF-Token") is None
    answer = await anon.get("/hub/api/me")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["referrer-policy"] == "no-referrer"
    vic = await client(hub, "vic")
    assert (await vic.get("/openapi.json")).json()["info"]["title"] == "Spotter clinic hub"
    for profile in ("/etc/passwd", "../hub.db", "heroic"):
        bad = await vic.post(
            f"/hub/api/review?profile={profile}",
            content=b"{}",
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert bad.status_code == 422
        assert "root:" not in bad.text
    assert (
        await vic.post(
            "/hub/api/review?age=1e400",
            content=b"{}",
            headers={"Content-Type": "application/x-ndjson"},
        )
    ).status_code == 422
    assert (await vic.post("/hub/api/logout")).status_code == 200  # a viewer logs out
    assert (await vic.get("/hub/api/me")).status_code == 401
    await anon.aclose()
    await vic.aclose()


@pytest.fixture(scope="module")
def symptom_trace() -> bytes:
    return scenario_trace("symptom")


@pytest.mark.asyncio
async def test_reviewing_an_uploaded_trace_replays_it(hub: Hub, symptom_trace: bytes) -> None:
    trace = symptom_trace
    vic = await client(hub, "vic")
    vic.headers["Content-Type"] = "application/x-ndjson"
    result = (await vic.post("/hub/api/review", content=trace)).json()
    assert [e["event"] for e in result["events"]][:2] == ["raised", "escalated"]
    assert result["events"][0]["id"] == "user.symptom"
    assert len(result["trend"]["t"]) >= 90
    broken = await vic.post("/hub/api/review", content=b'{"spotter_trace": 1, "sensors": {}}\n')
    assert broken.status_code == 400
    assert "upload:1:" in broken.json()["detail"]
    bad_profile = await vic.post("/hub/api/review?profile=heroic", content=trace)
    assert bad_profile.status_code == 422
    await vic.aclose()


@pytest.mark.broker
@pytest.mark.timeout(90)
def test_bench_hub_reports_what_it_measured(tmp_path: Path) -> None:
    import pstats

    from dashboard.clinic.bench import PROFILE_TOP, bench_hub

    report = bench_hub(seconds=9, stations=5, profile=tmp_path / "hub.pstats")
    assert report["stations"] == 5
    assert report["messages_to_hub_per_s"] > 0
    assert report["alarm_events_measured"] >= 1
    latency = report["alarm_latency_ms"]
    assert 0 <= latency["p50"] <= latency["p99"] <= latency["max"]
    profile = report["profile"]  # asked for: the hub's own functions, by own time
    assert profile["tool"] == "cProfile"
    top = profile["top"]
    assert len(top) == PROFILE_TOP
    assert [r["own_s"] for r in top] == sorted((r["own_s"] for r in top), reverse=True)
    assert all(0 <= r["own_s"] <= r["cum_s"] + 1e-4 and r["calls"] >= 1 for r in top)
    assert all("epoll" not in r["function"] for r in top)  # the idle wait is apart
    assert profile["idle_s"] > 0
    stats = pstats.Stats(str(tmp_path / "hub.pstats")).stats  # type: ignore[attr-defined]
    assert any(name == "_handle_batch" for (_, _, name) in stats)  # the hub itself profiled
    assert "profile" not in bench_hub(seconds=8, stations=2)  # only when asked


@pytest.mark.asyncio
async def test_the_snapshot_counts_the_escalation_list_without_asking_the_store_each_time(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.clinic.service import PEOPLE_REFRESH_S

    clock = [100.0]
    monkeypatch.setattr(hub, "now", lambda: clock[0])
    reads = []
    listing = hub.store.escalation_list

    def counted() -> list[dict[str, Any]]:
        reads.append(clock[0])
        return listing()

    monkeypatch.setattr(hub.store, "escalation_list", counted)
    assert hub.snapshot()["escalation_people"] == 1  # pat
    for _ in range(20):
        assert hub.snapshot()["escalation_people"] == 1
    assert reads == [100.0]  # once, not per snapshot
    ada = await client(hub, "ada")
    made = await ada.post(
        "/hub/api/people",
        json={
            "name": "sam",
            "role": "therapist",
            "password": "long enough pw",
            "push_url": "json://127.0.0.1:9/sam",
            "escalation_rank": 2,
        },
    )
    assert made.status_code == 201
    assert hub.snapshot()["escalation_people"] == 2  # a change here shows at once
    hub.store.add_person("kim", "therapist", hash_password(PASSWORD), "json://127.0.0.1:9/k", 3)
    assert hub.snapshot()["escalation_people"] == 2  # another replica's: not yet...
    clock[0] += PEOPLE_REFRESH_S
    assert hub.snapshot()["escalation_people"] == 3  # ...but within PEOPLE_REFRESH_S
    assert len(reads) == 3
    await ada.aclose()
