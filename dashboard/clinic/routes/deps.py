"""What every hub route shares: who is logged in (the cookie), who may act (the CSRF header
and the role), the refusals, and the path parameters' bounds."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Path, Request

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub

COOKIE = "spotter_hub"
CSRF_HEADER = "X-CSRF-Token"


def token_hash(token: str) -> str:
    """What the store keeps of a login token."""
    return hashlib.sha256(token.encode()).hexdigest()


def problem(status: int, message: str) -> HTTPException:
    """A refusal with its reason."""
    return HTTPException(status_code=status, detail=message)


async def logged_in(request: Request) -> dict[str, Any]:
    """The logged-in person's login row; 401 without a valid, unexpired login."""
    hub: Hub = request.app.state.hub
    cookie = request.cookies.get(COOKIE)
    row = hub.store.login(token_hash(cookie)) if cookie else None
    if row is None or datetime.fromisoformat(row["expires_at"]) < datetime.now().astimezone():
        raise problem(401, "log in first")
    return row


async def may_act(
    request: Request, who: Annotated[dict[str, Any], Depends(logged_in)]
) -> dict[str, Any]:
    """A logged-in therapist or admin with the right CSRF header: who may act."""
    header = request.headers.get(CSRF_HEADER)
    if header is None or not hmac.compare_digest(header, who["csrf"]):
        raise problem(403, f"missing or wrong {CSRF_HEADER} header")
    if who["role"] == "viewer":
        raise problem(403, "viewers watch; a therapist or an admin acts")
    return who


Name = Annotated[str, Path(max_length=64)]
"""A station's or an alarm's name in a path."""
Who = Annotated[dict[str, Any], Depends(logged_in)]
Actor = Annotated[dict[str, Any], Depends(may_act)]
