"""The alarm log: alarm events committed durably (with a station-wide sequence number) before
anything beyond the station sees them, and the actions taken on them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from monitor.core.alarms import AlarmEvent
from monitor.store.database import Database, as_dicts, now_iso


@dataclass(frozen=True)
class StoredEvent:
    """An alarm event as committed, with its station-wide sequence number."""

    seq: int
    station: str
    session_id: int | None
    at: str
    event: AlarmEvent


class AlarmLog(Database):
    """The alarm events and actions of a station's store."""

    # -- alarms ----------------------------------------------------------------------------

    def commit_events(
        self,
        station: str,
        session_id: int | None,
        events: Iterable[AlarmEvent],
        at: str | None = None,
    ) -> list[int]:
        """Commit alarm events durably; returns their sequence numbers. Call before anything
        beyond the station sees them. ``at``: when they happened (default: now)."""
        at = at or now_iso()
        seqs: list[int] = []
        with self._tx() as c:
            for e in events:
                cur = c.execute(
                    "INSERT INTO alarm_events (station, session_id, at, t, alarm, priority, event, "
                    'value, "limit", message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                    (
                        station,
                        session_id,
                        at,
                        e.t,
                        e.id,
                        e.priority.label,
                        e.event.value,
                        e.value,
                        e.limit,
                        e.message,
                    ),
                )
                seqs.append(int(cur.lastrowid or 0))
        return seqs

    def events_since(self, seq: int = 0, limit: int = 10_000) -> list[StoredEvent]:
        """Committed events after ``seq``, oldest first."""
        rows = self._all(
            'SELECT seq, station, session_id, at, t, alarm, priority, event, value, "limit", '
            "message FROM alarm_events WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [_stored(r) for r in rows]

    def session_events(self, session_id: int) -> list[StoredEvent]:
        """Every alarm event of a session, oldest first."""
        rows = self._all(
            'SELECT seq, station, session_id, at, t, alarm, priority, event, value, "limit", '
            "message FROM alarm_events WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        return [_stored(r) for r in rows]

    def record_action(self, station: str, kind: str, alarm: str | None, by: str | None) -> None:
        """Who acknowledged or silenced what, when (and STOP presses, session starts/ends)."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO actions (kind, alarm, by, at, station) VALUES (?, ?, ?, ?, ?)",
                (kind, alarm, by, now_iso(), station),
            )

    def actions(self) -> list[dict[str, Any]]:
        """Every recorded action, oldest first."""
        rows = self._all("SELECT kind, alarm, by, at, station FROM actions ORDER BY id")
        return as_dicts(("kind", "alarm", "by", "at", "station"), rows)


def _stored(r: Any) -> StoredEvent:
    from monitor.core.alarms import EventKind, Priority

    return StoredEvent(
        seq=r[0],
        station=r[1],
        session_id=r[2],
        at=r[3],
        event=AlarmEvent(r[4], r[5], Priority.parse(r[6]), EventKind(r[7]), r[8], r[9], r[10]),
    )
