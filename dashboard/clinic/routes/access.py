"""Logging in and out, and who is logged in."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from dashboard.auth import HASHING
from dashboard.clinic.routes.deps import COOKIE, Who, problem, token_hash
from dashboard.guard import StrictBody
from dashboard.limiter import Limiter

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub

LOGIN_TTL = timedelta(hours=12)


class LoginBody(StrictBody):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


def routes(hub: Hub, tries: Limiter, clock: Callable[[], float] = time.monotonic) -> APIRouter:
    """The access routes; ``tries`` limits wrong passwords, judged on ``clock``."""
    router = APIRouter()

    @router.post("/hub/api/login", tags=["access"])
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
            raise problem(401, "wrong name or password")
        tries.succeeded(client)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        until = (datetime.now().astimezone() + LOGIN_TTL).isoformat()
        hub.store.add_login(token_hash(token), body.name, csrf, until)
        hub.store.audit(body.name, "logged in", {})
        response = JSONResponse({"name": body.name, "role": person["role"], "csrf": csrf})
        secure = request.url.scheme == "https" or request.url.hostname in ("127.0.0.1", "localhost")
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=43200
        )
        return response

    @router.post("/hub/api/logout", tags=["access"])
    async def logout(request: Request, who: Who) -> Response:
        """End this login."""
        hub.store.drop_login(token_hash(request.cookies.get(COOKIE, "")))
        hub.store.audit(who["name"], "logged out", {})
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE)
        return response

    @router.get("/hub/api/me", tags=["access"])
    async def me(who: Who) -> dict[str, Any]:
        """Who is logged in, and the CSRF token for writes."""
        return {
            "name": who["name"],
            "role": who["role"],
            "csrf": who["csrf"],
            "hub": hub.settings.hub.name,
        }

    return router
