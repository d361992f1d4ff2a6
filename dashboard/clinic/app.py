"""The central station's page and API: log in, every station as a tile, the merged alarm
list, acknowledge and silence at a station, accept or reject an escalation, people, the
audit log (CSV too), and review of any recorded session by uploading its trace.

The routes live by area in :mod:`dashboard.clinic.routes`; this module assembles them with
the boundary's hardening, the error handlers and the page."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from dashboard.auth import HasherBusy
from dashboard.clinic.routes import access, escalation, people, review, stations
from dashboard.clinic.routes.deps import COOKIE, CSRF_HEADER, logged_in
from dashboard.clinic.routes.people import csv_cell
from dashboard.clinic.routes.review import MAX_TRACE_BYTES, TRACE_TYPES
from dashboard.clinic.service import Hub
from dashboard.guard import Policy, Upload, allowed_hosts, harden
from dashboard.limiter import Limiter
from monitor.store.database import StoreError

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "MAX_TRACE_BYTES",
    "create_hub_app",
    "csv_cell",
    "hash_password",
    "hub_hosts",
]
"""The names other code imports from here (some live in :mod:`dashboard.clinic.routes`)."""

STATIC = Path(__file__).parent.parent / "static"
HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2 hash of a password (12 characters at least)."""
    if len(password) < 12:
        raise ValueError("a password has at least 12 characters")
    return HASHER.hash(password)


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


def create_hub_app(
    hub: Hub, logins: Limiter | None = None, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The central station's web application. ``logins`` limits wrong passwords (per
    client address and overall, with back-off), judged on ``clock`` (monotonic seconds)."""
    app = FastAPI(
        title="Spotter clinic hub", version="1", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.hub = hub
    harden(
        app,
        Policy(
            hosts=hub_hosts(hub),
            uploads={"/hub/api/review": Upload(TRACE_TYPES, MAX_TRACE_BYTES)},
        ),
        logged_in,
    )

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(HasherBusy)
    async def busy(_: Request, exc: HasherBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "1"})

    app.include_router(access.routes(hub, logins or Limiter(), clock))
    app.include_router(stations.routes(hub))
    app.include_router(escalation.routes(hub))
    app.include_router(review.routes(hub))
    app.include_router(people.routes(hub))
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
