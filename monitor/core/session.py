"""The session and inversion state machine (SPEC sections 3 and 6), pure.

Phases: IDLE (no session), UPRIGHT (in a session, not inverted), INVERTED. The user is
inverted from the moment theta reaches 10 deg until it falls to 5 deg or below. A session
starts when the user starts it or when theta first reaches 10 deg, and ends when the user
ends it or after 10 minutes upright. An end asked for while inverted takes effect when the
user is upright again: ending a session must never switch the rules off over a user who is
still hanging head-down.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.core.deadline import earliest

INVERTED_AT_DEG = 10.0
UPRIGHT_AT_DEG = 5.0


class Phase(enum.StrEnum):
    """Where the station's user is."""

    IDLE = "idle"
    UPRIGHT = "upright"
    INVERTED = "inverted"


ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.IDLE: frozenset({Phase.UPRIGHT, Phase.INVERTED}),
    Phase.UPRIGHT: frozenset({Phase.INVERTED, Phase.IDLE}),
    Phase.INVERTED: frozenset({Phase.UPRIGHT}),
}

_UPRIGHT, _INVERTED = Phase.UPRIGHT, Phase.INVERTED
"""For :meth:`SessionTracker.update`, asked every sample: an enum member read through its
class costs ~60 ns on Python 3.11, a module global ~7 ns."""


class TransitionError(RuntimeError):
    """A phase change the state machine does not allow."""


@dataclass(frozen=True, slots=True)
class PhaseChange:
    """The phase changed at ``t``."""

    t: float
    old: Phase
    new: Phase


class SessionTracker:
    """Phase, inversion timers and inverted-time totals of one station."""

    def __init__(
        self,
        idle_end_s: float,
        started_at: datetime | None = None,
        day_inverted_before_s: float = 0.0,
    ) -> None:
        self.idle_end_s = idle_end_s
        self.phase = Phase.IDLE
        self.in_session = False
        """True while a session runs (kept in step with ``phase``)."""
        self.inverted = False
        """True while the user is inverted (kept in step with ``phase``)."""
        self.changes: list[PhaseChange] = []
        self.session_started_at: float | None = None
        self.inversion_started_at: float | None = None
        self.last_inversion_end: float | None = None
        self.rest_before_s: float | None = None
        """Rest before the current inversion (None for the first one)."""
        self.upright_since = 0.0
        self.end_requested = False
        self.session_closed_s = 0.0
        self.day_closed_s = day_inverted_before_s
        self.inversions = 0
        self._day_start = float("-inf")
        self._next_midnight = float("inf")
        if started_at is not None and started_at.tzinfo is not None:
            midnight = datetime.combine(
                started_at.date(), datetime.min.time(), tzinfo=started_at.tzinfo
            )
            self._day_start = (midnight - started_at).total_seconds()
            self._next_midnight = (midnight + timedelta(days=1) - started_at).total_seconds()

    # -- derived -------------------------------------------------------------------------

    def hold_s(self, t: float) -> float:
        """Continuous inverted time of the current inversion (0 when not inverted)."""
        start = self.inversion_started_at
        return t - start if start is not None else 0.0

    def session_inverted_s(self, t: float) -> float:
        """Inverted time in this session so far."""
        return self.session_closed_s + self.hold_s(t)

    def day_inverted_s(self, t: float) -> float:
        """Inverted time on this local calendar day so far."""
        start = self.inversion_started_at
        if start is None:
            return self.day_closed_s
        return self.day_closed_s + t - max(start, self._day_start)

    # -- transitions -----------------------------------------------------------------------

    def _go(self, t: float, new: Phase) -> None:
        old = self.phase
        if new not in ALLOWED[old]:
            raise TransitionError(f"phase {old} cannot become {new}")
        self.phase = new
        self.in_session = new is not Phase.IDLE
        self.inverted = new is Phase.INVERTED
        self.changes.append(PhaseChange(t, old, new))
        if old is Phase.INVERTED:
            assert self.inversion_started_at is not None
            held = t - self.inversion_started_at
            self.session_closed_s += held
            self.day_closed_s += t - max(self.inversion_started_at, self._day_start)
            self.inversion_started_at = None
            self.last_inversion_end = t
            self.upright_since = t
        if new is Phase.INVERTED:
            self.inversions += 1
            last = self.last_inversion_end
            self.rest_before_s = t - last if last is not None else None
            self.inversion_started_at = t
        if old is Phase.IDLE:
            self.session_started_at = t
            self.session_closed_s = 0.0
            self.upright_since = t
            self.end_requested = False
        if new is Phase.IDLE:
            self.session_started_at = None
            self.end_requested = False

    def start(self, t: float) -> bool:
        """The user starts a session; False if one is already running."""
        if self.phase is not Phase.IDLE:
            return False
        self._go(t, Phase.UPRIGHT)
        return True

    def request_end(self, t: float) -> None:
        """The user ends the session; while inverted, it ends when they are upright."""
        if self.phase is Phase.UPRIGHT:
            self._go(t, Phase.IDLE)
        elif self.phase is Phase.INVERTED:
            self.end_requested = True

    def update(self, t: float, theta_deg: float | None) -> None:
        """Advance to ``t`` with the current theta (None when unknown: nothing changes)."""
        if t >= self._next_midnight:
            self._roll_day(t)
        phase = self.phase
        if theta_deg is not None:
            if phase is _INVERTED:
                if theta_deg <= UPRIGHT_AT_DEG:
                    self._go(t, Phase.UPRIGHT)
                    if self.end_requested:
                        self._go(t, Phase.IDLE)
                    return
            elif theta_deg >= INVERTED_AT_DEG:
                self._go(t, Phase.INVERTED)
                return
        if phase is _UPRIGHT and t - self.upright_since >= self.idle_end_s:
            self._go(t, Phase.IDLE)

    def next_change(self, t: float) -> float:
        """The earliest time after ``t`` at which time alone may change the phase or the day's
        totals (the idle end of a session, local midnight); theta changes only with readings."""
        times = [self._next_midnight]
        if self.phase is Phase.UPRIGHT:
            times.append(self.upright_since + self.idle_end_s)
        return earliest(t, times)

    def _roll_day(self, t: float) -> None:
        while t >= self._next_midnight:
            self.day_closed_s = 0.0
            self._day_start = self._next_midnight
            self._next_midnight += 86400.0
