"""Sessions and trends: sessions, inversions, 1 Hz trends, crash-recovery checkpoints and
gaps, and the session prepared before the user starts it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.store.database import Database, as_dicts, now_iso


class Sessions(Database):
    """The sessions and trends of a station's store."""

    # -- sessions, inversions, trends, gaps ------------------------------------------------

    def open_session(
        self,
        station: str,
        profile: str,
        user_id: int | None = None,
        trace_path: str | None = None,
        checklist: dict[str, bool] | None = None,
        pain_before: int | None = None,
        started_at: str | None = None,
    ) -> int:
        """A session began; returns its id."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO sessions (station, user_id, profile, started_at, trace_path, "
                "checklist, pain_before) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    station,
                    user_id,
                    profile,
                    started_at or now_iso(),
                    trace_path,
                    json.dumps(checklist or {}),
                    pain_before,
                ),
            )
            return int(cur.lastrowid or 0)

    def claim_session(
        self,
        session_id: int,
        user_id: int,
        checklist: dict[str, bool],
        pain_before: int | None,
    ) -> None:
        """A guided start for a session that already runs (it started itself when the user
        inverted): it becomes the user's, with their checklist and pain score."""
        if pain_before is not None and not 0 <= pain_before <= 10:
            raise ValueError(f"pain score {pain_before} outside 0-10")
        with self._tx() as c:
            c.execute(
                "UPDATE sessions SET user_id = ?, checklist = ?, "
                "pain_before = COALESCE(?, pain_before) WHERE id = ?",
                (user_id, json.dumps(checklist), pain_before, session_id),
            )

    def close_session(self, session_id: int, inverted_s: float, reason: str) -> None:
        """A session ended."""
        with self._tx() as c:
            c.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ?, inverted_s = ? WHERE id = ?",
                (now_iso(), reason, inverted_s, session_id),
            )
            c.execute("DELETE FROM checkpoints WHERE session_id = ?", (session_id,))

    def set_pain(
        self, session_id: int, *, before: int | None = None, after: int | None = None
    ) -> None:
        """Log a pain score (0-10) before or after a session."""
        for value in (before, after):
            if value is not None and not 0 <= value <= 10:
                raise ValueError(f"pain score {value} outside 0-10")
        with self._tx() as c:
            if before is not None:
                c.execute("UPDATE sessions SET pain_before = ? WHERE id = ?", (before, session_id))
            if after is not None:
                c.execute("UPDATE sessions SET pain_after = ? WHERE id = ?", (after, session_id))

    def start_inversion(self, session_id: int, started_at: str | None = None) -> int:
        """The user inverted; returns the inversion's id."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO inversions (session_id, started_at) VALUES (?, ?)",
                (session_id, started_at or now_iso()),
            )
            return int(cur.lastrowid or 0)

    def end_inversion(self, inversion_id: int, duration_s: float) -> None:
        """The user came up."""
        with self._tx() as c:
            c.execute(
                "UPDATE inversions SET ended_at = ?, duration_s = ? WHERE id = ?",
                (now_iso(), duration_s, inversion_id),
            )

    def add_trends(
        self,
        session_id: int,
        rows: Sequence[tuple[str, float, float | None, float | None]],
        inverted_s: float | None = None,
    ) -> None:
        """1 Hz samples: (wall time, station t, theta, HR); and, in the same transaction, the
        running session's inverted time so far (history shows it before the session ends)."""
        with self._tx() as c:
            c.executemany(
                "INSERT INTO trends (session_id, at, t, theta_deg, hr_bpm) VALUES (?, ?, ?, ?, ?)",
                [(session_id, *row) for row in rows],
            )
            if inverted_s is not None:
                c.execute(
                    "UPDATE sessions SET inverted_s = ? WHERE id = ?", (inverted_s, session_id)
                )

    def trends(self, session_id: int) -> list[tuple[str, float, float | None, float | None]]:
        """A session's trend samples, oldest first."""
        return [
            (r[0], r[1], r[2], r[3])
            for r in self._all(
                "SELECT at, t, theta_deg, hr_bpm FROM trends WHERE session_id = ? ORDER BY t",
                (session_id,),
            )
        ]

    def checkpoint(
        self,
        station: str,
        session_id: int | None,
        snapshot: dict[str, Any],
        at: str | None = None,
    ) -> None:
        """Save what a restarted daemon needs to resume (every second while a session runs);
        ``at`` is when the snapshot was taken (default: now), which recovery's gap counts from."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO checkpoints (station, session_id, at, snapshot) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (station) DO UPDATE SET session_id = excluded.session_id, "
                "at = excluded.at, snapshot = excluded.snapshot",
                (station, session_id, at or now_iso(), json.dumps(snapshot)),
            )

    def last_checkpoint(self, station: str) -> tuple[int | None, str, dict[str, Any]] | None:
        """The latest checkpoint of a station: (session id, wall time, snapshot)."""
        row = self._one(
            "SELECT session_id, at, snapshot FROM checkpoints WHERE station = ?", (station,)
        )
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2])

    def clear_checkpoint(self, station: str) -> None:
        """The station stopped cleanly with no session open."""
        with self._tx() as c:
            c.execute("DELETE FROM checkpoints WHERE station = ?", (station,))

    def add_gap(
        self,
        station: str,
        session_id: int | None,
        from_at: str,
        to_at: str,
        gap_s: float,
        counted_inverted: bool,
    ) -> None:
        """The daemon was down from ``from_at`` to ``to_at``."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO gaps (session_id, station, from_at, to_at, gap_s, counted_inverted) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, station, from_at, to_at, gap_s, int(counted_inverted)),
            )

    def gaps(self, session_id: int) -> list[dict[str, Any]]:
        """Recorded outages of a session."""
        rows = self._all(
            "SELECT from_at, to_at, gap_s, counted_inverted FROM gaps WHERE session_id = ? "
            "ORDER BY id",
            (session_id,),
        )
        return [
            {"from_at": a, "to_at": b, "gap_s": g, "counted_inverted": bool(c)}
            for a, b, g, c in rows
        ]

    def session(self, session_id: int) -> dict[str, Any] | None:
        """One session's row."""
        rows = self.sessions(where="s.id = ?", args=(session_id,))
        return rows[0] if rows else None

    def sessions(
        self, where: str = "1 = 1", args: Sequence[Any] = (), limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Sessions, newest first, with their alarm counts and inversions."""
        rows = self._all(
            "SELECT s.id, s.station, s.user_id, u.name, s.profile, s.started_at, s.ended_at, "
            "s.end_reason, s.trace_path, s.checklist, s.inverted_s, s.pain_before, s.pain_after, "
            "(SELECT COUNT(*) FROM inversions i WHERE i.session_id = s.id), "
            "(SELECT COUNT(*) FROM alarm_events a "
            "WHERE a.session_id = s.id AND a.event = 'raised') "
            f"FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE {where} "
            "ORDER BY s.id DESC LIMIT ?",
            (*args, limit),
        )
        keys = (
            "id",
            "station",
            "user_id",
            "user",
            "profile",
            "started_at",
            "ended_at",
            "end_reason",
            "trace_path",
            "checklist",
            "inverted_s",
            "pain_before",
            "pain_after",
            "inversions",
            "alarms_raised",
        )
        out = []
        for row in as_dicts(keys, rows):
            row["checklist"] = json.loads(row["checklist"])
            out.append(row)
        return out

    def open_sessions(self, station: str) -> list[dict[str, Any]]:
        """Sessions of a station that never ended (a crash, or a power cut)."""
        return self.sessions(where="s.station = ? AND s.ended_at IS NULL", args=(station,))

    def inverted_today_s(self, station: str, day_start_iso: str) -> float:
        """Inverted time in inversions that ended since the local day began."""
        row = self._one(
            "SELECT COALESCE(SUM(i.duration_s), 0) FROM inversions i JOIN sessions s "
            "ON s.id = i.session_id WHERE s.station = ? AND i.ended_at >= ?",
            (station, day_start_iso),
        )
        return float(row[0])

    def prepare(
        self,
        station: str,
        user_id: int,
        profile: str,
        checklist: dict[str, bool],
        pain_before: int | None,
    ) -> None:
        """A screened, checked session waits for the user to start it at ``station``."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO prepared (station, user_id, profile, checklist, pain_before, at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (station) DO UPDATE SET "
                "user_id = excluded.user_id, profile = excluded.profile, "
                "checklist = excluded.checklist, pain_before = excluded.pain_before, "
                "at = excluded.at",
                (station, user_id, profile, json.dumps(checklist), pain_before, now_iso()),
            )

    def take_prepared(self, station: str, max_age_s: float) -> dict[str, Any] | None:
        """The session prepared at ``station`` (if recent enough), removed from the queue."""
        with self._tx() as c:
            row = c.execute(
                "SELECT user_id, profile, checklist, pain_before, at FROM prepared "
                "WHERE station = ?",
                (station,),
            ).fetchone()
            c.execute("DELETE FROM prepared WHERE station = ?", (station,))
        if row is None:
            return None
        age = (datetime.now().astimezone() - datetime.fromisoformat(row[4])).total_seconds()
        if age > max_age_s:
            return None
        return {
            "user_id": row[0],
            "profile": row[1],
            "checklist": json.loads(row[2]),
            "pain_before": row[3],
            "at": row[4],
        }

    def session_max_theta(self, session_id: int) -> float | None:
        """The highest theta of a session's 1 Hz trend."""
        row = self._one("SELECT MAX(theta_deg) FROM trends WHERE session_id = ?", (session_id,))
        return None if row is None or row[0] is None else float(row[0])
