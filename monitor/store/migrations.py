"""The station store's schema: one migration per version, applied in order.

A file's ``PRAGMA user_version`` says how many have been applied
(:meth:`monitor.store.database.Database.migrate`). Never edit a shipped migration: add one.
"""

from __future__ import annotations

# 1: the first schema
V1_FIRST_SCHEMA = """
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
    """

# 2: trends, pain scores, crash recovery
V2_TRENDS_PAIN_RECOVERY = """
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
    """

# 3: a session prepared (screened, checklist, pain before) before the user starts it
V3_PREPARED = """
    CREATE TABLE prepared (
        station TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        profile TEXT NOT NULL,
        checklist TEXT NOT NULL,
        pain_before INTEGER CHECK (pain_before BETWEEN 0 AND 10),
        at TEXT NOT NULL
    );
    """

# 4: the progression plan's step per user, and station settings (calibration)
V4_PLANS_SETTINGS = """
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
    """

# 5: dashboard login sessions (hashed tokens) and the owner's PIN
V5_WEB_SESSIONS = """
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
    """

MIGRATIONS: tuple[str, ...] = (
    V1_FIRST_SCHEMA,
    V2_TRENDS_PAIN_RECOVERY,
    V3_PREPARED,
    V4_PLANS_SETTINGS,
    V5_WEB_SESSIONS,
)
SCHEMA_VERSION = len(MIGRATIONS)
