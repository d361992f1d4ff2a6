"""People (who may log in, who is on the escalation list) and the audit log (CSV too)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field

from dashboard.auth import HASHING
from dashboard.clinic.routes.deps import Actor, Who, problem
from dashboard.guard import StrictBody

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub


class PersonBody(StrictBody):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w .'-]+$")
    role: Literal["viewer", "therapist", "admin"]
    password: str = Field(min_length=12, max_length=200)
    push_url: str | None = Field(default=None, max_length=500)
    escalation_rank: int | None = Field(default=None, ge=1, le=100)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @``, TAB or CR gets
    a leading ``'`` (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def routes(hub: Hub) -> APIRouter:
    """The people and audit routes."""
    router = APIRouter()

    @router.get("/hub/api/people", tags=["people"])
    async def people(who: Who) -> list[dict[str, Any]]:
        """Everyone who may log in (no secrets)."""
        return hub.store.people()

    @router.post("/hub/api/people", tags=["people"], status_code=201)
    async def add_person(body: PersonBody, who: Actor) -> dict[str, Any]:
        """Add a person (admins only); the password is stored as an argon2 hash."""
        if who["role"] != "admin":
            raise problem(403, "only an admin adds people")
        if hub.store.person(body.name) is not None:
            raise problem(409, f"a person named {body.name!r} exists")
        hashed = await HASHING.hash(body.password)
        hub.store.add_person(body.name, body.role, hashed, body.push_url, body.escalation_rank)
        hub.people_changed()
        hub.store.audit(who["name"], "person added", {"name": body.name, "role": body.role})
        return {"name": body.name, "role": body.role}

    @router.get("/hub/api/audit", tags=["audit"])
    async def audit(who: Who) -> list[dict[str, Any]]:
        """The audit log: logins, acknowledges, silences, limit changes, clearances."""
        if who["role"] != "admin":
            raise problem(403, "the audit log is for admins")
        return hub.store.audit_log()

    @router.get("/hub/api/audit.csv", tags=["audit"])
    async def audit_csv(who: Who) -> Response:
        """The audit log as CSV."""
        if who["role"] != "admin":
            raise problem(403, "the audit log is for admins")
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

    return router
