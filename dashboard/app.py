"""The dashboard's HTTP API (FastAPI): station state, a live stream, alarms, the guided
session, history and progress, settings. Served by ``spotter run`` in the station's own
event loop, so a command reaches the safety core directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path as PathLib
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from pydantic import Field

from dashboard.auth import COOKIE, CSRF_HEADER, Access, HasherBusy, Login, TooManyTries
from dashboard.guard import LOOPBACK_HOSTS, MAX_ID, Policy, StrictBody, harden
from dashboard.live import LiveHub, Message, alarm_message, next_message, sse
from monitor.core.profiles import BUILTIN, MAX_PROFILE_BYTES, PROFILE_NAME, ProfileError
from monitor.core.screening import CHECKLIST, CONTRAINDICATIONS
from monitor.core.trace import InputKind
from monitor.station.flow import FlowError, SessionFlow
from monitor.station.station import Station
from monitor.store.database import StoreError
from monitor.store.station_store import Store

STATIC = PathLib(__file__).parent / "static"


@dataclass
class Dashboard:
    """Everything the API works on."""

    station: Station
    flow: SessionFlow
    live: LiveHub
    access: Access
    name: str
    config_summary: dict[str, Any]
    hosts: frozenset[str] = field(default=LOOPBACK_HOSTS)
    """The names this server answers to in the Host header (add the LAN's with --lan)."""


_Body = StrictBody
ProfileName = Annotated[str, Field(min_length=1, max_length=40, pattern=PROFILE_NAME)]
Pin = Annotated[str, Field(min_length=1, max_length=12, pattern=r"^[0-9]+$")]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class AckBody(_Body):
    """Nothing: who acknowledges is the logged-in device, never a name in the body."""


class SilenceBody(_Body):
    alarm: str | None = Field(default=None, max_length=64)


class StartBody(_Body):
    user: str = Field(min_length=1, max_length=64)
    ankle_clamps_locked: bool = False
    spotter_present: bool = False
    warm_up_done: bool = False
    pain_before: int | None = Field(default=None, ge=0, le=10)


class EndBody(_Body):
    pain_after: int | None = Field(default=None, ge=0, le=10)


class UserBody(_Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w .'-]+$")
    profile: ProfileName = "beginner"
    age: float | None = Field(default=None, gt=0, lt=130)
    role: Literal["user", "clinician", "owner"] = "user"


class ScreeningBody(_Body):
    conditions: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=32, description="Conditions that apply."
    )
    none_apply: bool = False


class ClearanceBody(_Body):
    conditions: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=32)
    note: str = Field(default="", max_length=500)


class ProfileBody(_Body):
    user: str = Field(min_length=1, max_length=64)
    profile: ProfileName
    pin: Pin | None = None


class StoredProfileBody(_Body):
    name: ProfileName
    toml: str = Field(min_length=1, max_length=MAX_PROFILE_BYTES)
    pin: Pin | None = None


class PinBody(_Body):
    old: Pin | None = Field(default=None, description="The current PIN (when one is set).")
    new: Annotated[str, Field(pattern=r"^[0-9]{4,12}$")]


class PairBody(_Body):
    role: Literal["viewer", "user", "clinician", "owner"] = "viewer"
    name: str = Field(default="device", min_length=1, max_length=64)


def _problem(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


async def _login(request: Request) -> Login:
    d: Dashboard = request.app.state.dashboard
    who = d.access.login(request.cookies.get(COOKIE))
    if who is None:
        raise _problem(401, "not paired: open the pairing URL that spotter run printed")
    return who


async def _writer(request: Request, who: Annotated[Login, Depends(_login)]) -> Login:
    d: Dashboard = request.app.state.dashboard
    if not d.access.csrf_ok(who, request.headers.get(CSRF_HEADER)):
        raise _problem(403, f"missing or wrong {CSRF_HEADER} header")
    if who.role == "viewer":
        raise _problem(403, "this device may only watch (paired as a viewer)")
    return who


async def _csrf(request: Request, who: Annotated[Login, Depends(_login)]) -> Login:
    d: Dashboard = request.app.state.dashboard
    if not d.access.csrf_ok(who, request.headers.get(CSRF_HEADER)):
        raise _problem(403, f"missing or wrong {CSRF_HEADER} header")
    return who


def _client(request: Request) -> str:
    return "unknown" if request.client is None else request.client.host


async def _owner_pin(d: Dashboard, who: Login, pin: str | None, request: Request) -> None:
    """Clinicians pass; anyone else needs the owner's PIN. A wrong PIN and a missing one get
    the same 403; too many wrong ones a 429 before any hashing."""
    if who.role == "clinician":
        return
    if not await d.access.check_pin(pin, _client(request)):
        raise _problem(403, "this needs the clinician role or the owner's PIN")


Reader = Annotated[Login, Depends(_login)]
"""Any paired device."""
Writer = Annotated[Login, Depends(_writer)]
"""A paired device that may act, sending the session's CSRF token."""
Sender = Annotated[Login, Depends(_csrf)]
"""Any paired device sending the session's CSRF token (a viewer too: to log out)."""


def create_app(d: Dashboard) -> FastAPI:
    """The dashboard application over one station."""
    app = FastAPI(
        title="Spotter dashboard",
        version="1",
        description="A station's live state, alarms, guided sessions and history. Every call "
        "needs a paired session cookie; every write also the X-CSRF-Token header.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    app.state.dashboard = d
    harden(app, Policy(hosts=d.hosts), _login)

    @app.exception_handler(TooManyTries)
    async def too_many(_: Request, exc: TooManyTries) -> JSONResponse:
        wait = str(max(1, round(exc.wait_s)))
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": wait})

    @app.exception_handler(HasherBusy)
    async def busy(_: Request, exc: HasherBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "1"})

    @app.exception_handler(FlowError)
    async def flow_error(_: Request, exc: FlowError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(ProfileError)
    async def profile_error(_: Request, exc: ProfileError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    # -- pairing and health ----------------------------------------------------------------

    @app.get("/healthz", tags=["station"])
    async def healthz() -> dict[str, Any]:
        """Liveness without login: the station's clock and whether it has problems."""
        return {"ok": not d.station.problems, "t": d.station.core.t}

    @app.get("/pair", tags=["access"], response_class=RedirectResponse)
    async def pair(request: Request, token: Annotated[str, Query(max_length=100)]) -> Response:
        """Spend a one-time pairing token: sets the session cookie and opens the dashboard."""
        paired = await d.access.pair(token)
        if paired is None:
            return HTMLResponse(
                "<h1>This pairing link is used up or expired.</h1>"
                "<p>Ask the station for a new one (spotter run prints it).</p>",
                status_code=403,
            )
        cookie, _ = paired
        response = RedirectResponse("/", status_code=303)
        secure = request.url.scheme == "https" or request.url.hostname in ("127.0.0.1", "localhost")
        response.set_cookie(
            COOKIE, cookie, max_age=30 * 86400, httponly=True, samesite="strict", secure=secure
        )
        return response

    @app.get("/api/me", tags=["access"])
    async def me(who: Reader) -> dict[str, Any]:
        """Who this device is, the CSRF token for writes, the station's name."""
        return {"role": who.role, "name": who.name, "csrf": who.csrf, "station": d.name}

    @app.post("/api/pairings", tags=["access"])
    async def new_pairing(body: PairBody, request: Request, who: Writer) -> dict[str, Any]:
        """Pair another device (owners only): a one-time URL."""
        if who.role != "owner":
            raise _problem(403, "only the owner pairs devices")
        token = await d.access.pairing(body.role, body.name)
        base = str(request.base_url).rstrip("/")
        return {"url": f"{base}/pair?token={token}", "role": body.role, "expires_in_s": 900}

    @app.post("/api/logout", tags=["access"])
    async def logout(request: Request, who: Sender) -> Response:
        """End this device's session (any role, a viewer too); it is deleted at the station."""
        await d.access.logout(request.cookies.get(COOKIE, ""))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE)
        return response

    # -- live ------------------------------------------------------------------------------

    @app.get("/api/state", tags=["station"])
    async def state(who: Reader) -> dict[str, Any]:
        """Phase, theta, heart rate, timers against limits, sensors, listed alarms."""
        return d.live.state()

    @app.get("/api/stream", tags=["station"], response_class=EventSourceResponse)
    async def stream(
        request: Request,
        who: Reader,
        after: Annotated[
            int | None, Query(ge=0, le=MAX_ID, description="Resume after this alarm seq.")
        ] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: ``alarm`` (id = the store's sequence number; reconnect with
        Last-Event-ID to catch up, none missed or twice) and ``state`` every second."""
        last = request.headers.get("last-event-id")
        header = int(last) if last and last.isdigit() and len(last) <= 15 else None
        # A browser's own reconnect of a stream opened with ?after=N sends Last-Event-ID too:
        # the later of the two is where this client really is.
        known = [n for n in (after, header) if n is not None]
        resume = max(known) if known else None
        client = d.live.connect()
        # The catch-up reads the store, which may already hold events whose commit callback
        # has not reached the fan-out yet: they then arrive on the queue too. Each alarm goes
        # out once, by its sequence number.
        sent = resume or 0
        try:
            if resume is not None:
                for missed in d.live.catch_up(resume):
                    sent = missed.id or sent
                    yield sse(missed)
            yield sse(Message("state", d.live.state()))
            while not client.dropped.is_set():
                message = await next_message(client)
                if message is not None and message.id is not None:
                    if message.id <= sent:
                        continue
                    sent = message.id
                if message is not None:
                    yield sse(message)
                elif await request.is_disconnected():
                    return
        finally:
            d.live.disconnect(client)

    # -- alarms ----------------------------------------------------------------------------

    @app.get("/api/alarms", tags=["alarms"])
    async def alarms(who: Reader) -> list[dict[str, Any]]:
        """The listed alarms, most urgent first."""
        result: list[dict[str, Any]] = d.live.state()["alarms"]
        return result

    @app.get("/api/alarms/events", tags=["alarms"])
    async def alarm_events(
        who: Reader, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
    ) -> list[dict[str, Any]]:
        """Committed alarm events after a sequence number."""
        return [m.data for m in d.live.catch_up(after)]

    @app.post("/api/alarms/{alarm_id}/acknowledge", tags=["alarms"])
    async def acknowledge(
        alarm_id: Annotated[str, Path(max_length=64)], who: Writer, body: AckBody | None = None
    ) -> dict[str, Any]:
        """Acknowledge an alarm: its sound stops (it sounds again in 120 s if still present).
        Recorded as done by this device's paired name."""
        if alarm_id not in d.station.core.alarms.alarms:
            raise _problem(404, f"no listed alarm {alarm_id!r}")
        d.station.user_input(InputKind.ACKNOWLEDGE, alarm_id, who.name)
        return {"ok": True}

    @app.post("/api/alarms/silence", tags=["alarms"])
    async def silence(body: SilenceBody, who: Writer) -> dict[str, Any]:
        """Pause the sound of one alarm, or of all listed ones, for 120 s (by this device's
        paired name)."""
        if body.alarm is not None and body.alarm not in d.station.core.alarms.alarms:
            raise _problem(404, f"no listed alarm {body.alarm!r}")
        d.station.user_input(InputKind.SILENCE, body.alarm, who.name)
        return {"ok": True}

    @app.post("/api/symptom", tags=["alarms"])
    async def symptom(who: Writer) -> dict[str, Any]:
        """STOP / "I feel unwell": raises user.symptom at once."""
        d.station.user_input(InputKind.SYMPTOM, None, who.name)
        return {"ok": True}

    # -- sessions --------------------------------------------------------------------------

    @app.get("/api/checklist", tags=["session"])
    async def checklist(who: Reader) -> dict[str, Any]:
        """The screening questions and the checklist items, for the guided start."""
        return {"contraindications": CONTRAINDICATIONS, "checklist": CHECKLIST}

    @app.post("/api/session/start", tags=["session"])
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

    @app.post("/api/session/end", tags=["session"])
    async def end(body: EndBody, who: Writer) -> dict[str, Any]:
        """End the session (it ends once the user is upright) and log the pain after."""
        journal = d.station.journal
        session_id = None if journal is None else journal.session_id
        d.station.user_input(InputKind.SESSION_END, None, who.name)
        if body.pain_after is not None:
            session_id = await d.flow.pain_after(body.pain_after, session_id, who.name)
        return {"ok": True, "session": session_id}

    # -- people ----------------------------------------------------------------------------

    @app.get("/api/users", tags=["people"])
    async def users(who: Reader) -> list[dict[str, Any]]:
        """Users with their screening and clearances."""
        out = []
        for user in d.flow.store.users():
            out.append(
                {
                    **user,
                    "screening": d.flow.store.last_screening(user["id"]),
                    "clearances": d.flow.store.clearances(user["id"]),
                }
            )
        return out

    @app.post("/api/users", tags=["people"], status_code=201)
    async def add_user(body: UserBody, who: Writer) -> dict[str, Any]:
        """Add a user (owners and clinicians)."""
        if who.role not in ("owner", "clinician"):
            raise _problem(403, "only an owner or a clinician adds users")
        user_id = await d.flow.add_user(
            body.name, role=body.role, profile=body.profile, age=body.age, by=who.name
        )
        return {"id": user_id, "name": body.name}

    @app.post("/api/users/{name}/screening", tags=["people"])
    async def screening(
        name: Annotated[str, Path(max_length=64)], body: ScreeningBody, who: Writer
    ) -> dict[str, Any]:
        """Record the screening: the conditions that apply (or none)."""
        if bool(body.conditions) == body.none_apply:
            raise _problem(422, "give the conditions that apply, or none_apply: true")
        unknown = set(body.conditions) - set(CONTRAINDICATIONS)
        if unknown:
            raise _problem(422, f"unknown condition(s): {', '.join(sorted(unknown))}")
        answers = {k: k in body.conditions for k in CONTRAINDICATIONS}
        return {"contraindications": await d.flow.record_screening(name, answers, who.name)}

    @app.post("/api/users/{name}/clearance", tags=["people"])
    async def clearance(
        name: Annotated[str, Path(max_length=64)], body: ClearanceBody, who: Writer
    ) -> dict[str, Any]:
        """A clinician clears a user for named conditions (clinicians only)."""
        if who.role != "clinician":
            raise _problem(403, "only a clinician records a clearance")
        await d.flow.record_clearance(name, who.name, body.conditions, body.note)
        return {"ok": True}

    # -- history and progress --------------------------------------------------------------

    @app.get("/api/sessions", tags=["history"])
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
                raise _problem(404, f"no user named {user!r}")
            rows = store.sessions(where="s.user_id = ?", args=(found["id"],), limit=limit)
        for row in rows:
            row["max_theta_deg"] = store.session_max_theta(row["id"])
        return rows

    @app.get("/api/sessions/{session_id}", tags=["history"])
    async def session(session_id: Id, who: Reader) -> dict[str, Any]:
        """One session: its row, 1 Hz theta and HR, alarm events, outages."""
        store = d.flow.store
        row = store.session(session_id)
        if row is None:
            raise _problem(404, f"no session {session_id}")
        trends = store.trends(session_id)
        return {
            **row,
            "trend": {
                "t": [r[1] for r in trends],
                "theta_deg": [r[2] for r in trends],
                "hr_bpm": [r[3] for r in trends],
            },
            "events": [alarm_message(e).data for e in store.session_events(session_id)],
            "gaps": store.gaps(session_id),
        }

    @app.get("/api/progress", tags=["history"])
    async def progress(
        who: Reader,
        user: Annotated[str, Query(max_length=64)],
        weeks: Annotated[int, Query(ge=1, le=52)] = 8,
    ) -> dict[str, Any]:
        """Weekly inverted minutes, days per week, pain before/after, milestones, the plan."""
        store = d.flow.store
        found = store.user(user)
        if found is None:
            raise _problem(404, f"no user named {user!r}")
        rows = store.sessions(where="s.user_id = ?", args=(found["id"],))
        now = datetime.now().astimezone()
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
        pain = [
            {
                "session": r["id"],
                "at": r["started_at"],
                "before": r["pain_before"],
                "after": r["pain_after"],
            }
            for r in reversed(rows)
        ]
        plan = d.flow.plan(user)
        return {
            "weekly": weekly,
            "pain": pain,
            "milestones": list(plan.milestones),
            "sessions": plan.sessions,
            "plan": {
                "step": plan.step + 1,
                "target": {
                    "angle_deg": plan.target.angle_deg,
                    "hold_s": plan.target.hold_s,
                    "session_s": plan.target.session_s,
                },
                "proposal": plan.proposal,
                "notes": list(plan.notes),
                "days_this_week": plan.days_this_week,
            },
        }

    # -- settings --------------------------------------------------------------------------

    @app.get("/api/settings", tags=["settings"])
    async def settings(who: Reader) -> dict[str, Any]:
        """Profiles and limits, calibration, push targets (redacted) and sound."""
        store = d.flow.store
        calibration = {
            sensor: store.setting(d.name, f"calibration.{sensor}")
            for sensor, spec in d.station.core.sensors.items()
            if spec.kind.is_tilt
        }
        return {
            "station_profile": d.station.core.profile.model_dump(),
            "builtin_profiles": {n: p.model_dump() for n, p in BUILTIN.items()},
            "stored_profiles": d.flow.stored_profiles(),
            "calibration": calibration,
            "pin_set": d.access.pin_set(),
            **d.config_summary,
        }

    @app.put("/api/settings/profile", tags=["settings"])
    async def set_profile(body: ProfileBody, request: Request, who: Writer) -> dict[str, Any]:
        """Change a user's profile (a built-in or stored one, by name) and so their limits:
        clinicians, or anyone with the owner's PIN. Audited; used from the next session."""
        await _owner_pin(d, who, body.pin, request)
        user = d.flow.store.user(body.user)
        if user is None:
            raise _problem(404, f"no user named {body.user!r}")
        chosen = d.flow.profile(body.profile)
        detail = {
            "user": body.user,
            "from": user["profile"],
            "to": body.profile,
            "by_pin": who.role != "clinician",
        }

        def change(store: Store) -> None:
            store.update_user(user["id"], profile=body.profile)
            store.audit(who.name, "profile changed", detail)

        await d.flow.writer.run(change)
        return {"ok": True, "profile": chosen.model_dump()}

    @app.post("/api/profiles", tags=["settings"], status_code=201)
    async def store_profile(
        body: StoredProfileBody, request: Request, who: Writer
    ) -> dict[str, Any]:
        """Store a profile uploaded as TOML text (a ``base`` and overrides), validated, to be
        chosen by name: clinicians, or anyone with the owner's PIN."""
        await _owner_pin(d, who, body.pin, request)
        if body.name in BUILTIN:
            raise _problem(409, f"{body.name!r} is a built-in profile: choose another name")
        profile = await d.flow.store_profile(body.name, body.toml, who.name)
        return {"name": body.name, "profile": profile.model_dump()}

    @app.put("/api/settings/pin", tags=["settings"])
    async def set_pin(body: PinBody, request: Request, who: Writer) -> dict[str, Any]:
        """Set the owner's PIN (owners only), or change it: then ``old`` must be the current
        one (a wrong one is 403 and counts against this client like any wrong PIN)."""
        if who.role != "owner":
            raise _problem(403, "only the owner sets the PIN")
        try:
            changed = await d.access.change_pin(body.old, body.new, who.name, _client(request))
        except ValueError as exc:
            raise _problem(422, str(exc)) from None
        if not changed:
            raise _problem(403, "the current PIN is wrong")
        return {"ok": True, "pin_set": True}

    # -- the front end ---------------------------------------------------------------------

    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False, response_model=None)
    async def root(request: Request) -> Response:
        if not index.exists():
            return HTMLResponse(
                "<h1>Spotter</h1><p>The dashboard front end is not built: run scripts/setup.sh "
                "(it runs npm ci and npm run build).</p>",
                status_code=503,
            )
        return FileResponse(index, headers={"Cache-Control": "no-store"})

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
