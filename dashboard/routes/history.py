"""History and progress: sessions, one session's trend and events, weekly progress."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from dashboard.live import alarm_message
from dashboard.routes.deps import (
    Dashboard,
    Id,
    Reader,
    problem,
)
from monitor.core.profiles import ProfileError, is_name
from monitor.core.view import Limits
from monitor.station.flow import Plan


def routes(d: Dashboard) -> APIRouter:
    """The history routes over ``d``."""
    router = APIRouter()

    @router.get("/api/sessions", tags=["history"])
    async def sessions(
        who: Reader,
        user: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Sessions, newest first."""
        store = d.flow.store
        if user is None:
            rows = store.sessions(limit=limit)
        else:
            found = store.user(user)
            if found is None:
                raise problem(404, f"no user named {user!r}")
            rows = store.sessions(where="s.user_id = ?", args=(found["id"],), limit=limit)
        for row in rows:
            row["max_theta_deg"] = store.session_max_theta(row["id"])
        return rows

    @router.get("/api/sessions/{session_id}", tags=["history"])
    async def session(session_id: Id, who: Reader) -> dict[str, Any]:
        """One session: its row, 1 Hz theta and HR, alarm events, outages."""
        return _session(d, session_id)

    @router.get("/api/progress", tags=["history"])
    async def progress(
        who: Reader,
        user: Annotated[str, Query(max_length=64)],
        weeks: Annotated[int, Query(ge=1, le=52)] = 8,
    ) -> dict[str, Any]:
        """Weekly inverted minutes, days per week, pain before/after, milestones, the plan."""
        store = d.flow.store
        found = store.user(user)
        if found is None:
            raise problem(404, f"no user named {user!r}")
        rows = store.sessions(where="s.user_id = ?", args=(found["id"],))
        plan = d.flow.plan(user)
        return {
            "weekly": _weekly(rows, weeks, datetime.now().astimezone()),
            "pain": _pain(rows),
            "milestones": list(plan.milestones),
            "sessions": plan.sessions,
            "plan": _plan_data(plan),
        }

    return router


def _limits_of(d: Dashboard, profile: str) -> Limits:
    """The limits a session ran under: its stored profile's, else (the station's own
    profile, or a stored profile since removed) the station's live limits."""
    if profile != d.station.view().profile.name and is_name(profile):
        try:
            p = d.flow.profile(profile)
        except ProfileError:  # a stored profile since removed: the station's own limits
            pass
        else:
            return Limits(
                p.max_angle_deg,
                p.max_hold_s,
                p.max_session_inverted_s,
                p.hr_high_bpm,
                p.hr_low_bpm,
            )
    return d.live.limits()


def _weekly(rows: list[dict[str, Any]], weeks: int, now: datetime) -> list[dict[str, Any]]:
    """Inverted minutes, days and sessions in each of the last ``weeks`` weeks, oldest first."""
    weekly = []
    for w in range(weeks - 1, -1, -1):
        start, end_ = now - timedelta(days=7 * (w + 1)), now - timedelta(days=7 * w)
        in_week = [r for r in rows if start <= datetime.fromisoformat(r["started_at"]) < end_]
        weekly.append(
            {
                "week_from": start.date().isoformat(),
                "inverted_min": round(sum(r["inverted_s"] for r in in_week) / 60, 1),
                "days": len({datetime.fromisoformat(r["started_at"]).date() for r in in_week}),
                "sessions": len(in_week),
            }
        )
    return weekly


def _pain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pain before and after each session, oldest first."""
    return [
        {
            "session": r["id"],
            "at": r["started_at"],
            "before": r["pain_before"],
            "after": r["pain_after"],
        }
        for r in reversed(rows)
    ]


def _plan_data(plan: Plan) -> dict[str, Any]:
    """The user's plan: its step (from 1), target, proposal, notes and days this week."""
    return {
        "step": plan.step + 1,
        "target": {
            "angle_deg": plan.target.angle_deg,
            "hold_s": plan.target.hold_s,
            "session_s": plan.target.session_s,
        },
        "proposal": plan.proposal,
        "notes": list(plan.notes),
        "days_this_week": plan.days_this_week,
    }


def _session(d: Dashboard, session_id: int) -> dict[str, Any]:
    """``GET /api/sessions/{id}``: the session's row, trend, events (under its limits), gaps."""
    store = d.flow.store
    row = store.session(session_id)
    if row is None:
        raise problem(404, f"no session {session_id}")
    trends = store.trends(session_id)
    limits = _limits_of(d, str(row["profile"]))
    return {
        **row,
        "trend": {
            "t": [r[1] for r in trends],
            "theta_deg": [r[2] for r in trends],
            "hr_bpm": [r[3] for r in trends],
        },
        "events": [alarm_message(e, limits).data for e in store.session_events(session_id)],
        "gaps": store.gaps(session_id),
    }
