"""What every route of the dashboard works on: the :class:`Dashboard` (the station, the
session flow, the live fan-out, access), the login and CSRF dependencies, the owner's-PIN
check and the field types the request bodies share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from pydantic import Field

from dashboard.auth import COOKIE, CSRF_HEADER, Access, Login
from dashboard.guard import LOOPBACK_HOSTS, MAX_ID
from dashboard.live import LiveHub
from monitor.core.profiles import PROFILE_NAME
from monitor.station.flow import SessionFlow
from monitor.station.station import Station


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


ProfileName = Annotated[str, Field(min_length=1, max_length=40, pattern=PROFILE_NAME)]
Pin = Annotated[str, Field(min_length=1, max_length=12, pattern=r"^[0-9]+$")]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def problem(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


async def login(request: Request) -> Login:
    d: Dashboard = request.app.state.dashboard
    who = d.access.login(request.cookies.get(COOKIE))
    if who is None:
        raise problem(401, "not paired: open the pairing URL that spotter run printed")
    return who


async def writer(request: Request, who: Annotated[Login, Depends(login)]) -> Login:
    d: Dashboard = request.app.state.dashboard
    if not d.access.csrf_ok(who, request.headers.get(CSRF_HEADER)):
        raise problem(403, f"missing or wrong {CSRF_HEADER} header")
    if who.role == "viewer":
        raise problem(403, "this device may only watch (paired as a viewer)")
    return who


async def csrf(request: Request, who: Annotated[Login, Depends(login)]) -> Login:
    d: Dashboard = request.app.state.dashboard
    if not d.access.csrf_ok(who, request.headers.get(CSRF_HEADER)):
        raise problem(403, f"missing or wrong {CSRF_HEADER} header")
    return who


def client_host(request: Request) -> str:
    return "unknown" if request.client is None else request.client.host


async def owner_pin(d: Dashboard, who: Login, pin: str | None, request: Request) -> None:
    """Clinicians pass; anyone else needs the owner's PIN. A wrong PIN and a missing one get
    the same 403; too many wrong ones a 429 before any hashing."""
    if who.role == "clinician":
        return
    if not await d.access.check_pin(pin, client_host(request)):
        raise problem(403, "this needs the clinician role or the owner's PIN")


Reader = Annotated[Login, Depends(login)]
"""Any paired device."""
Writer = Annotated[Login, Depends(writer)]
"""A paired device that may act, sending the session's CSRF token."""
Sender = Annotated[Login, Depends(csrf)]
"""Any paired device sending the session's CSRF token (a viewer too: to log out)."""
