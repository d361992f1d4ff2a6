"""The session flow: screening, clearance, checklist, progression, pain; audited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.core.engine import SafetyCore
from monitor.core.profiles import BUILTIN
from monitor.core.screening import CONTRAINDICATIONS
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.station.flow import LADDER, FlowError, SessionFlow, plan_for, screen
from monitor.station.journal import Journal
from monitor.store.station_store import Store

pytestmark = pytest.mark.timeout(30)

ALL_CLEAR = dict.fromkeys(CONTRAINDICATIONS, False)
CHECKED = {"ankle_clamps_locked": True, "spotter_present": True, "warm_up_done": True}


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[SessionFlow]:
    store = Store.open(tmp_path / "spotter.db")
    flow = SessionFlow(store, "home")
    asyncio.run(flow.add_user("anna", age=52, by="owner"))
    yield flow
    store.close()


def decisions(flow: SessionFlow) -> list[tuple[str, str, list[str]]]:
    return [
        (a["actor"], a["action"], a["detail"].get("reasons", []))
        for a in flow.store.audit_log()
        if a["action"].startswith("session start")
    ]


def test_the_screening_lists_every_contraindication_of_the_spec() -> None:
    assert len(CONTRAINDICATIONS) == 14
    assert "pregnancy" in CONTRAINDICATIONS
    assert "blood_thinners" in CONTRAINDICATIONS
    with pytest.raises(FlowError, match="unanswered"):
        screen({"pregnancy": False})
    assert screen({**ALL_CLEAR, "hernia": True}) == ["hernia"]


@pytest.mark.asyncio
async def test_an_unscreened_user_is_blocked_and_the_decision_audited(flow: SessionFlow) -> None:
    decision = await flow.prepare("anna", CHECKED, 3, by="tom")
    assert not decision.allowed
    assert decision.reasons[0].startswith("not screened")
    assert decisions(flow) == [("tom", "session start blocked", list(decision.reasons))]
    assert flow.store.take_prepared("home", 60) is None


@pytest.mark.asyncio
async def test_a_contraindication_blocks_until_a_clearance_covers_it(flow: SessionFlow) -> None:
    await flow.record_screening(
        "anna", {**ALL_CLEAR, "eye_disease": True, "hernia": True}, by="anna"
    )
    blocked = await flow.prepare("anna", CHECKED, None, by="anna")
    assert not blocked.allowed
    assert "glaucoma or other eye disease, hernia" in blocked.reasons[0]
    await flow.record_clearance("anna", "Dr Lee", ["eye_disease"], note="30° at most")
    still = await flow.prepare("anna", CHECKED, None, by="anna")
    assert not still.allowed
    assert "hernia" in still.reasons[0]
    assert "eye disease" not in still.reasons[0]
    await flow.record_clearance("anna", "Dr Lee", ["hernia"])
    assert (await flow.prepare("anna", CHECKED, 5, by="anna")).allowed
    actions = [a["action"] for a in flow.store.audit_log()]
    assert actions.count("clearance recorded") == 2
    assert actions.count("session start blocked") == 2
    assert actions.count("session start allowed") == 1
    prepared = flow.store.take_prepared("home", 60)
    assert prepared is not None
    assert prepared["pain_before"] == 5


@pytest.mark.asyncio
async def test_the_checklist_needs_clamps_and_warm_up_and_a_spotter_for_beginners(
    flow: SessionFlow,
) -> None:
    await flow.record_screening("anna", ALL_CLEAR, by="anna")
    decision = await flow.prepare("anna", {"ankle_clamps_locked": False}, None, by="anna")
    assert set(decision.reasons) == {
        "lock the ankle clamps",
        "warm up first",
        "the beginner profile needs a spotter present",
    }
    await flow.add_user("ben", profile="standard", by="owner")
    await flow.record_screening("ben", ALL_CLEAR, by="ben")
    alone = {"ankle_clamps_locked": True, "warm_up_done": True}
    assert (
        await flow.prepare("ben", alone, None, by="ben")
    ).allowed  # standard: spotter advised only


@pytest.mark.asyncio
async def test_bad_requests_are_refused_with_a_reason(flow: SessionFlow) -> None:
    with pytest.raises(FlowError, match="no user named 'zoe'"):
        await flow.prepare("zoe", CHECKED, None, by="x")
    with pytest.raises(FlowError, match="outside 0-10"):
        await flow.prepare("anna", CHECKED, 11, by="x")
    with pytest.raises(FlowError, match="unknown condition"):
        await flow.record_clearance("anna", "Dr Lee", ["vertigo"])
    with pytest.raises(FlowError, match="role must be"):
        await flow.add_user("carl", role="admin")
    with pytest.raises(FlowError, match=r"UNIQUE"):
        await flow.add_user("anna")


@pytest.mark.asyncio
async def test_a_prepared_start_becomes_the_next_session_with_its_user(flow: SessionFlow) -> None:
    await flow.record_screening("anna", ALL_CLEAR, by="anna")
    assert (await flow.prepare("anna", CHECKED, 4, by="anna")).allowed
    core = SafetyCore({"tilt": SensorSpec(SensorKind.SPOTTER_TILT)}, BUILTIN["beginner"])
    journal = Journal(flow.store, "home", core)
    core.session.start(1.0)
    journal.opened(core.drain_phase_changes())
    (session,) = flow.store.sessions()
    assert session["user"] == "anna"
    assert session["pain_before"] == 4
    assert session["checklist"] == CHECKED
    await flow.pain_after(2)
    assert flow.store.session(session["id"])["pain_after"] == 2  # type: ignore[index]


def test_the_plan_starts_mild_and_raises_at_most_one_step_a_week() -> None:
    now = datetime.fromisoformat("2026-11-22T10:00:00+01:00")
    first = plan_for(0, None, [], BUILTIN["beginner"], now)
    assert (first.target.angle_deg, first.target.hold_s) == (25, 60)  # 20-30° for 1-2 minutes
    assert first.proposal is None  # no sessions yet
    calm = [
        {
            "started_at": (now - timedelta(days=d)).isoformat(),
            "alarms_raised": 0,
            "pain_before": 5,
            "pain_after": 3,
        }
        for d in (1, 3, 5)
    ]
    ready = plan_for(0, None, calm, BUILTIN["beginner"], now)
    assert ready.proposal is not None
    assert ready.proposal.startswith("raise to step 2")
    assert ready.days_this_week == 3
    assert ready.pain_change == -2
    raised_2_days_ago = now - timedelta(days=2)
    again = plan_for(1, raised_2_days_ago, calm, BUILTIN["beginner"], now)
    assert again.proposal is None
    assert any("next step possible from" in n for n in again.notes)
    worse = [{**s, "pain_after": 7} for s in calm]
    assert plan_for(0, None, worse, BUILTIN["beginner"], now).proposal is None
    top = plan_for(len(LADDER) - 1, None, calm, BUILTIN["beginner"], now)
    assert top.target.angle_deg == 30  # never above the profile's own limit


def test_milestones_at_1_4_and_10_sessions() -> None:
    now = datetime.fromisoformat("2026-11-22T10:00:00+01:00")
    sessions = [{"started_at": (now - timedelta(days=d)).isoformat()} for d in range(10)]
    assert len(plan_for(0, None, sessions[:1], BUILTIN["standard"], now).milestones) == 1
    assert len(plan_for(0, None, sessions[:4], BUILTIN["standard"], now).milestones) == 2
    assert len(plan_for(0, None, sessions, BUILTIN["standard"], now).milestones) == 3


@pytest.mark.asyncio
async def test_raising_needs_a_proposal_and_is_audited(flow: SessionFlow) -> None:
    with pytest.raises(FlowError, match="no raise proposed"):
        await flow.raise_step("anna", by="Dr Lee")
