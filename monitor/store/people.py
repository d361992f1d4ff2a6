"""People: users, prescribed profiles, screenings, clinicians' clearances and each user's
progression step. (The audit log every schema has is :meth:`Database.audit`.)"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from monitor.store.database import Database, StoreError, as_dict, as_dicts, now_iso

USER_COLUMNS = ("id", "name", "role", "profile", "age", "created_at")


class People(Database):
    """The users of a station's store and what is known about them."""

    # -- users, profiles, screening, clearances ---------------------------------------------

    def add_user(
        self, name: str, role: str = "user", profile: str = "beginner", age: float | None = None
    ) -> int:
        """A new user; raises StoreError if the name is taken."""
        try:
            with self._tx() as c:
                cur = c.execute(
                    "INSERT INTO users (name, role, profile, age, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, role, profile, age, now_iso()),
                )
                return int(cur.lastrowid or 0)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"user {name!r}: {exc}") from None

    def update_user(self, user_id: int, **fields: Any) -> None:
        """Change a user's profile, age or role."""
        allowed = {"profile", "age", "role"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot change {', '.join(sorted(bad))}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as c:
            c.execute(f"UPDATE users SET {sets} WHERE id = ?", (*fields.values(), user_id))

    def user(self, name: str) -> dict[str, Any] | None:
        """A user by name."""
        row = self._one(
            "SELECT id, name, role, profile, age, created_at FROM users WHERE name = ?", (name,)
        )
        if row is None:
            return None
        return as_dict(USER_COLUMNS, row)

    def users(self) -> list[dict[str, Any]]:
        """Every user."""
        rows = self._all("SELECT id, name, role, profile, age, created_at FROM users ORDER BY name")
        return as_dicts(USER_COLUMNS, rows)

    def save_profile(self, name: str, toml_text: str) -> None:
        """Keep a prescribed profile's TOML under a name."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO profiles (name, toml, created_at) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET toml = excluded.toml",
                (name, toml_text, now_iso()),
            )

    def profile_toml(self, name: str) -> str | None:
        """A stored profile's TOML."""
        row = self._one("SELECT toml FROM profiles WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def add_screening(
        self, user_id: int, answers: dict[str, bool], contraindications: list[str]
    ) -> None:
        """A user's screening answers and what they flagged."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO screenings (user_id, at, answers, contraindications) "
                "VALUES (?, ?, ?, ?)",
                (
                    user_id,
                    now_iso(),
                    json.dumps(answers, sort_keys=True),
                    json.dumps(contraindications),
                ),
            )

    def last_screening(self, user_id: int) -> dict[str, Any] | None:
        """The user's latest screening."""
        row = self._one(
            "SELECT at, answers, contraindications FROM screenings WHERE user_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (user_id,),
        )
        if row is None:
            return None
        return {
            "at": row[0],
            "answers": json.loads(row[1]),
            "contraindications": json.loads(row[2]),
        }

    def add_clearance(
        self, user_id: int, clinician: str, conditions: list[str], note: str = ""
    ) -> None:
        """A clinician cleared the user to invert despite the named conditions."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO clearances (user_id, clinician, at, conditions, note) "
                "VALUES (?, ?, ?, ?, ?)",
                (user_id, clinician, now_iso(), json.dumps(sorted(conditions)), note),
            )

    def clearances(self, user_id: int) -> list[dict[str, Any]]:
        """The user's clearances, newest first."""
        rows = self._all(
            "SELECT clinician, at, conditions, note FROM clearances WHERE user_id = ? "
            "ORDER BY id DESC",
            (user_id,),
        )
        return [
            {"clinician": c, "at": at, "conditions": json.loads(cond), "note": note}
            for c, at, cond, note in rows
        ]

    def plan_step(self, user_id: int) -> tuple[int, str | None]:
        """The user's progression step and when it last changed (0, None: never)."""
        row = self._one("SELECT step, changed_at FROM plans WHERE user_id = ?", (user_id,))
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    def set_plan_step(self, user_id: int, step: int, by: str) -> None:
        """Move the user's plan to ``step``."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO plans (user_id, step, changed_at, changed_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET step = excluded.step, "
                "changed_at = excluded.changed_at, changed_by = excluded.changed_by",
                (user_id, step, now_iso(), by),
            )
