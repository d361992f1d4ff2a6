"""Escalation: accept or reject an escalated alarm, and every step taken."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from dashboard.clinic.routes.deps import Actor, Name, Who, problem
from dashboard.clinic.service import UnknownStation

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub


def routes(hub: Hub) -> APIRouter:
    """The escalation routes."""
    router = APIRouter()

    @router.post("/hub/api/escalations/{station}/{alarm}/accept", tags=["escalation"])
    async def accept(station: Name, alarm: Name, who: Actor) -> dict[str, Any]:
        """I take this alarm: escalation stops."""
        if not hub.accept_escalation(station, alarm, who["name"]):
            raise problem(404, "no open escalation of that alarm")
        hub.store.escalation_step(station, alarm, "", who["name"], "accepted")
        hub.store.audit(who["name"], "escalation accepted", {"station": station, "alarm": alarm})
        return {"ok": True}

    @router.post("/hub/api/escalations/{station}/{alarm}/reject", tags=["escalation"])
    async def reject(station: Name, alarm: Name, who: Actor) -> dict[str, Any]:
        """I cannot take this alarm: it goes to the next person at once."""
        try:
            notice = hub.reject_escalation(station, alarm, who["name"])
        except UnknownStation as exc:
            raise problem(404, str(exc)) from None
        hub.store.escalation_step(station, alarm, "", who["name"], "rejected")
        hub.store.audit(who["name"], "escalation rejected", {"station": station, "alarm": alarm})
        if notice is not None:
            await hub.hand_on(notice)
        return {"ok": True, "next": None if notice is None else notice.person}

    @router.get("/hub/api/escalations", tags=["escalation"])
    async def escalation_log(who: Who) -> list[dict[str, Any]]:
        """Every escalation step."""
        return hub.store.escalations()

    return router
