"""Pairing, the session cookie, logout and the unauthenticated health check."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import Field

from dashboard.auth import COOKIE
from dashboard.guard import StrictBody
from dashboard.routes.deps import (
    Dashboard,
    Reader,
    Sender,
    Writer,
    problem,
)


class PairBody(StrictBody):
    role: Literal["viewer", "user", "clinician", "owner"] = "viewer"
    name: str = Field(default="device", min_length=1, max_length=64)


def routes(d: Dashboard) -> APIRouter:
    """The access routes over ``d``."""
    router = APIRouter()

    @router.get("/healthz", tags=["station"])
    async def healthz() -> dict[str, Any]:
        """Liveness without login: the station's clock and whether it has problems."""
        view = d.station.view()
        return {"ok": not view.problems, "t": view.t}

    @router.get("/pair", tags=["access"], response_class=RedirectResponse)
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

    @router.get("/api/me", tags=["access"])
    async def me(who: Reader) -> dict[str, Any]:
        """Who this device is, the CSRF token for writes, the station's name."""
        return {"role": who.role, "name": who.name, "csrf": who.csrf, "station": d.name}

    @router.post("/api/pairings", tags=["access"])
    async def new_pairing(body: PairBody, request: Request, who: Writer) -> dict[str, Any]:
        """Pair another device (owners only): a one-time URL."""
        if who.role != "owner":
            raise problem(403, "only the owner pairs devices")
        token = await d.access.pairing(body.role, body.name)
        base = str(request.base_url).rstrip("/")
        return {"url": f"{base}/pair?token={token}", "role": body.role, "expires_in_s": 900}

    @router.post("/api/logout", tags=["access"])
    async def logout(request: Request, who: Sender) -> Response:
        """End this device's session (any role, a viewer too); it is deleted at the station."""
        await d.access.logout(request.cookies.get(COOKIE, ""))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE)
        return response

    return router
