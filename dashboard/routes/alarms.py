"""Listed alarms, committed alarm events, acknowledge, silence, STOP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field

from dashboard.guard import MAX_ID, StrictBody
from dashboard.routes.deps import (
    Dashboard,
    Reader,
    Writer,
    problem,
)
from monitor.core.trace import InputKind


class AckBody(StrictBody):
    """Nothing: who acknowledges is the logged-in device, never a name in the body."""


class SilenceBody(StrictBody):
    alarm: str | None = Field(default=None, max_length=64)


def routes(d: Dashboard) -> APIRouter:
    """The alarms routes over ``d``."""
    router = APIRouter()

    @router.get("/api/alarms", tags=["alarms"])
    async def alarms(who: Reader) -> list[dict[str, Any]]:
        """The listed alarms, most urgent first."""
        result: list[dict[str, Any]] = d.live.state()["alarms"]
        return result

    @router.get("/api/alarms/events", tags=["alarms"])
    async def alarm_events(
        who: Reader, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
    ) -> list[dict[str, Any]]:
        """Committed alarm events after a sequence number."""
        return [m.data for m in d.live.catch_up(after)]

    @router.post("/api/alarms/{alarm_id}/acknowledge", tags=["alarms"])
    async def acknowledge(
        alarm_id: Annotated[str, Path(max_length=64)], who: Writer, body: AckBody | None = None
    ) -> dict[str, Any]:
        """Acknowledge an alarm: its sound stops (it sounds again in 120 s if still present).
        Recorded as done by this device's paired name."""
        if d.station.view().alarm(alarm_id) is None:
            raise problem(404, f"no listed alarm {alarm_id!r}")
        d.station.user_input(InputKind.ACKNOWLEDGE, alarm_id, who.name)
        return {"ok": True}

    @router.post("/api/alarms/silence", tags=["alarms"])
    async def silence(body: SilenceBody, who: Writer) -> dict[str, Any]:
        """Pause the sound of one alarm, or of all listed ones, for 120 s (by this device's
        paired name)."""
        if body.alarm is not None and d.station.view().alarm(body.alarm) is None:
            raise problem(404, f"no listed alarm {body.alarm!r}")
        d.station.user_input(InputKind.SILENCE, body.alarm, who.name)
        return {"ok": True}

    @router.post("/api/symptom", tags=["alarms"])
    async def symptom(who: Writer) -> dict[str, Any]:
        """STOP / "I feel unwell": raises user.symptom at once."""
        d.station.user_input(InputKind.SYMPTOM, None, who.name)
        return {"ok": True}

    return router
