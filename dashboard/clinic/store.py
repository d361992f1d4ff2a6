"""The clinic hub's own store: stations, every alarm event they sent (once each), the hub's
own alarms (``link.lost``), people with roles and hashed passwords, login sessions, the
escalation steps and the audit log."""

from __future__ import annotations

from typing import Any

from monitor.core.alarms import AlarmEvent
from monitor.store.database import Database, StoreError, now_iso

HUB_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE stations (
        name TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'unknown'
    );
    CREATE TABLE station_events (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        seq INTEGER NOT NULL,
        received_at TEXT NOT NULL,
        at TEXT,
        t REAL NOT NULL,
        alarm TEXT NOT NULL,
        priority TEXT NOT NULL,
        event TEXT NOT NULL,
        value REAL,
        "limit" REAL,
        message TEXT NOT NULL,
        UNIQUE (station, seq)
    );
    CREATE TABLE hub_events (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        at TEXT NOT NULL,
        alarm TEXT NOT NULL,
        priority TEXT NOT NULL,
        event TEXT NOT NULL,
        value REAL,
        "limit" REAL,
        message TEXT NOT NULL
    );
    CREATE TABLE people (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'therapist', 'admin')),
        password_hash TEXT NOT NULL,
        push_url TEXT,
        escalation_rank INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE TABLE logins (
        token_hash TEXT PRIMARY KEY,
        name TEXT NOT NULL REFERENCES people(name),
        csrf TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE TABLE escalations (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        alarm TEXT NOT NULL,
        priority TEXT NOT NULL,
        person TEXT NOT NULL,
        step TEXT NOT NULL,
        at TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """,
)

ROLES = ("viewer", "therapist", "admin")


class HubStore(Database):
    """The hub's SQLite file."""

    migrations = HUB_MIGRATIONS

    # -- stations and their events ---------------------------------------------------------

    def seen(self, station: str, status: str | None = None) -> None:
        """A station was heard from (and maybe its status changed)."""
        now = now_iso()
        with self._tx() as c:
            c.execute(
                "INSERT INTO stations (name, first_seen, last_seen, status) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen, "
                "status = COALESCE(?, stations.status)",
                (station, now, now, status or "unknown", status),
            )

    def stations(self) -> list[dict[str, Any]]:
        """Every station the hub has heard of."""
        rows = self._all("SELECT name, first_seen, last_seen, status FROM stations ORDER BY name")
        return [
            dict(zip(("name", "first_seen", "last_seen", "status"), r, strict=True)) for r in rows
        ]

    def add_station_event(self, station: str, seq: int, at: str | None, event: AlarmEvent) -> bool:
        """Record a station's alarm event once; False if this seq was already recorded."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO station_events (station, seq, received_at, at, t, alarm, "
                'priority, event, value, "limit", message) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    station,
                    seq,
                    now_iso(),
                    at,
                    event.t,
                    event.id,
                    event.priority.label,
                    event.event.value,
                    event.value,
                    event.limit,
                    event.message,
                ),
            )
            return cur.rowcount == 1

    def last_seq(self, station: str) -> int:
        """The highest seq recorded from a station (0: none)."""
        row = self._one("SELECT MAX(seq) FROM station_events WHERE station = ?", (station,))
        return 0 if row is None or row[0] is None else int(row[0])

    def station_events(
        self, station: str | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """Recorded station events, oldest first."""
        where, args = ("WHERE station = ?", (station,)) if station else ("", ())
        rows = self._all(
            'SELECT id, station, seq, received_at, at, t, alarm, priority, event, value, "limit", '
            f"message FROM station_events {where} ORDER BY id LIMIT ?",
            (*args, limit),
        )
        keys = (
            "id",
            "station",
            "seq",
            "received_at",
            "at",
            "t",
            "id_alarm",
            "priority",
            "event",
            "value",
            "limit",
            "message",
        )
        out = []
        for r in rows:
            row = dict(zip(keys, r, strict=True))
            row["alarm"] = row.pop("id_alarm")
            out.append(row)
        return out

    def add_hub_event(self, station: str, event: AlarmEvent) -> int:
        """One of the hub's own alarm events (``link.lost``)."""
        with self._tx() as c:
            cur = c.execute(
                'INSERT INTO hub_events (station, at, alarm, priority, event, value, "limit", '
                "message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    station,
                    now_iso(),
                    event.id,
                    event.priority.label,
                    event.event.value,
                    event.value,
                    event.limit,
                    event.message,
                ),
            )
            return int(cur.lastrowid or 0)

    def hub_events(self) -> list[dict[str, Any]]:
        """The hub's own alarm events, oldest first."""
        rows = self._all(
            'SELECT station, at, alarm, priority, event, value, "limit", message FROM hub_events '
            "ORDER BY id"
        )
        keys = ("station", "at", "alarm", "priority", "event", "value", "limit", "message")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def event_log(self, offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        """The event log of the central page: the stations' alarm events and the hub's own,
        newest first (by when the hub recorded them), ``limit`` from ``offset``."""
        rows = self._all(
            "SELECT 'alarm' AS kind, id, station, seq, received_at, at, alarm, priority, event, "
            "message FROM station_events UNION ALL "
            "SELECT 'hub_alarm' AS kind, id, station, NULL, at, at, alarm, priority, event, "
            "message FROM hub_events ORDER BY received_at DESC, kind, id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        keys = ("kind", "row", "station", "seq", "received_at", "at", "id", "priority", "event")
        return [dict(zip((*keys, "message"), r, strict=True)) for r in rows]

    # -- people ----------------------------------------------------------------------------

    def add_person(
        self,
        name: str,
        role: str,
        password_hash: str,
        push_url: str | None = None,
        escalation_rank: int | None = None,
    ) -> None:
        """A person who may log in to the hub."""
        if role not in ROLES:
            raise StoreError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        try:
            with self._tx() as c:
                c.execute(
                    "INSERT INTO people (name, role, password_hash, push_url, escalation_rank, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (name, role, password_hash, push_url, escalation_rank, now_iso()),
                )
        except Exception as exc:  # sqlite3.IntegrityError: the name is taken
            if "UNIQUE" in str(exc):
                raise StoreError(f"a person named {name!r} exists") from None
            raise

    def person(self, name: str) -> dict[str, Any] | None:
        """A person by name (with the password hash)."""
        row = self._one(
            "SELECT name, role, password_hash, push_url, escalation_rank FROM people "
            "WHERE name = ?",
            (name,),
        )
        if row is None:
            return None
        return dict(
            zip(("name", "role", "password_hash", "push_url", "escalation_rank"), row, strict=True)
        )

    def people(self) -> list[dict[str, Any]]:
        """Everyone, without password hashes."""
        rows = self._all(
            "SELECT name, role, push_url IS NOT NULL, escalation_rank, created_at FROM people "
            "ORDER BY name"
        )
        keys = ("name", "role", "has_push", "escalation_rank", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def escalation_list(self) -> list[dict[str, Any]]:
        """Therapists with a push target, in escalation order."""
        rows = self._all(
            "SELECT name, push_url FROM people WHERE role IN ('therapist', 'admin') AND "
            "push_url IS NOT NULL AND escalation_rank IS NOT NULL ORDER BY escalation_rank, name"
        )
        return [{"name": n, "push_url": u} for n, u in rows]

    def add_login(self, token_hash: str, name: str, csrf: str, expires_at: str) -> None:
        """A login session (token hashed)."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO logins (token_hash, name, csrf, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_hash, name, csrf, now_iso(), expires_at),
            )

    def login(self, token_hash: str) -> dict[str, Any] | None:
        """A login session and its person's role."""
        row = self._one(
            "SELECT l.name, p.role, l.csrf, l.expires_at FROM logins l JOIN people p "
            "ON p.name = l.name WHERE l.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        return dict(zip(("name", "role", "csrf", "expires_at"), row, strict=True))

    def drop_login(self, token_hash: str) -> None:
        """End a login session."""
        with self._tx() as c:
            c.execute("DELETE FROM logins WHERE token_hash = ?", (token_hash,))

    # -- escalation and audit --------------------------------------------------------------

    def escalation_step(
        self, station: str, alarm: str, priority: str, person: str, step: str, detail: str = ""
    ) -> None:
        """One step of an escalation: sent, accepted, rejected, timed out."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO escalations (station, alarm, priority, person, step, at, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (station, alarm, priority, person, step, now_iso(), detail),
            )

    def escalations(self) -> list[dict[str, Any]]:
        """Every escalation step, oldest first."""
        rows = self._all(
            "SELECT station, alarm, priority, person, step, at, detail FROM escalations ORDER BY id"
        )
        keys = ("station", "alarm", "priority", "person", "step", "at", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]
