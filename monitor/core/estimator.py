"""The estimator (SPEC section 6): readings in, clean signals out.

Tilt: sensor angle -> theta through the calibration, isolated outliers rejected by a median
over three samples, d(theta)/dt from the gyro when the sensor has one (else from smoothed
theta), and the acceleration magnitude. Heart rate: the cleaning rules of SPEC section 6.
Pure and incremental: each call takes the reading's time, nothing reads a clock.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

from monitor.core.sensors import Calibration

RATE_WINDOW_S = 0.25
"""Span of the finite difference that estimates d(theta)/dt when there is no gyro."""


class TiltEstimator:
    """Theta, its rate of change and |a| from one tilt sensor's readings.

    ``theta_deg`` is None until three samples have arrived since the last reset (a reconnect):
    a lone first sample cannot be told from a glitch.
    """

    __slots__ = (
        "_a1",
        "_a2",
        "_axis",
        "_g1",
        "_g2",
        "_history",
        "_m1",
        "_m2",
        "_n",
        "_offset",
        "_sign",
        "accel_g",
        "rate_dps",
        "theta_deg",
    )

    def __init__(self, calibration: Calibration) -> None:
        self._sign = calibration.sign
        self._offset = calibration.offset_deg
        self._axis = calibration.axis_index
        self._history: deque[tuple[float, float]] = deque()
        self.reset()

    @property
    def axis(self) -> int:
        """Index (0, 1, 2) of the sensor axis that carries theta and its rate."""
        return self._axis

    def reset(self) -> None:
        """Forget the filters' history (after a disconnect); theta becomes unknown."""
        self._n = 0
        self._m1 = self._m2 = 0.0
        self._g1 = self._g2 = 0.0
        self._a1 = self._a2 = 1.0
        self._history.clear()
        self.theta_deg: float | None = None
        self.rate_dps = 0.0
        self.accel_g: float | None = None

    def update(
        self,
        t: float,
        angle_deg: float,
        gyro_dps: float | None,
        accel_xyz_g: tuple[float, float, float] | None,
    ) -> bool:
        """Take one sample: the sensor's angle on the calibrated axis, that axis' angular rate
        and the acceleration vector (when the sensor sends them). True if theta is known."""
        theta = self._sign * (angle_deg - self._offset)
        n = self._n = self._n + 1
        m1, m2 = self._m1, self._m2
        self._m1, self._m2 = m2, theta
        if accel_xyz_g is not None:
            x, y, z = accel_xyz_g
            mag = math.sqrt(x * x + y * y + z * z)
            a1, a2 = self._a1, self._a2
            self._a1, self._a2 = a2, mag
            if n >= 3:  # the median of a1, a2, mag (written out, as below: every sample)
                if a1 > a2:
                    a1, a2 = a2, a1
                if a2 > mag:
                    a2 = mag
                self.accel_g = a1 if a1 > a2 else a2
            else:
                self.accel_g = None
        if n < 3:
            return False
        # smooth: the median of m1, m2, theta (sort the first two, clip by the third)
        if m1 > m2:
            m1, m2 = m2, m1
        if m2 > theta:
            m2 = theta
        smooth = m1 if m1 > m2 else m2
        self.theta_deg = smooth
        if gyro_dps is not None:
            g1, g2 = self._g1, self._g2
            rate = self._sign * gyro_dps
            self._g1, self._g2 = g2, rate
            if g1 > g2:  # the median of g1, g2, rate
                g1, g2 = g2, g1
            if g2 > rate:
                g2 = rate
            self.rate_dps = g1 if g1 > g2 else g2
        else:
            history = self._history
            history.append((t, smooth))
            while len(history) > 2 and t - history[1][0] >= RATE_WINDOW_S:
                history.popleft()
            t0, theta0 = history[0]
            self.rate_dps = (smooth - theta0) / (t - t0) if t > t0 else 0.0
        return True


# -- heart rate ----------------------------------------------------------------------------

MIN_BPM = 30
MAX_BPM = 220
SUSPECT_JUMP_BPM = 40
CONFIRM_WITHIN_BPM = 10
CONFIRM_WITHIN_S = 3.0


class Verdict(enum.Enum):
    """What cleaning made of one heart-rate reading."""

    ACCEPTED = "accepted"
    SUSPECT = "suspect"
    REJECTED = "rejected"
    NO_READING = "no_reading"


@dataclass(frozen=True, slots=True)
class HrOutcome:
    """A reading's fate, plus the fate of a suspect reading it settled."""

    verdict: Verdict
    accepted: tuple[tuple[float, float], ...] = ()
    """(t, bpm) of every reading accepted by this call, oldest first."""
    rejected: tuple[float, ...] = ()
    """Times of every reading rejected by this call (this one or a settled suspect)."""


class HeartRateCleaner:
    """SPEC section 6: reject < 30 or > 220 bpm; a jump of more than 40 bpm from the last
    accepted reading is held as suspect and accepted only if the next reading, within 3 s,
    lies within 10 bpm of it; otherwise it is rejected. A reading of 0 or with no skin
    contact is "no reading": it is not an artifact, but it settles a suspect as rejected."""

    __slots__ = ("last_bpm", "last_t", "suspect")

    def __init__(self) -> None:
        self.last_bpm: float | None = None
        self.last_t: float | None = None
        self.suspect: tuple[float, float] | None = None

    def expire(self, t: float) -> HrOutcome | None:
        """Reject a suspect whose confirming reading did not come within 3 s."""
        if self.suspect is not None and t - self.suspect[0] > CONFIRM_WITHIN_S:
            st = self.suspect[0]
            self.suspect = None
            return HrOutcome(Verdict.REJECTED, (), (st,))
        return None

    def next_change(self) -> float:
        """When :meth:`expire` would settle the suspect reading (infinity when there is none)."""
        return math.inf if self.suspect is None else self.suspect[0] + CONFIRM_WITHIN_S

    def update(self, t: float, bpm: float, has_reading: bool) -> HrOutcome:
        """Clean one reading taken at ``t``."""
        rejected: list[float] = []
        accepted: list[tuple[float, float]] = []
        suspect = self.suspect
        self.suspect = None
        if not has_reading:
            return HrOutcome(Verdict.NO_READING, (), (suspect[0],) if suspect else ())
        if not MIN_BPM <= bpm <= MAX_BPM:
            if suspect:
                rejected.append(suspect[0])
            rejected.append(t)
            return HrOutcome(Verdict.REJECTED, (), tuple(rejected))
        if suspect is not None:
            st, sbpm = suspect
            if t - st <= CONFIRM_WITHIN_S and abs(bpm - sbpm) <= CONFIRM_WITHIN_BPM:
                accepted.append(suspect)
                accepted.append((t, bpm))
                self.last_t, self.last_bpm = t, bpm
                return HrOutcome(Verdict.ACCEPTED, tuple(accepted), ())
            rejected.append(st)
        if self.last_bpm is not None and abs(bpm - self.last_bpm) > SUSPECT_JUMP_BPM:
            self.suspect = (t, bpm)
            return HrOutcome(Verdict.SUSPECT, (), tuple(rejected))
        self.last_t, self.last_bpm = t, bpm
        return HrOutcome(Verdict.ACCEPTED, ((t, bpm),), tuple(rejected))
