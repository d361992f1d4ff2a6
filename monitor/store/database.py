"""The station's store: SQLite in WAL mode, schema versioned with migrations, file mode 0600.

Alarm events are committed (and synced) before anything beyond the station sees them; on the
station, every write goes through one writer thread (:mod:`monitor.store.writer`), which groups
what queued up into one transaction (one fsync) with a savepoint per write. Everything here
is the shell: the core never imports it. Errors are :class:`StoreError` with a message that says
what is wrong with which file, never a bare traceback.

This module is the versioned database itself (:class:`Database`: opening, migrating,
transactions, the audit log every schema has) and the one row-to-dict helper. The station's
tables are split by concern: :mod:`monitor.store.migrations` (the schema),
:mod:`monitor.store.alarm_log`, :mod:`monitor.store.sessions`, :mod:`monitor.store.people`,
assembled as :class:`monitor.store.station_store.Store`; the dashboard's pairings and login
sessions live in :mod:`dashboard.pairing_store`, over the same file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Self

BUSY_TIMEOUT_S = 2.0


class StoreError(RuntimeError):
    """The store cannot be used; the message names the file and the problem."""


def now_iso() -> str:
    """The local wall-clock time with its offset, as the store writes times."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def as_dict(keys: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A row as a dict, by column names given in the SELECT's order (the one row-to-dict)."""
    return dict(zip(keys, row, strict=True))


def as_dicts(keys: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as dicts, by column names given in the SELECT's order."""
    return [as_dict(keys, r) for r in rows]


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

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A transaction (a savepoint inside one already open): for stores over this file
        outside this package (the dashboard's pairings)."""
        return self._tx()

    def fetch_one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """One row of a query, or None."""
        return self._one(sql, args)

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


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


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
