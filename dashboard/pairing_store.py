"""The dashboard's rows in the station's store: one-time pairing tokens and login sessions.

Both tables are in the station's file (migration 5 of :mod:`monitor.store.migrations`), but
they are the dashboard's business, so their reads and writes live here, as functions over the
same :class:`~monitor.store.database.Database` (on the station, the writer thread's store, so
they share its transactions). Tokens are never stored, only their hashes.
"""

from __future__ import annotations

from typing import Any

from monitor.store.database import Database, as_dict, now_iso


def add_web_session(
    db: Database, token_hash: str, role: str, name: str, csrf: str, expires_at: str
) -> None:
    """A dashboard login (the token itself is never stored, only its hash)."""
    with db.transaction() as c:
        c.execute(
            "INSERT INTO web_sessions (token_hash, role, name, csrf, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash, role, name, csrf, now_iso(), expires_at),
        )


def add_pairing(db: Database, token_hash: str, role: str, name: str, expires_at: str) -> None:
    """A one-time pairing token (hashed), for ``spotter run`` or ``spotter pair``."""
    with db.transaction() as c:
        c.execute(
            "INSERT INTO pairings (token_hash, role, name, expires_at) VALUES (?, ?, ?, ?)",
            (token_hash, role, name, expires_at),
        )


def take_pairing(db: Database, token_hash: str) -> dict[str, Any] | None:
    """Spend a pairing token: it works once."""
    with db.transaction() as c:
        row = c.execute(
            "SELECT role, name, expires_at FROM pairings WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        c.execute("DELETE FROM pairings WHERE token_hash = ?", (token_hash,))
    if row is None:
        return None
    return as_dict(("role", "name", "expires_at"), row)


def web_session(db: Database, token_hash: str) -> dict[str, Any] | None:
    """A dashboard login by its token's hash."""
    row = db.fetch_one(
        "SELECT role, name, csrf, expires_at FROM web_sessions WHERE token_hash = ?",
        (token_hash,),
    )
    if row is None:
        return None
    return as_dict(("role", "name", "csrf", "expires_at"), row)


def drop_web_session(db: Database, token_hash: str) -> None:
    """Log a dashboard session out."""
    with db.transaction() as c:
        c.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))
