"""The guided session: the checklist, start (screening, clearance, checklist decide), end."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from dashboard.guard import StrictBody
from dashboard.routes.deps import (
    Dashboard,
    Reader,
    Writer,
)
from monitor.core.screening import CHECKLIST, CONTRAINDICATIONS
from monitor.core.trace import InputKind
from monitor.core.view import start_refusal
from monitor.station.journal import Journal


class StartBody(StrictBody):
    user: str = Field(min_length=1, max_length=64)
    ankle_clamps_locked: bool = False
    spotter_present: bool = False
    warm_up_done: bool = False
    pain_before: int | None = Field(default=None, ge=0, le=10)


class EndBody(StrictBody):
    pain_after: int | None = Field(default=None, ge=0, le=10)


def routes(d: Dashboard) -> APIRouter:
    """The session routes over ``d``."""
    router = APIRouter()

    @router.get("/api/checklist", tags=["session"])
    async def checklist(who: Reader) -> dict[str, Any]:
        """The screening questions and the checklist items, for the guided start."""
        return {"contraindications": CONTRAINDICATIONS, "checklist": CHECKLIST}

    @router.post("/api/session/start", tags=["session"])
    async def start(body: StartBody, who: Writer) -> JSONResponse:
        """Screening, clearance and checklist decide; if allowed the session starts now, or
        the session already running (it started itself when the user inverted) becomes the
        user's (``claimed``). Refused with the reasons (409) while a sensor has no signal or
        a session runs for someone else."""
        items = {k: getattr(body, k) for k in CHECKLIST}
        refused = start_refusal(d.live.state())
        journal = d.station.journal
        running = d.station.view().in_session
        if not refused and running:
            refused = _claim_refusal(journal, body.user)
        if refused:
            return JSONResponse({"allowed": False, "reasons": refused}, status_code=409)
        if running:
            assert journal is not None
            assert journal.session_id is not None
            session_id = journal.session_id
            decision = await d.flow.claim(body.user, session_id, items, body.pain_before, who.name)
            if decision.allowed and journal.session_id == session_id:
                journal.session_user = body.user
        else:
            decision = await d.flow.prepare(body.user, items, body.pain_before, who.name)
        if not decision.allowed:
            return JSONResponse(
                {"allowed": False, "reasons": list(decision.reasons)}, status_code=409
            )
        if not running:
            d.station.user_input(InputKind.SESSION_START, None, who.name)
        return JSONResponse({"allowed": True, "claimed": running, **_target(d, body.user)})

    @router.post("/api/session/end", tags=["session"])
    async def end(body: EndBody, who: Writer) -> dict[str, Any]:
        """End the session (it ends once the user is upright) and log the pain after."""
        journal = d.station.journal
        session_id = None if journal is None else journal.session_id
        d.station.user_input(InputKind.SESSION_END, None, who.name)
        if body.pain_after is not None:
            session_id = await d.flow.pain_after(body.pain_after, session_id, who.name)
        return {"ok": True, "session": session_id}

    return router


def _claim_refusal(journal: Journal | None, user: str) -> list[str]:
    """Why the session already running cannot become ``user``'s (empty: it can)."""
    if journal is None:
        return ["this station keeps no records: a session cannot be given a user"]
    if journal.session_id is None:
        return ["the running session is still being recorded: try again in a moment"]
    if journal.session_user not in (None, user):
        return [f"a session is already running for {journal.session_user}: end it first"]
    return []


def _target(d: Dashboard, user: str) -> dict[str, Any]:
    """The user's plan's target for this session and its proposal."""
    plan = d.flow.plan(user)
    t = plan.target
    return {
        "target": {"angle_deg": t.angle_deg, "hold_s": t.hold_s, "session_s": t.session_s},
        "proposal": plan.proposal,
    }
