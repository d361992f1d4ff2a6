"""How a refused value is told: one ``key: message`` per problem pydantic found.

Settings, profiles, scenarios, MQTT payloads and the hub's configuration all say an unknown
key the same way ("unknown key", not pydantic's "Extra inputs are not permitted").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def problems(
    exc: ValidationError, whole: str, *, limit: int | None = None, missing: str | None = None
) -> list[str]:
    """``key: message`` for each error (at most ``limit``); ``whole`` names an error about the
    whole value; ``missing``, when given, replaces pydantic's message for a missing key."""
    found = []
    for err in exc.errors(include_url=False)[:limit]:
        key = ".".join(str(p) for p in err["loc"]) or whole
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif missing is not None and err["type"] == "missing":
            msg = missing
        else:
            msg = err["msg"]
        found.append(f"{key}: {msg}")
    return found
