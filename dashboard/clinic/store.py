"""The clinic hub's own store: stations, every alarm event they sent (once each), the hub's
own alarms (``link.lost``), people with roles and hashed passwords, login sessions, the
escalation steps and the audit log.

One schema for both engines: SQLite here (the default, embedded), PostgreSQL in
:mod:`dashboard.clinic.pg`, which runs these same migrations and queries through a small dialect
translation (its only differences: identity keys, double precision, ``%s`` placeholders, the
row lock). The queries below use the subset both engines speak (``ON CONFLICT``,
``RETURNING``, partial unique indexes)."""

from __future__ import annotations

from enum import Enum
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
    # Replicas: the site of each station (a clinic group's central hub), and who sends each
    # escalation step, decided in the database (see HubStore.claim_step).
    """
    ALTER TABLE stations ADD COLUMN site TEXT;
    CREATE TABLE escalation_chases (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        alarm TEXT NOT NULL,
        is_open INTEGER NOT NULL DEFAULT 1,
        handed_to TEXT,
        accepted_by TEXT,
        opened_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX escalation_chases_open ON escalation_chases (station, alarm)
        WHERE is_open = 1;
    CREATE TABLE escalation_claims (
        chase INTEGER NOT NULL REFERENCES escalation_chases (id),
        step TEXT NOT NULL,
        replica TEXT NOT NULL,
        claimed_until REAL NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chase, step)
    );
    """,
)

ROLES = ("viewer", "therapist", "admin")
CLAIM_LEASE_S = 5.0
"""A replica that claimed an escalation step and did not mark it done within this long (it
died mid-send) loses the claim: another replica takes the step over."""


class Claim(Enum):
    """The answer to :meth:`HubStore.claim_step`."""

    MINE = "mine"
    """Send it now, then :meth:`HubStore.step_done`."""
    TAKEN = "taken"
    """Another replica is sending it (its claim is live): ask again later."""
    DONE = "done"
    """It was carried out."""
    ACCEPTED = "accepted"
    """Someone accepted the alarm meanwhile: no more steps."""


class HubStore(Database):
    """The hub's SQLite file."""

    migrations = HUB_MIGRATIONS
    groups_writes = True
    """Whether the hub stores a batch of messages in one transaction (SQLite: one fsync for
    the batch). Not on a shared PostgreSQL: an outage there is waited out message by
    message, so none is rolled back after the hub acted on it."""
    lock_row = ""
    """What a ``SELECT`` appends to lock the rows it reads until the transaction ends (SQLite:
    nothing, ``BEGIN IMMEDIATE`` already holds the one write lock)."""
    now_s_sql = "((julianday('now') - 2440587.5) * 86400.0)"
    """The database's own clock in Unix seconds: claims expire on one clock for all replicas."""

    # -- stations and their events ---------------------------------------------------------

    def seen(self, station: str, status: str | None = None, site: str | None = None) -> None:
        """A station was heard from (and maybe its status changed; ``site``: through which
        site's bridge, at a clinic group's central hub)."""
        now = now_iso()
        with self._tx() as c:
            c.execute(
                "INSERT INTO stations (name, first_seen, last_seen, status, site) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen, "
                "status = COALESCE(?, stations.status), site = COALESCE(?, stations.site)",
                (station, now, now, status or "unknown", site, status, site),
            )

    def stations(self) -> list[dict[str, Any]]:
        """Every station the hub has heard of."""
        rows = self._all(
            "SELECT name, first_seen, last_seen, status, site FROM stations ORDER BY name"
        )
        keys = ("name", "first_seen", "last_seen", "status", "site")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def add_station_event(self, station: str, seq: int, at: str | None, event: AlarmEvent) -> bool:
        """Record a station's alarm event once; False if this seq was already recorded."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO station_events (station, seq, received_at, at, t, alarm, "
                'priority, event, value, "limit", message) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (station, seq) DO NOTHING",
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
        """One of the hub's own alarm events (``link.lost``); its row id."""
        with self._tx() as c:
            row = c.execute(
                'INSERT INTO hub_events (station, at, alarm, priority, event, value, "limit", '
                "message) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
            ).fetchone()
            return int(row[0])

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
        except Exception as exc:  # the name is taken (SQLite's or PostgreSQL's words for it)
            if "UNIQUE" in str(exc) or "duplicate key" in str(exc):
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

    # -- who sends each escalation step (replicas) ------------------------------------------

    def claim_step(
        self,
        station: str,
        alarm: str,
        step: str,
        replica: str,
        handed_to: str | None = None,
        lease_s: float = CLAIM_LEASE_S,
    ) -> Claim:
        """May ``replica`` take this step of the escalation of ``alarm`` (its open chase,
        opened here if none is)? Decided in one transaction that locks the chase's row, so
        of several replicas asking at once exactly one gets :attr:`Claim.MINE`; a claim not
        marked done within ``lease_s`` (its replica died mid-send) is given to the next who
        asks. ``handed_to``: the person the escalation now lies with (a hand-on)."""
        with self._tx() as c:
            chase = self._open_chase(c, station, alarm)
            row = c.execute(
                "SELECT accepted_by FROM escalation_chases WHERE id = ?" + self.lock_row,
                (chase,),
            ).fetchone()
            if row[0] is not None:
                return Claim.ACCEPTED
            claim = c.execute(
                f"SELECT done, claimed_until < {self.now_s_sql} FROM escalation_claims "
                "WHERE chase = ? AND step = ?",
                (chase, step),
            ).fetchone()
            if claim is None:
                c.execute(
                    "INSERT INTO escalation_claims (chase, step, replica, claimed_until) "
                    f"VALUES (?, ?, ?, {self.now_s_sql} + ?)",
                    (chase, step, replica, lease_s),
                )
            elif claim[0]:
                return Claim.DONE
            elif not claim[1]:
                return Claim.TAKEN
            else:
                c.execute(
                    "UPDATE escalation_claims SET replica = ?, "
                    f"claimed_until = {self.now_s_sql} + ? WHERE chase = ? AND step = ?",
                    (replica, lease_s, chase, step),
                )
            if handed_to is not None:
                c.execute(
                    "UPDATE escalation_chases SET handed_to = ? WHERE id = ?", (handed_to, chase)
                )
            return Claim.MINE

    def step_done(self, station: str, alarm: str, step: str) -> None:
        """The claimed step was carried out (sent, or recorded): never again."""
        with self._tx() as c:
            c.execute(
                "UPDATE escalation_claims SET done = 1 WHERE step = ? AND chase = (SELECT id "
                "FROM escalation_chases WHERE station = ? AND alarm = ? AND is_open = 1)",
                (step, station, alarm),
            )

    def accept_chase(self, station: str, alarm: str, person: str) -> bool:
        """``person`` took the alarm: every replica stops escalating it. False if it has no
        open escalation or someone took it already."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE escalation_chases SET accepted_by = ? WHERE station = ? AND alarm = ? "
                "AND is_open = 1 AND accepted_by IS NULL",
                (person, station, alarm),
            )
            return cur.rowcount == 1

    def close_chase(self, station: str, alarm: str) -> bool:
        """The alarm ended (acknowledged or resolved): True for the one replica that closed
        its escalation (and records that step)."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE escalation_chases SET is_open = 0 WHERE station = ? AND alarm = ? "
                "AND is_open = 1",
                (station, alarm),
            )
            return cur.rowcount == 1

    def open_chases(self) -> dict[tuple[str, str], tuple[str | None, str | None]]:
        """Every open escalation: (station, alarm) -> (handed to, accepted by)."""
        rows = self._all(
            "SELECT station, alarm, handed_to, accepted_by FROM escalation_chases WHERE is_open = 1"
        )
        return {(s, a): (h, b) for s, a, h, b in rows}

    def _open_chase(self, c: Any, station: str, alarm: str) -> int:
        c.execute(
            "INSERT INTO escalation_chases (station, alarm, opened_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (station, alarm, now_iso()),
        )
        row = c.execute(
            "SELECT id FROM escalation_chases WHERE station = ? AND alarm = ? AND is_open = 1",
            (station, alarm),
        ).fetchone()
        return int(row[0])
