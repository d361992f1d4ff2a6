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
        """Screening, clearance and checklist decide; if allowed the session starts now."""
        items = {k: getattr(body, k) for k in CHECKLIST}
        decision = await d.flow.prepare(body.user, items, body.pain_before, who.name)
        if not decision.allowed:
            return JSONResponse(
                {"allowed": False, "reasons": list(decision.reasons)}, status_code=409
            )
        d.station.user_input(InputKind.SESSION_START, None, who.name)
        plan = d.flow.plan(body.user)
        t = plan.target
        return JSONResponse(
            {
                "allowed": True,
                "target": {"angle_deg": t.angle_deg, "hold_s": t.hold_s, "session_s": t.session_s},
                "proposal": plan.proposal,
            }
        )

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
