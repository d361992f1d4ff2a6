"""The dashboard's HTTP API (FastAPI): station state, a live stream, alarms, the guided
session, history and progress, settings. Served by ``spotter run`` in the station's own
event loop, so a command reaches the safety core directly.

This module assembles the application: the HTTP boundary (:func:`dashboard.guard.harden`),
the error mapping, one router per area from :mod:`dashboard.routes` and the front end.
"""

from __future__ import annotations

from pathlib import Path as PathLib

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from dashboard.auth import HasherBusy, TooManyTries
from dashboard.guard import Policy, harden
from dashboard.routes import access, alarms, history, live, people, session, settings
from dashboard.routes.deps import Dashboard, login
from monitor.core.profiles import ProfileError
from monitor.station.flow import FlowError
from monitor.store.database import StoreError

__all__ = ["STATIC", "Dashboard", "create_app"]

STATIC = PathLib(__file__).parent / "static"

ROUTERS = (access, live, alarms, session, people, history, settings)
"""The API's areas, in the order their routes are matched."""


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
    harden(app, Policy(hosts=d.hosts), login)

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

    for area in ROUTERS:
        app.include_router(area.routes(d))

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
