"""The central station's page and API: log in, every station as a tile, the merged alarm
list, acknowledge and silence at a station, accept or reject an escalation, people, the
audit log (CSV too), and review of any recorded session by uploading its trace."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path as PathLib
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from pydantic import Field

from dashboard.auth import HASHING, HasherBusy
from dashboard.clinic.review import MAX_REVIEW_BYTES, ReviewError, review_upload
from dashboard.clinic.service import Hub, UnknownStation
from dashboard.guard import Policy, StrictBody, Upload, allowed_hosts, harden
from dashboard.limiter import Limiter
from dashboard.live import Message, next_message, sse
from monitor.core.profiles import BUILTIN, PROFILE_NAME
from monitor.store.database import StoreError

STATIC = PathLib(__file__).parent.parent / "static"
COOKIE = "spotter_hub"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_TTL = timedelta(hours=12)
MAX_TRACE_BYTES = MAX_REVIEW_BYTES
TRACE_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/octet-stream"})
"""What a review upload may say it is (JSON lines)."""
HASHER = PasswordHasher()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2 hash of a password (12 characters at least)."""
    if len(password) < 12:
        raise ValueError("a password has at least 12 characters")
    return HASHER.hash(password)


_Body = StrictBody


class LoginBody(_Body):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class PersonBody(_Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w .'-]+$")
    role: Literal["viewer", "therapist", "admin"]
    password: str = Field(min_length=12, max_length=200)
    push_url: str | None = Field(default=None, max_length=500)
    escalation_rank: int | None = Field(default=None, ge=1, le=100)


class SilenceBody(_Body):
    alarm: str | None = Field(default=None, max_length=64)


def _problem(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @``, TAB or CR gets
    a leading ``'`` (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def hub_hosts(hub: Hub) -> frozenset[str]:
    """The names the hub's page answers to: loopback, its configured address, and when it
    listens on every interface this machine's name and LAN address, plus the public URL's."""
    extra = [hub.settings.hub.host]
    if hub.settings.hub.host in ("0.0.0.0", "::"):
        from dashboard.server import lan_address

        extra += [socket.gethostname(), lan_address()]
    if hub.settings.hub.public_url:
        extra.append(urlsplit(hub.settings.hub.public_url).hostname or "")
    return allowed_hosts(extra)


async def _who(request: Request) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    cookie = request.cookies.get(COOKIE)
    row = hub.store.login(_hash(cookie)) if cookie else None
    if row is None or datetime.fromisoformat(row["expires_at"]) < datetime.now().astimezone():
        raise _problem(401, "log in first")
    return row


async def _actor(request: Request, who: Annotated[dict[str, Any], Depends(_who)]) -> dict[str, Any]:
    header = request.headers.get(CSRF_HEADER)
    if header is None or not hmac.compare_digest(header, who["csrf"]):
        raise _problem(403, f"missing or wrong {CSRF_HEADER} header")
    if who["role"] == "viewer":
        raise _problem(403, "viewers watch; a therapist or an admin acts")
    return who


def _reachable(hub: Hub, station: str, what: str) -> None:
    """Refuse (409, with the reason) a command for a station that is away: a station keeps
    no command sent while it is offline, so it would be lost without a word."""
    view = hub.core.stations[station]
    if view.status == "online" and "link.lost" not in view.alarms.alarms:
        return
    raise _problem(
        409,
        f"{station} is offline: the {what} cannot reach it now (a station gets no command "
        "sent while it is away). Act at the station, or here once it is back online.",
    )


Name = Annotated[str, Path(max_length=64)]
"""A station's or an alarm's name in a path."""
Who = Annotated[dict[str, Any], Depends(_who)]
Actor = Annotated[dict[str, Any], Depends(_actor)]


def create_hub_app(
    hub: Hub, logins: Limiter | None = None, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The central station's web application. ``logins`` limits wrong passwords (per
    client address and overall, with back-off), judged on ``clock`` (monotonic seconds)."""
    app = FastAPI(
        title="Spotter clinic hub", version="1", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.hub = hub
    tries = logins or Limiter()
    harden(
        app,
        Policy(
            hosts=hub_hosts(hub),
            uploads={"/hub/api/review": Upload(TRACE_TYPES, MAX_TRACE_BYTES)},
        ),
        _who,
    )

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(HasherBusy)
    async def busy(_: Request, exc: HasherBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "1"})

    @app.post("/hub/api/login", tags=["access"])
    async def login(body: LoginBody, request: Request) -> Response:
        """Log in with name and password: sets the session cookie. A wrong name and a wrong
        password take the same time and get the same answer; too many wrong ones from a
        client (or overall) get 429 with Retry-After before any hashing."""
        client = "unknown" if request.client is None else request.client.host
        wait_s = tries.wait_s(client, clock())
        if wait_s > 0:
            return JSONResponse(
                {"detail": f"too many wrong attempts: try again in {wait_s:.0f} s"},
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait_s)))},
            )
        person = hub.store.person(body.name)
        stored = None if person is None else person["password_hash"]
        ok = await HASHING.verify(stored, body.password)
        if not ok or person is None:
            tries.failed(client, clock())
            hub.store.audit(body.name, "login refused", {})
            raise _problem(401, "wrong name or password")
        tries.succeeded(client)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        until = (datetime.now().astimezone() + LOGIN_TTL).isoformat()
        hub.store.add_login(_hash(token), body.name, csrf, until)
        hub.store.audit(body.name, "logged in", {})
        response = JSONResponse({"name": body.name, "role": person["role"], "csrf": csrf})
        secure = request.url.scheme == "https" or request.url.hostname in ("127.0.0.1", "localhost")
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=43200
        )
        return response

    @app.post("/hub/api/logout", tags=["access"])
    async def logout(request: Request, who: Who) -> Response:
        """End this login."""
        hub.store.drop_login(_hash(request.cookies.get(COOKIE, "")))
        hub.store.audit(who["name"], "logged out", {})
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE)
        return response

    @app.get("/hub/api/me", tags=["access"])
    async def me(who: Who) -> dict[str, Any]:
        """Who is logged in, and the CSRF token for writes."""
        return {
            "name": who["name"],
            "role": who["role"],
            "csrf": who["csrf"],
            "hub": hub.settings.hub.name,
        }

    @app.get("/hub/api/snapshot", tags=["stations"])
    async def snapshot(who: Who) -> dict[str, Any]:
        """Every station as a tile, the merged alarm list, open escalations."""
        return hub.snapshot()

    @app.get("/hub/api/stream", tags=["stations"], response_class=EventSourceResponse)
    async def stream(request: Request, who: Who) -> AsyncIterator[ServerSentEvent]:
        """``snapshot`` four times a second and every ``event`` (alarm events of the stations
        and of the hub, command replies); reconnect with Last-Event-ID to catch up."""
        last = request.headers.get("last-event-id")
        client = hub.connect()
        try:
            if last and last.isdigit() and len(last) <= 15:
                for missed in hub.events[int(last) :]:
                    yield sse(missed)
            yield sse(Message("snapshot", hub.snapshot()))
            while not client.dropped.is_set():
                message = await next_message(client)
                if message is not None:
                    yield sse(message)
                elif await request.is_disconnected():
                    return
        finally:
            hub.disconnect(client)

    @app.post("/hub/api/stations/{station}/alarms/{alarm}/acknowledge", tags=["alarms"])
    async def acknowledge(station: Name, alarm: Name, who: Actor) -> dict[str, Any]:
        """Acknowledge at the station (mirrored there), or the hub's own link.lost here."""
        if station not in hub.core.stations:
            raise _problem(404, f"no station {station!r}")
        if alarm == "link.lost" and "link.lost" in hub.core.stations[station].alarms.alarms:
            hub._hub_events(hub.core.acknowledge(hub.now(), station, who["name"]))
            hub.store.audit(who["name"], "acknowledged", {"station": station, "alarm": alarm})
            return {"ok": True, "where": "hub"}
        _reachable(hub, station, "acknowledgement")
        try:
            command = await hub.command(station, "acknowledge", alarm, who["name"])
        except (ConnectionError, ValueError) as exc:
            raise _problem(503, str(exc)) from None
        return {"ok": True, "where": "station", "command": command}

    @app.post("/hub/api/stations/{station}/silence", tags=["alarms"])
    async def silence(station: Name, body: SilenceBody, who: Actor) -> dict[str, Any]:
        """Pause the station's sound for one alarm or all, for the silence period."""
        if station not in hub.core.stations:
            raise _problem(404, f"no station {station!r}")
        _reachable(hub, station, "silence")
        try:
            command = await hub.command(station, "silence", body.alarm, who["name"])
        except (ConnectionError, ValueError) as exc:
            raise _problem(503, str(exc)) from None
        return {"ok": True, "command": command}

    @app.post("/hub/api/escalations/{station}/{alarm}/accept", tags=["escalation"])
    async def accept(station: Name, alarm: Name, who: Actor) -> dict[str, Any]:
        """I take this alarm: escalation stops."""
        if not hub.accept_escalation(station, alarm, who["name"]):
            raise _problem(404, "no open escalation of that alarm")
        hub.store.escalation_step(station, alarm, "", who["name"], "accepted")
        hub.store.audit(who["name"], "escalation accepted", {"station": station, "alarm": alarm})
        return {"ok": True}

    @app.post("/hub/api/escalations/{station}/{alarm}/reject", tags=["escalation"])
    async def reject(station: Name, alarm: Name, who: Actor) -> dict[str, Any]:
        """I cannot take this alarm: it goes to the next person at once."""
        try:
            notice = hub.reject_escalation(station, alarm, who["name"])
        except UnknownStation as exc:
            raise _problem(404, str(exc)) from None
        hub.store.escalation_step(station, alarm, "", who["name"], "rejected")
        hub.store.audit(who["name"], "escalation rejected", {"station": station, "alarm": alarm})
        if notice is not None:
            await hub.hand_on(notice)
        return {"ok": True, "next": None if notice is None else notice.person}

    @app.get("/hub/api/events", tags=["review"])
    async def events(
        who: Who, station: Annotated[str | None, Query(max_length=64)] = None
    ) -> list[dict[str, Any]]:
        """Every alarm event the hub recorded (of one station), oldest first."""
        return hub.store.station_events(station)

    @app.get("/hub/api/log", tags=["review"])
    async def event_log(
        who: Who,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        """The page's event log from the store, newest first, a page at a time: the
        stations' alarm events and the hub's own, each with its time; ``more``: an older page."""
        rows = hub.store.event_log(offset, limit + 1)
        return {"events": rows[:limit], "more": len(rows) > limit}

    @app.post("/hub/api/review", tags=["review"])
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
            raise _problem(422, f"no profile named {profile!r} (built in: {', '.join(BUILTIN)})")
        body = await request.body()  # the boundary refused more than MAX_TRACE_BYTES already
        try:
            return await review_upload(body, BUILTIN[profile], age)
        except ReviewError as exc:
            raise _problem(exc.status, exc.message) from None

    @app.get("/hub/api/escalations", tags=["escalation"])
    async def escalation_log(who: Who) -> list[dict[str, Any]]:
        """Every escalation step."""
        return hub.store.escalations()

    @app.get("/hub/api/people", tags=["people"])
    async def people(who: Who) -> list[dict[str, Any]]:
        """Everyone who may log in (no secrets)."""
        return hub.store.people()

    @app.post("/hub/api/people", tags=["people"], status_code=201)
    async def add_person(body: PersonBody, who: Actor) -> dict[str, Any]:
        """Add a person (admins only); the password is stored as an argon2 hash."""
        if who["role"] != "admin":
            raise _problem(403, "only an admin adds people")
        if hub.store.person(body.name) is not None:
            raise _problem(409, f"a person named {body.name!r} exists")
        hashed = await HASHING.hash(body.password)
        hub.store.add_person(body.name, body.role, hashed, body.push_url, body.escalation_rank)
        hub.people_changed()
        hub.store.audit(who["name"], "person added", {"name": body.name, "role": body.role})
        return {"name": body.name, "role": body.role}

    @app.get("/hub/api/audit", tags=["audit"])
    async def audit(who: Who) -> list[dict[str, Any]]:
        """The audit log: logins, acknowledges, silences, limit changes, clearances."""
        if who["role"] != "admin":
            raise _problem(403, "the audit log is for admins")
        return hub.store.audit_log()

    @app.get("/hub/api/audit.csv", tags=["audit"])
    async def audit_csv(who: Who) -> Response:
        """The audit log as CSV."""
        if who["role"] != "admin":
            raise _problem(403, "the audit log is for admins")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "actor", "action", "detail"])
        for row in hub.store.audit_log():
            detail = json.dumps(row["detail"], sort_keys=True)
            writer.writerow([csv_cell(v) for v in (row["at"], row["actor"], row["action"], detail)])
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="spotter-audit.csv"'},
        )

    page = STATIC / "hub.html"

    @app.get("/", include_in_schema=False, response_model=None)
    async def root() -> Response:
        if not page.exists():
            return HTMLResponse(
                "<h1>Spotter hub</h1><p>Build the front end: scripts/setup.sh</p>", 503
            )
        return FileResponse(page, headers={"Cache-Control": "no-store"})

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
