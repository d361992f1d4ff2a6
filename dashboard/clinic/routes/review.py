"""Review: the recorded alarm events, the page's event log, and replaying an uploaded trace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request

from dashboard.clinic.review import MAX_REVIEW_BYTES, ReviewError, review_upload
from dashboard.clinic.routes.deps import Who, problem
from monitor.core.profiles import BUILTIN, PROFILE_NAME

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub

MAX_TRACE_BYTES = MAX_REVIEW_BYTES
TRACE_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/octet-stream"})
"""What a review upload may say it is (JSON lines)."""


def routes(hub: Hub) -> APIRouter:
    """The review routes."""
    router = APIRouter()

    @router.get("/hub/api/events", tags=["review"])
    async def events(
        who: Who, station: Annotated[str | None, Query(max_length=64)] = None
    ) -> list[dict[str, Any]]:
        """Every alarm event the hub recorded (of one station), oldest first."""
        return hub.store.station_events(station)

    @router.get("/hub/api/log", tags=["review"])
    async def event_log(
        who: Who,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        """The page's event log from the store, newest first, a page at a time: the
        stations' alarm events and the hub's own, each with its time; ``more``: an older page."""
        rows = hub.store.event_log(offset, limit + 1)
        return {"events": rows[:limit], "more": len(rows) > limit}

    @router.post("/hub/api/review", tags=["review"])
    async def review(
        request: Request,
        who: Who,
        profile: Annotated[str, Query(max_length=40, pattern=PROFILE_NAME)] = "beginner",
        age: Annotated[float | None, Query(gt=0, lt=130, allow_inf_nan=False)] = None,
    ) -> dict[str, Any]:
        """Review a recorded session: upload its trace (the body, JSON lines, at most 50 MB);
        the hub replays it through the safety core with a built-in profile chosen by name, in a
        bounded, time-limited worker process (dashboard/clinic/review.py), and returns the alarm
        events and 1 Hz theta and HR for charts."""
        if profile not in BUILTIN:
            raise problem(422, f"no profile named {profile!r} (built in: {', '.join(BUILTIN)})")
        body = await request.body()  # the boundary refused more than MAX_TRACE_BYTES already
        try:
            return await review_upload(body, BUILTIN[profile], age)
        except ReviewError as exc:
            raise problem(exc.status, exc.message) from None

    return router
