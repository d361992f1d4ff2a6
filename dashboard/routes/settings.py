"""Settings: profiles and limits, calibration, stored profiles, the owner's PIN."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from dashboard.auth import Login
from dashboard.guard import StrictBody
from dashboard.routes.deps import (
    Dashboard,
    Pin,
    ProfileName,
    Reader,
    Writer,
    client_host,
    owner_pin,
    problem,
)
from monitor.core.profiles import BUILTIN, MAX_PROFILE_BYTES
from monitor.store.station_store import Store


class ProfileBody(StrictBody):
    user: str = Field(min_length=1, max_length=64)
    profile: ProfileName
    pin: Pin | None = None


class StoredProfileBody(StrictBody):
    name: ProfileName
    toml: str = Field(min_length=1, max_length=MAX_PROFILE_BYTES)
    pin: Pin | None = None


class PinBody(StrictBody):
    old: Pin | None = Field(default=None, description="The current PIN (when one is set).")
    new: Annotated[str, Field(pattern=r"^[0-9]{4,12}$")]


def routes(d: Dashboard) -> APIRouter:
    """The settings routes over ``d``."""
    router = APIRouter()

    @router.get("/api/settings", tags=["settings"])
    async def settings(who: Reader) -> dict[str, Any]:
        """Profiles and limits, calibration, push targets (redacted) and sound."""
        return _settings(d)

    @router.put("/api/settings/profile", tags=["settings"])
    async def set_profile(body: ProfileBody, request: Request, who: Writer) -> dict[str, Any]:
        """Change a user's profile (a built-in or stored one, by name) and so their limits:
        clinicians, or anyone with the owner's PIN. Audited; used from the next session."""
        await owner_pin(d, who, body.pin, request)
        return await _set_profile(d, body, who)

    @router.post("/api/profiles", tags=["settings"], status_code=201)
    async def store_profile(
        body: StoredProfileBody, request: Request, who: Writer
    ) -> dict[str, Any]:
        """Store a profile uploaded as TOML text (a ``base`` and overrides), validated, to be
        chosen by name: clinicians, or anyone with the owner's PIN."""
        await owner_pin(d, who, body.pin, request)
        if body.name in BUILTIN:
            raise problem(409, f"{body.name!r} is a built-in profile: choose another name")
        profile = await d.flow.store_profile(body.name, body.toml, who.name)
        return {"name": body.name, "profile": profile.model_dump()}

    @router.put("/api/settings/pin", tags=["settings"])
    async def set_pin(body: PinBody, request: Request, who: Writer) -> dict[str, Any]:
        """Set the owner's PIN (owners only), or change it: then ``old`` must be the current
        one (a wrong one is 403 and counts against this client like any wrong PIN)."""
        if who.role != "owner":
            raise problem(403, "only the owner sets the PIN")
        try:
            changed = await d.access.change_pin(body.old, body.new, who.name, client_host(request))
        except ValueError as exc:
            raise problem(422, str(exc)) from None
        if not changed:
            raise problem(403, "the current PIN is wrong")
        return {"ok": True, "pin_set": True}

    return router


def _settings(d: Dashboard) -> dict[str, Any]:
    """``GET /api/settings``: profiles and limits, calibration, push targets and sound."""
    store = d.flow.store
    view = d.station.view()
    calibration = {
        sensor.name: store.setting(d.name, f"calibration.{sensor.name}")
        for sensor in view.sensors
        if sensor.is_tilt
    }
    return {
        "station_profile": view.profile.model_dump(),
        "builtin_profiles": {n: p.model_dump() for n, p in BUILTIN.items()},
        "stored_profiles": d.flow.stored_profiles(),
        "calibration": calibration,
        "pin_set": d.access.pin_set(),
        **d.config_summary,
    }


async def _set_profile(d: Dashboard, body: ProfileBody, who: Login) -> dict[str, Any]:
    """Give ``body.user`` the profile ``body.profile`` (once ``who`` may): audited."""
    user = d.flow.store.user(body.user)
    if user is None:
        raise problem(404, f"no user named {body.user!r}")
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
