"""The station's store: SQLite in WAL mode, schema versioned with migrations, file mode 0600.

Alarm events are committed (and synced) before anything beyond the station sees them; on the
station, every write goes through one writer thread (:mod:`monitor.store.writer`), which groups
what queued up into one transaction (one fsync) with a savepoint per write. Everything here
is the shell: the core never imports it. Errors are :class:`StoreError` with a message that says
what is wrong with which file, never a bare traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from monitor.core.alarms import AlarmEvent

BUSY_TIMEOUT_S = 2.0

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'clinician', 'owner')),
        profile TEXT NOT NULL DEFAULT 'beginner',
        age REAL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE profiles (
        name TEXT PRIMARY KEY,
        toml TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE screenings (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        at TEXT NOT NULL,
        answers TEXT NOT NULL,
        contraindications TEXT NOT NULL
    );
    CREATE TABLE clearances (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        clinician TEXT NOT NULL,
        at TEXT NOT NULL,
        conditions TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        user_id INTEGER REFERENCES users(id),
        profile TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        end_reason TEXT,
        trace_path TEXT,
        checklist TEXT NOT NULL DEFAULT '{}',
        inverted_s REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE inversions (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        started_at TEXT NOT NULL,
        ended_at TEXT,
        duration_s REAL
    );
    CREATE TABLE alarm_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        station TEXT NOT NULL,
        session_id INTEGER REFERENCES sessions(id),
        at TEXT NOT NULL,
        t REAL NOT NULL,
        alarm TEXT NOT NULL,
        priority TEXT NOT NULL,
        event TEXT NOT NULL,
        value REAL,
        "limit" REAL,
        message TEXT NOT NULL
    );
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (
            kind IN ('acknowledge', 'silence', 'symptom', 'session_start', 'session_end')
        ),
        alarm TEXT,
        by TEXT,
        at TEXT NOT NULL,
        station TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """,
    # 2: trends, pain scores, crash recovery
    """
    CREATE TABLE trends (
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        at TEXT NOT NULL,
        t REAL NOT NULL,
        theta_deg REAL,
        hr_bpm REAL
    );
    CREATE INDEX trends_session ON trends(session_id, t);
    ALTER TABLE sessions ADD COLUMN pain_before INTEGER CHECK (pain_before BETWEEN 0 AND 10);
    ALTER TABLE sessions ADD COLUMN pain_after INTEGER CHECK (pain_after BETWEEN 0 AND 10);
    CREATE TABLE checkpoints (
        station TEXT PRIMARY KEY,
        session_id INTEGER REFERENCES sessions(id),
        at TEXT NOT NULL,
        snapshot TEXT NOT NULL
    );
    CREATE TABLE gaps (
        id INTEGER PRIMARY KEY,
        session_id INTEGER REFERENCES sessions(id),
        station TEXT NOT NULL,
        from_at TEXT NOT NULL,
        to_at TEXT NOT NULL,
        gap_s REAL NOT NULL,
        counted_inverted INTEGER NOT NULL
    );
    CREATE INDEX alarm_events_session ON alarm_events(session_id);
    """,
    # 3: a session prepared (screened, checklist, pain before) before the user starts it
    """
    CREATE TABLE prepared (
        station TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        profile TEXT NOT NULL,
        checklist TEXT NOT NULL,
        pain_before INTEGER CHECK (pain_before BETWEEN 0 AND 10),
        at TEXT NOT NULL
    );
    """,
    # 4: the progression plan's step per user, and station settings (calibration)
    """
    CREATE TABLE plans (
        user_id INTEGER PRIMARY KEY REFERENCES users(id),
        step INTEGER NOT NULL,
        changed_at TEXT NOT NULL,
        changed_by TEXT NOT NULL
    );
    CREATE TABLE settings (
        station TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (station, key)
    );
    """,
    # 5: dashboard login sessions (hashed tokens) and the owner's PIN
    """
    CREATE TABLE pairings (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE TABLE web_sessions (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'user', 'clinician', 'owner')),
        name TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The store cannot be used; the message names the file and the problem."""


def now_iso() -> str:
    """The local wall-clock time with its offset, as the store writes times."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class StoredEvent:
    """An alarm event as committed, with its station-wide sequence number."""

    seq: int
    station: str
    session_id: int | None
    at: str
    event: AlarmEvent


class Database:
    """One SQLite file with a versioned schema. Not thread-safe: one thread owns a connection
    (the station's writes go through its writer thread's own connection).

    Subclasses give their ``migrations``; the file's ``PRAGMA user_version`` says how many
    have been applied.
    """

    migrations: tuple[str, ...] = ()

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        """Open transactions: 0 none, 1 a transaction, more: savepoints inside it."""
        self.before_commit: Callable[[], None] | None = None
        """Called inside each transaction just before COMMIT (tests and the fault bench use it
        to stall or fail the disk, as a slow or full SD card would); None in production."""

    @property
    def schema_version(self) -> int:
        """The newest schema this code knows."""
        return len(self.migrations)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, migrate: bool = True) -> Self:
        """Open (creating, 0600) and migrate the store at ``path``."""
        path = path.expanduser()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                try:
                    os.fchmod(fd, 0o600)  # whatever the umask (SQLite copies it to -wal, -shm)
                finally:
                    os.close(fd)
            elif stat.S_IMODE(path.stat().st_mode) != 0o600:
                os.chmod(path, 0o600)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store: {exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the store: {exc}") from None
        store = cls(conn, path)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: cannot switch the store to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            if migrate:
                store.migrate()
            version = store.version
            if version > store.schema_version:
                raise StoreError(
                    f"{path}: schema version {version} is newer than this Spotter knows "
                    f"({store.schema_version}); upgrade Spotter"
                )
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(_explain(path, exc)) from None
        except StoreError:
            conn.close()
            raise
        return store

    @property
    def version(self) -> int:
        """The schema version in the file."""
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, to: int | None = None) -> None:
        """Apply every migration above the file's version, each in one transaction."""
        current = self.version
        for version in range(current + 1, (self.schema_version if to is None else to) + 1):
            script = self.migrations[version - 1]
            with self._tx():
                for statement in _statements(script):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {version}")

    def intact(self) -> bool:
        """Whether SQLite's own integrity check finds the file sound."""
        return str(self._one("PRAGMA integrity_check")[0]) == "ok"

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A transaction; inside one already open (a writer's group), a savepoint, so one
        failing write rolls back alone and the group's other writes still commit."""
        if self._depth:
            name = f"w{self._depth}"
            self._conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._depth -= 1
            self._conn.execute(f"RELEASE {name}")
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(_explain(self.path, exc)) from None
        self._depth = 1
        try:
            yield self._conn
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            if self.before_commit is not None:
                self.before_commit()
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:  # SQLite may have rolled back already (I/O error)
                self._conn.execute("ROLLBACK")
            raise StoreError(_explain(self.path, exc)) from None
        except BaseException:
            if self._conn.in_transaction:  # never leave the connection inside a transaction
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def group(self) -> Iterator[None]:
        """One transaction around many writes (each its own savepoint): one commit, one fsync
        for everything the writer found queued."""
        with self._tx():
            yield

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, args).fetchall()

    # -- audit (every schema has the table) ----------------------------------------------

    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record a decision or a change: who, what, the details."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                (now_iso(), actor, action, json.dumps(detail, sort_keys=True)),
            )

    def audit_log(self) -> list[dict[str, Any]]:
        """The audit log, oldest first."""
        rows = self._all("SELECT at, actor, action, detail FROM audit ORDER BY id")
        return [
            {"at": at, "actor": actor, "action": action, "detail": json.loads(detail)}
            for at, actor, action, detail in rows
        ]


class Store(Database):
    """A station's store."""

    migrations = MIGRATIONS

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
        return [dict(zip(("kind", "alarm", "by", "at", "station"), r, strict=True)) for r in rows]

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
        for r in rows:
            row = dict(zip(keys, r, strict=True))
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

    def session_max_theta(self, session_id: int) -> float | None:
        """The highest theta of a session's 1 Hz trend."""
        row = self._one("SELECT MAX(theta_deg) FROM trends WHERE session_id = ?", (session_id,))
        return None if row is None or row[0] is None else float(row[0])

    def add_web_session(
        self, token_hash: str, role: str, name: str, csrf: str, expires_at: str
    ) -> None:
        """A dashboard login (the token itself is never stored, only its hash)."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO web_sessions (token_hash, role, name, csrf, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (token_hash, role, name, csrf, now_iso(), expires_at),
            )

    def add_pairing(self, token_hash: str, role: str, name: str, expires_at: str) -> None:
        """A one-time pairing token (hashed), for ``spotter run`` or ``spotter pair``."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO pairings (token_hash, role, name, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash, role, name, expires_at),
            )

    def take_pairing(self, token_hash: str) -> dict[str, Any] | None:
        """Spend a pairing token: it works once."""
        with self._tx() as c:
            row = c.execute(
                "SELECT role, name, expires_at FROM pairings WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            c.execute("DELETE FROM pairings WHERE token_hash = ?", (token_hash,))
        if row is None:
            return None
        return {"role": row[0], "name": row[1], "expires_at": row[2]}

    def web_session(self, token_hash: str) -> dict[str, Any] | None:
        """A dashboard login by its token's hash."""
        row = self._one(
            "SELECT role, name, csrf, expires_at FROM web_sessions WHERE token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        return {"role": row[0], "name": row[1], "csrf": row[2], "expires_at": row[3]}

    def drop_web_session(self, token_hash: str) -> None:
        """Log a dashboard session out."""
        with self._tx() as c:
            c.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))

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
        return dict(zip(("id", "name", "role", "profile", "age", "created_at"), row, strict=True))

    def users(self) -> list[dict[str, Any]]:
        """Every user."""
        rows = self._all("SELECT id, name, role, profile, age, created_at FROM users ORDER BY name")
        return [
            dict(zip(("id", "name", "role", "profile", "age", "created_at"), r, strict=True))
            for r in rows
        ]

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


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _stored(r: Any) -> StoredEvent:
    from monitor.core.alarms import EventKind, Priority

    return StoredEvent(
        seq=r[0],
        station=r[1],
        session_id=r[2],
        at=r[3],
        event=AlarmEvent(r[4], r[5], Priority.parse(r[6]), EventKind(r[7]), r[8], r[9], r[10]),
    )


def _explain(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (
            f"{path}: the store is locked by another process (is another spotter running?): {text}"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"{path}: the store is damaged ({text}); move it aside and Spotter will start a new "
            "one, or restore a backup"
        )
    return f"{path}: {text}"
