"""The station's store: one SQLite file with every concern of the station (alarm log, sessions
and trends, people), its schema (:mod:`monitor.store.migrations`) and station settings."""

from __future__ import annotations

import json
from typing import Any

from monitor.store.alarm_log import AlarmLog
from monitor.store.database import now_iso
from monitor.store.migrations import MIGRATIONS
from monitor.store.people import People
from monitor.store.sessions import Sessions


class Store(AlarmLog, Sessions, People):
    """A station's store."""

    migrations = MIGRATIONS

    # -- station settings ------------------------------------------------------------------

    def set_setting(self, station: str, key: str, value: Any) -> None:
        """A station setting (e.g. its calibration), as JSON."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO settings (station, key, value, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (station, key) DO UPDATE SET value = excluded.value, at = excluded.at",
                (station, key, json.dumps(value), now_iso()),
            )

    def setting(self, station: str, key: str) -> Any:
        """A station setting, or None."""
        row = self._one("SELECT value FROM settings WHERE station = ? AND key = ?", (station, key))
        return None if row is None else json.loads(row[0])
