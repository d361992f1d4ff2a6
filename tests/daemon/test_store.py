"""The store: migrations, file mode, clear errors for a damaged or locked file."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from monitor.core.alarms import AlarmEvent, EventKind, Priority
from monitor.store.database import StoreError, _statements
from monitor.store.migrations import MIGRATIONS, SCHEMA_VERSION
from monitor.store.station_store import Store


def event(t: float, kind: EventKind = EventKind.RAISED) -> AlarmEvent:
    return AlarmEvent(t, "inversion.hold_limit", Priority.MEDIUM, kind, 60.0, 60.0, "Inverted")


def first_schema(path: Path) -> None:
    """A store as the first version of Spotter left it, with some data in it."""
    conn = sqlite3.connect(path)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO users (name, role, profile, created_at) VALUES ('anna', 'user', 'beginner', 'x')"
    )
    conn.execute(
        "INSERT INTO sessions (station, profile, started_at, ended_at, inverted_s) "
        "VALUES ('home', 'beginner', '2026-01-01T10:00:00+00:00', '2026-01-01T10:10:00+00:00', 120)"
    )
    conn.execute(
        "INSERT INTO alarm_events (station, session_id, at, t, alarm, priority, event, message) "
        "VALUES ('home', 1, 'x', 62.0, 'inversion.hold_limit', 'medium', 'raised', 'Inverted')"
    )
    conn.commit()
    conn.close()


def test_a_new_store_is_private_wal_and_current(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "deep" / "spotter.db")
    try:
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        assert store.version == SCHEMA_VERSION
        assert store._one("PRAGMA journal_mode")[0] == "wal"
    finally:
        store.close()


def test_migrations_from_the_first_schema_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "spotter.db"
    first_schema(path)
    store = Store.open(path)
    try:
        assert store.version == SCHEMA_VERSION
        assert store.user("anna") is not None
        (session,) = store.sessions()
        assert session["inverted_s"] == 120
        assert session["pain_before"] is None  # a column migration 2 added
        assert [e.event.t for e in store.events_since(0)] == [62.0]
        store.set_pain(session["id"], before=4, after=2)
        assert store.session(session["id"])["pain_after"] == 2  # type: ignore[index]
    finally:
        store.close()


def test_a_loose_file_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "spotter.db"
    Store.open(path).close()
    path.chmod(0o644)
    Store.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "spotter.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    message = str(info.value)
    assert str(path) in message
    assert "damaged" in message
    assert "move it aside" in message


def test_a_locked_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "spotter.db"
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = Store.open(path, migrate=False)
        with pytest.raises(StoreError, match="locked by another process"):
            store.commit_events("home", None, [event(1.0)])
        store.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spotter.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this Spotter knows"):
        Store.open(path)


def test_events_get_sequence_numbers_and_read_back(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "spotter.db")
    try:
        seqs = store.commit_events("home", None, [event(1.0), event(2.0, EventKind.CLEARED)])
        assert seqs == [1, 2]
        later = store.events_since(1)
        assert [(e.seq, e.event.event) for e in later] == [(2, EventKind.CLEARED)]
        assert later[0].event == event(2.0, EventKind.CLEARED)
    finally:
        store.close()


def test_pain_scores_are_0_to_10(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "spotter.db")
    try:
        sid = store.open_session("home", "beginner")
        with pytest.raises(ValueError, match="outside 0-10"):
            store.set_pain(sid, before=11)
    finally:
        store.close()
