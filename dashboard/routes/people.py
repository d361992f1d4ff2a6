"""Users, their screening and clinicians' clearances."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import Field

from dashboard.guard import StrictBody
from dashboard.routes.deps import (
    Dashboard,
    ProfileName,
    Reader,
    Writer,
    problem,
)
from monitor.core.screening import CONTRAINDICATIONS


class UserBody(StrictBody):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w .'-]+$")
    profile: ProfileName = "beginner"
    age: float | None = Field(default=None, gt=0, lt=130)
    role: Literal["user", "clinician", "owner"] = "user"


class ScreeningBody(StrictBody):
    conditions: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=32, description="Conditions that apply."
    )
    none_apply: bool = False


class ClearanceBody(StrictBody):
    conditions: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=32)
    note: str = Field(default="", max_length=500)


def routes(d: Dashboard) -> APIRouter:
    """The people routes over ``d``."""
    router = APIRouter()

    @router.get("/api/users", tags=["people"])
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

    @router.post("/api/users", tags=["people"], status_code=201)
    async def add_user(body: UserBody, who: Writer) -> dict[str, Any]:
        """Add a user (owners and clinicians)."""
        if who.role not in ("owner", "clinician"):
            raise problem(403, "only an owner or a clinician adds users")
        user_id = await d.flow.add_user(
            body.name, role=body.role, profile=body.profile, age=body.age, by=who.name
        )
        return {"id": user_id, "name": body.name}

    @router.post("/api/users/{name}/screening", tags=["people"])
    async def screening(
        name: Annotated[str, Path(max_length=64)], body: ScreeningBody, who: Writer
    ) -> dict[str, Any]:
        """Record the screening: the conditions that apply (or none)."""
        if bool(body.conditions) == body.none_apply:
            raise problem(422, "give the conditions that apply, or none_apply: true")
        unknown = set(body.conditions) - set(CONTRAINDICATIONS)
        if unknown:
            raise problem(422, f"unknown condition(s): {', '.join(sorted(unknown))}")
        answers = {k: k in body.conditions for k in CONTRAINDICATIONS}
        return {"contraindications": await d.flow.record_screening(name, answers, who.name)}

    @router.post("/api/users/{name}/clearance", tags=["people"])
    async def clearance(
        name: Annotated[str, Path(max_length=64)], body: ClearanceBody, who: Writer
    ) -> dict[str, Any]:
        """A clinician clears a user for named conditions (clinicians only)."""
        if who.role != "clinician":
            raise problem(403, "only a clinician records a clearance")
        await d.flow.record_clearance(name, who.name, body.conditions, body.note)
        return {"ok": True}

    return router
