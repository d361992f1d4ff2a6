"""The station's record in the store: alarm events (committed before anyone sees them),
sessions and inversions, who did what, 1 Hz trends, and the checkpoints that let a restarted
daemon resume an open session after a crash or a power cut.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from monitor.core.alarms import AlarmEvent
from monitor.core.engine import SafetyCore, restore, snapshot
from monitor.core.session import Phase, PhaseChange
from monitor.core.trace import InputKind
from monitor.station.recorder import TraceRecorder
from monitor.store.database import now_iso
from monitor.store.station_store import Store
from monitor.store.writer import InlineWriter, Writer

log = logging.getLogger(__name__)
TREND_EVERY_S = 1.0
PREPARED_MAX_AGE_S = 1800.0
"""A session prepared (screened, checklist) this long ago still applies when the user starts."""
TREND_ROWS_MAX = 3600
"""Trend rows one waiting 1 Hz write may hold (an hour); older ones are dropped, counted."""

TrendRow = tuple[str, float, float | None, float | None]


class _Open:
    """What is open in the store: the session and inversion ids. Only jobs (the writer
    thread) touch it, so a write queued before the session's row exists still finds its id
    when it runs."""

    def __init__(self) -> None:
        self.session_id: int | None = None
        self.inversion_id: int | None = None


class _Second:
    """The 1 Hz write: trend rows and the running session's inverted time, then the checkpoint
    (or its removal). Coalescing: a newer one waiting behind it is absorbed."""

    def __init__(
        self,
        station: str,
        ids: _Open,
        trends: list[TrendRow],
        inverted_s: float | None,
        checkpoint: tuple[str, dict[str, Any]] | None,
        clear: bool,
    ) -> None:
        self.station = station
        self.ids = ids
        self.trends = trends
        self.inverted_s = inverted_s
        self.checkpoint = checkpoint
        self.clear = clear
        self.dropped_rows = 0

    def absorb(self, newer: Any) -> bool:
        if not isinstance(newer, _Second) or newer.ids is not self.ids:
            return False
        self.trends.extend(newer.trends)
        excess = len(self.trends) - TREND_ROWS_MAX
        if excess > 0:
            del self.trends[:excess]
            self.dropped_rows += excess
        if newer.inverted_s is not None:
            self.inverted_s = newer.inverted_s
        self.checkpoint, self.clear = newer.checkpoint, newer.clear
        return True

    def __call__(self, store: Store) -> None:
        session_id = self.ids.session_id
        if self.dropped_rows:
            log.error("store behind: %d trend samples dropped", self.dropped_rows)
        if session_id is not None and self.trends:
            store.add_trends(session_id, self.trends, self.inverted_s)
        if self.checkpoint is not None:
            at, snap = self.checkpoint
            snap["journal"]["session_id"] = session_id
            snap["journal"]["inversion_id"] = self.ids.inversion_id
            store.checkpoint(self.station, session_id, snap, at)
        elif self.clear:
            store.clear_checkpoint(self.station)


class Journal:
    """Writes one station's life into the store, through a writer (see monitor.store.writer):
    the threaded one on a running station, so the safety loop never waits on the disk; by
    default an inline one, for tools and tests that have no station running."""

    def __init__(
        self,
        store: Store,
        station: str,
        core: SafetyCore,
        recorder: TraceRecorder | None = None,
        writer: Writer | None = None,
    ) -> None:
        self.store = store
        """The loop's own connection: for reads (WAL: never blocked by the writer)."""
        self.station = station
        self.core = core
        self.recorder = recorder
        self.writer: Writer = writer if writer is not None else InlineWriter(store)
        self._ids = _Open()
        self.session_id: int | None = None
        """The open session's id once its row is committed (the loop's view)."""
        self.session_user: str | None = None
        """The name of the user whose session runs, if it was a guided start."""
        self.session_started_at: str | None = None
        """The open session's ``started_at`` as the store has it (what history shows)."""
        self._in_session = False
        self._inversion_start_t: float | None = None
        self._next_second = float("-inf")
        self._checkpointed = False

    # -- alarm events: first ---------------------------------------------------------------

    def commit(
        self,
        events: Sequence[AlarmEvent],
        done: Callable[[list[int]], None] | None = None,
        failed: Callable[[Exception], None] | None = None,
    ) -> None:
        """Queue alarm events for a durable commit; ``done(seqs)`` runs once they are on disk
        (only then may they go beyond the station), ``failed(error)`` if they could not be."""
        station, ids, at, batch = self.station, self._ids, now_iso(), list(events)

        def job(store: Store) -> list[int]:
            return store.commit_events(station, ids.session_id, batch, at)

        self.writer.submit(job, done, failed)

    # -- phase changes ---------------------------------------------------------------------

    def opened(self, changes: Sequence[PhaseChange]) -> None:
        """Sessions and inversions that began (before this step's events are committed)."""
        ids = self._ids
        for change in changes:
            if change.old is Phase.IDLE:
                self._open_session(change.t)
            if change.new is Phase.INVERTED and self._in_session:
                self._inversion_start_t = change.t
                self.writer.submit(_start_inversion(ids))
            if change.old is Phase.INVERTED and self._inversion_start_t is not None:
                duration_s = change.t - self._inversion_start_t
                self._inversion_start_t = None
                self.writer.submit(_end_inversion(ids, duration_s))

    def closed(self, changes: Sequence[PhaseChange]) -> None:
        """Sessions that ended (after this step's events are committed)."""
        for change in changes:
            if change.new is Phase.IDLE and self._in_session:
                reason = "ended by the user" if change.old is not Phase.IDLE else "ended"
                self.writer.submit(
                    _close_session(
                        self._ids, self.station, self.core.session.session_closed_s, reason
                    )
                )
                self._in_session = False
                self.session_id = None
                self.session_user = None
                self.session_started_at = None
                if self.recorder is not None:
                    self.recorder.session_ended(change.t)
                self._checkpointed = False

    def _open_session(self, t: float) -> None:
        trace = None
        if self.recorder is not None:
            trace = str(self.recorder.session_started(t))
        self._in_session = True
        self.session_user = None
        self.session_started_at = None
        station, ids, profile = self.station, self._ids, self.core.profile.name

        def job(store: Store) -> tuple[int, str | None, str]:
            prepared = store.take_prepared(station, PREPARED_MAX_AGE_S)
            user = None
            if prepared is not None:
                for row in store.users():
                    if row["id"] == prepared["user_id"]:
                        user = row["name"]
                ids.session_id = store.open_session(
                    station,
                    prepared["profile"],
                    prepared["user_id"],
                    trace,
                    prepared["checklist"],
                    prepared["pain_before"],
                )
            else:
                ids.session_id = store.open_session(station, profile, None, trace)
            store.audit(
                "station",
                "session started",
                {"session": ids.session_id, "prepared": prepared is not None, "trace": trace},
            )
            opened = store.session(ids.session_id)
            assert opened is not None  # committed just above, by this writer
            return ids.session_id, user, str(opened["started_at"])

        def done(opened: tuple[int, str | None, str]) -> None:
            if self._in_session:
                self.session_id, self.session_user, self.session_started_at = opened

        self.writer.submit(job, done)

    # -- people ----------------------------------------------------------------------------

    def user_input(self, kind: InputKind, alarm: str | None, by: str | None) -> None:
        """Who pressed what, when."""
        station = self.station
        self.writer.submit(lambda store: store.record_action(station, kind.value, alarm, by))

    # -- every second ----------------------------------------------------------------------

    def tick(self, t: float) -> None:
        """A 1 Hz trend sample and a checkpoint while a session runs or alarms are listed
        (coalesced while the disk is behind: see monitor.store.writer)."""
        if t < self._next_second:
            return
        self._next_second = t + TREND_EVERY_S
        core = self.core
        trends: list[TrendRow] = []
        inverted_s = None
        if self._in_session:
            s = core.signals
            trends.append((now_iso(), t, s.theta, s.hr_bpm))
            inverted_s = core.session.session_inverted_s(t)
        checkpoint = None
        clear = False
        if self._in_session or core.alarms.alarms:
            snap = snapshot(core)
            snap["journal"] = {
                "session_id": None,  # filled in by the writer, which knows the id
                "inversion_id": None,
                "inversion_age_s": None
                if self._inversion_start_t is None
                else t - self._inversion_start_t,
            }
            checkpoint = (now_iso(), snap)
            self._checkpointed = True
        elif self._checkpointed:
            clear = True
            self._checkpointed = False
        if trends or checkpoint is not None or clear:
            second = _Second(self.station, self._ids, trends, inverted_s, checkpoint, clear)
            self.writer.submit(second, coalesce=True)

    # -- after a crash ---------------------------------------------------------------------

    def recover(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Resume what the last run left open; returns what was recovered (None: nothing).

        Sessions left open without a checkpoint are closed as interrupted. Runs at start,
        before the station does, on the loop's own connection.
        """
        now = now or datetime.now().astimezone()
        saved = self.store.last_checkpoint(self.station)
        recovered: dict[str, Any] | None = None
        if saved is not None:
            session_id, at, snap = saved
            gap_s = max(0.0, (now - datetime.fromisoformat(at)).total_seconds())
            restore(self.core, snap, gap_s)
            journal = snap.get("journal", {})
            self.session_id = self._ids.session_id = journal.get("session_id")
            self._ids.inversion_id = journal.get("inversion_id")
            self._in_session = self.session_id is not None
            age = journal.get("inversion_age_s")
            self._inversion_start_t = None if age is None else self.core.t - age - gap_s
            inverted = self.core.session.inverted
            self.store.add_gap(self.station, session_id, at, now.isoformat(), gap_s, inverted)
            recovered = {
                "session": session_id,
                "gap_s": round(gap_s, 3),
                "phase": self.core.session.phase.value,
                "alarms": sorted(self.core.alarms.alarms),
            }
            self.store.audit("station", "recovered after a restart", recovered)
            log.warning("recovered %s", recovered)
            if self.session_id is not None and self.recorder is not None:
                trace = self.recorder.session_started(self.core.t)
                self.store.audit("station", "trace continued", {"trace": str(trace)})
        for row in self.store.open_sessions(self.station):
            if row["id"] != self.session_id:
                self.store.close_session(row["id"], row["inverted_s"], "interrupted")
                self.store.audit("station", "closed an interrupted session", {"session": row["id"]})
        return recovered


def _start_inversion(ids: _Open) -> Callable[[Store], None]:
    def job(store: Store) -> None:
        if ids.session_id is not None:
            ids.inversion_id = store.start_inversion(ids.session_id)

    return job


def _end_inversion(ids: _Open, duration_s: float) -> Callable[[Store], None]:
    def job(store: Store) -> None:
        if ids.inversion_id is not None:
            store.end_inversion(ids.inversion_id, duration_s)
            ids.inversion_id = None

    return job


def _close_session(
    ids: _Open, station: str, inverted_s: float, reason: str
) -> Callable[[Store], None]:
    def job(store: Store) -> None:
        session_id = ids.session_id
        ids.session_id = ids.inversion_id = None
        if session_id is None:
            return
        store.close_session(session_id, inverted_s, reason)
        store.audit("station", "session ended", {"session": session_id})
        store.clear_checkpoint(station)

    return job
