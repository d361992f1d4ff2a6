"""The station's record in the store: alarm events (committed before anyone sees them),
sessions and inversions, who did what, 1 Hz trends, and the checkpoints that let a restarted
daemon resume an open session after a crash or a power cut.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.alarms import AlarmEvent
from monitor.core import SafetyCore, restore, snapshot
from monitor.recorder import TraceRecorder
from monitor.session import Phase, PhaseChange
from monitor.store import Store, now_iso
from monitor.trace import InputKind

log = logging.getLogger(__name__)
TREND_EVERY_S = 1.0
PREPARED_MAX_AGE_S = 1800.0
"""A session prepared (screened, checklist) this long ago still applies when the user starts."""


class Journal:
    """Writes one station's life into the store."""

    def __init__(
        self,
        store: Store,
        station: str,
        core: SafetyCore,
        recorder: TraceRecorder | None = None,
    ) -> None:
        self.store = store
        self.station = station
        self.core = core
        self.recorder = recorder
        self.session_id: int | None = None
        self.session_user: str | None = None
        """The name of the user whose session runs, if it was a guided start."""
        self.inversion_id: int | None = None
        self._inversion_start_t: float | None = None
        self._next_second = float("-inf")
        self._checkpointed = False

    # -- alarm events: first ---------------------------------------------------------------

    def commit(self, events: Sequence[AlarmEvent]) -> list[int]:
        """Commit alarm events durably, before any sink sees them; their sequence numbers."""
        return self.store.commit_events(self.station, self.session_id, events)

    # -- phase changes ---------------------------------------------------------------------

    def opened(self, changes: Sequence[PhaseChange]) -> None:
        """Sessions and inversions that began (before this step's events are committed)."""
        for change in changes:
            if change.old is Phase.IDLE:
                self._open_session(change.t)
            if change.new is Phase.INVERTED and self.session_id is not None:
                self.inversion_id = self.store.start_inversion(self.session_id)
                self._inversion_start_t = change.t
            if change.old is Phase.INVERTED and self.inversion_id is not None:
                start = self._inversion_start_t if self._inversion_start_t is not None else change.t
                self.store.end_inversion(self.inversion_id, change.t - start)
                self.inversion_id = self._inversion_start_t = None

    def closed(self, changes: Sequence[PhaseChange]) -> None:
        """Sessions that ended (after this step's events are committed)."""
        for change in changes:
            if change.new is Phase.IDLE and self.session_id is not None:
                reason = "ended by the user" if change.old is not Phase.IDLE else "ended"
                self.store.close_session(
                    self.session_id, self.core.session.session_closed_s, reason
                )
                self.store.audit("station", "session ended", {"session": self.session_id})
                self.session_id = None
                self.session_user = None
                if self.recorder is not None:
                    self.recorder.session_ended(change.t)
                self.store.clear_checkpoint(self.station)
                self._checkpointed = False

    def _open_session(self, t: float) -> None:
        prepared = self.store.take_prepared(self.station, PREPARED_MAX_AGE_S)
        trace = None
        if self.recorder is not None:
            trace = str(self.recorder.session_started(t))
        profile = self.core.profile.name
        self.session_user = None
        if prepared is not None:
            for user in self.store.users():
                if user["id"] == prepared["user_id"]:
                    self.session_user = user["name"]
            self.session_id = self.store.open_session(
                self.station,
                prepared["profile"],
                prepared["user_id"],
                trace,
                prepared["checklist"],
                prepared["pain_before"],
            )
        else:
            self.session_id = self.store.open_session(self.station, profile, None, trace)
        self.store.audit(
            "station",
            "session started",
            {"session": self.session_id, "prepared": prepared is not None, "trace": trace},
        )

    # -- people ----------------------------------------------------------------------------

    def user_input(self, kind: InputKind, alarm: str | None, by: str | None) -> None:
        """Who pressed what, when."""
        self.store.record_action(self.station, kind.value, alarm, by)

    # -- every second ----------------------------------------------------------------------

    def tick(self, t: float) -> None:
        """A 1 Hz trend sample and a checkpoint while a session runs or alarms are listed."""
        if t < self._next_second:
            return
        self._next_second = t + TREND_EVERY_S
        core = self.core
        if self.session_id is not None:
            s = core.signals
            self.store.add_trends(
                self.session_id,
                [(now_iso(), t, s.theta, s.hr_bpm)],
                core.session.session_inverted_s(t),
            )
        if self.session_id is not None or core.alarms.alarms:
            snap = snapshot(core)
            snap["journal"] = {
                "session_id": self.session_id,
                "inversion_id": self.inversion_id,
                "inversion_age_s": None
                if self._inversion_start_t is None
                else t - self._inversion_start_t,
            }
            self.store.checkpoint(self.station, self.session_id, snap)
            self._checkpointed = True
        elif self._checkpointed:
            self.store.clear_checkpoint(self.station)
            self._checkpointed = False

    # -- after a crash ---------------------------------------------------------------------

    def recover(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Resume what the last run left open; returns what was recovered (None: nothing).

        Sessions left open without a checkpoint are closed as interrupted.
        """
        now = now or datetime.now().astimezone()
        saved = self.store.last_checkpoint(self.station)
        recovered: dict[str, Any] | None = None
        if saved is not None:
            session_id, at, snap = saved
            gap_s = max(0.0, (now - datetime.fromisoformat(at)).total_seconds())
            restore(self.core, snap, gap_s)
            journal = snap.get("journal", {})
            self.session_id = journal.get("session_id")
            self.inversion_id = journal.get("inversion_id")
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
