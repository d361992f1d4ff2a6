"""The safety core: codecs -> estimator -> session -> rules -> alarm manager, pure.

One object per station. Every call carries the time; nothing here waits, reads a clock or
does I/O. The live daemon, ``spotter replay``, the tests and the benchmarks all drive it the
same way, so they raise the same alarms at the same moments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.core import gatt
from monitor.core.alarms import (
    SILENCE_S,
    Alarm,
    AlarmEvent,
    AlarmManager,
    AlarmState,
    Latch,
    Priority,
    Want,
)
from monitor.core.codecs import CodecError, battery, heart_rate, spotter_tilt, witmotion
from monitor.core.deadline import earliest
from monitor.core.estimator import HeartRateCleaner, HrOutcome, TiltEstimator, Verdict
from monitor.core.rules import (
    LATCH_OF,
    RULE_IDS,
    THETA_TRAIL_STEP_S,
    ImpactDetector,
    RuleEngine,
    Signals,
)
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.core.session import Phase, PhaseChange, SessionTracker
from monitor.core.trace import End, InputKind, LinkChange, Notification, Record, UserInput

if TYPE_CHECKING:
    from monitor.core.profiles import Profile

HR_HISTORY_S = 75.0
_TILT_MEASUREMENT = gatt.TILT_MEASUREMENT
_SPOTTER_TILT = SensorKind.SPOTTER_TILT
_unpack_tilt = spotter_tilt.unpack
"""The per-sample path's names, bound once (100 lookups a second fewer each)."""


@dataclass(slots=True)
class SensorStats:
    """What one sensor sent, and what was wrong with it."""

    notifications: int = 0
    malformed: int = 0
    ignored: int = 0
    lost: int = 0
    """Tilt notifications missing from the sequence numbers."""
    discarded_bytes: int = 0
    """WitMotion stream bytes that were not part of a data frame."""
    samples: int = 0
    """Tilt samples decoded (a WitMotion notification may carry none, one or several)."""
    connected: bool | None = None
    battery_percent: int | None = None
    last_error: str | None = None


@dataclass(slots=True)
class CoreStats:
    """Counters per sensor, for status views and replay's report."""

    sensors: dict[str, SensorStats] = field(default_factory=dict)

    @property
    def malformed(self) -> int:
        """Malformed notifications over all sensors."""
        return sum(s.malformed for s in self.sensors.values())


class SafetyCore:
    """A station's whole safety logic, driven by readings, inputs and time."""

    def __init__(
        self,
        sensors: Mapping[str, SensorSpec],
        profile: Profile,
        *,
        age_years: float | None = None,
        started_at: datetime | None = None,
        day_inverted_before_s: float = 0.0,
        t0: float = 0.0,
        silence_s: float = SILENCE_S,
    ) -> None:
        self.profile = profile
        self.sensors = dict(sensors)
        self.tilt_name = next((n for n, s in self.sensors.items() if s.kind.is_tilt), None)
        self.hr_name = next(
            (n for n, s in self.sensors.items() if s.kind is SensorKind.HEART_RATE), None
        )
        self.t = t0
        self.stats = CoreStats({name: SensorStats() for name in self.sensors})
        self.signals = Signals(t0, self.tilt_name is not None, self.hr_name is not None)
        self.session = SessionTracker(profile.session_idle_end_s, started_at, day_inverted_before_s)
        self.rules = RuleEngine(profile, self.signals, self.session, age_years)
        self.alarms = AlarmManager(LATCH_OF, self.rules.describe, RULE_IDS, silence_s)
        self._tilt: TiltEstimator | None = None
        self._tilt_kind: SensorKind | None = None
        if self.tilt_name is not None:
            spec = self.sensors[self.tilt_name]
            self._tilt = TiltEstimator(spec.calibration)
            self._tilt_kind = spec.kind
        self._impact = ImpactDetector(profile)
        self._hr = HeartRateCleaner()
        self._wit = witmotion.WitMotionStream()
        self._last_seq: int | None = None
        self._trail_t = float("-inf")

    # -- the four ways in ----------------------------------------------------------------

    def advance(self, t: float) -> list[AlarmEvent]:
        """Let time pass to ``t`` with no new reading."""
        self._clock(t)
        return self._step(t)

    def notification(self, t: float, sensor: str, char: str, data: bytes) -> list[AlarmEvent]:
        """Bytes from a sensor. A payload that breaks its protocol is counted and skipped."""
        if t < self.t or self._hr.suspect is not None:  # (_clock's work, when it has any)
            self._clock(t)
        self.t = t
        stats = self.stats.sensors.get(sensor)
        if stats is None:
            raise KeyError(f"unknown sensor {sensor!r}")
        stats.notifications += 1
        kind = self.sensors[sensor].kind
        try:
            if char == _TILT_MEASUREMENT and kind is _SPOTTER_TILT:  # (100 Hz: asked first)
                seq, _, pitch_deg, accel_g, gyro_dps, _ = _unpack_tilt(data)
                last = self._last_seq
                if last is not None:
                    stats.lost += (seq - last - 1) & 0xFFFF
                self._last_seq = seq
                stats.samples += 1
                gyro = gyro_dps[1] if gyro_dps is not None else None
                self._tilt_sample(t, pitch_deg, gyro, accel_g)
            elif char == gatt.BATTERY_LEVEL:
                self.signals.slow_version += 1
                level = battery.decode(data).percent
                stats.battery_percent = level
                self.signals.battery[sensor] = level
            elif kind is SensorKind.WITMOTION and char == gatt.WITMOTION_NOTIFY:
                self._witmotion(t, data, stats)
            elif kind is SensorKind.HEART_RATE and char == gatt.HEART_RATE_MEASUREMENT:
                self._heart_rate(t, heart_rate.decode(data))
            elif kind is SensorKind.SPOTTER_TILT and char == gatt.TILT_SENSOR_INFO:
                spotter_tilt.decode_info(data)
            else:
                stats.ignored += 1
        except CodecError as exc:
            stats.malformed += 1
            stats.last_error = str(exc)
        return self._step(t)

    def link(self, t: float, sensor: str, connected: bool) -> list[AlarmEvent]:
        """A sensor's link went up or down. Silence, not the link event, raises the alarms."""
        self._clock(t)
        self.signals.slow_version += 1
        self.stats.sensors[sensor].connected = connected
        if not connected and sensor == self.tilt_name:
            assert self._tilt is not None
            self._tilt.reset()
            self._impact.reset()
            self._wit.reset()
            self._last_seq = None
        return self._step(t)

    def user_input(
        self, t: float, kind: InputKind, alarm: str | None = None, by: str | None = None
    ) -> list[AlarmEvent]:
        """Something the user or a watcher did."""
        self._clock(t)
        self.signals.slow_version += 1
        events = self._step(t)
        s = self.signals
        if kind is InputKind.SESSION_START:
            self.session.start(t)
        elif kind is InputKind.SESSION_END:
            self.session.request_end(t)
        elif kind is InputKind.SYMPTOM:
            if s.symptom_t is None:
                s.symptom_t, s.symptom_theta = t, s.theta
            s.symptom_pending = True
        elif kind is InputKind.ACKNOWLEDGE:
            if alarm is not None:
                events += self.alarms.acknowledge(t, alarm, by)
        else:
            events += self.alarms.silence(t, alarm, by)
        return events + self._step(t)

    def external_condition(self, t: float, alarm_id: str, want: Want | None) -> list[AlarmEvent]:
        """A condition the shell sees and the rules cannot (``link.lost``): present with its
        priority, value and limit, or gone (None). Alarmed during a session, like the rules."""
        self._clock(t)
        if want is None:
            self.signals.external.pop(alarm_id, None)
        else:
            self.signals.external[alarm_id] = want
        return self._step(t)

    def apply(self, record: Record) -> list[AlarmEvent]:
        """Feed one trace record."""
        if isinstance(record, Notification):
            return self.notification(record.t, record.sensor, record.char, record.data)
        if isinstance(record, LinkChange):
            return self.link(record.t, record.sensor, record.connected)
        if isinstance(record, UserInput):
            return self.user_input(record.t, record.input, record.alarm, record.by)
        assert isinstance(record, End)
        return self.advance(record.t)

    # -- letting a gap pass in one step ---------------------------------------------------

    def next_change(self) -> float:
        """The earliest time after ``self.t`` at which letting time pass, with no reading or
        input, may change anything an alarm event shows: the next deadline of the rules, the
        alarm timers, the session and the heart-rate cleaner (infinity: none). Until then,
        :meth:`advance` would only re-measure the same conditions."""
        t = self.t
        return earliest(
            t,
            (
                self.rules.next_change(t),
                self.alarms.next_change(t),
                self.session.next_change(t),
                self._hr.next_change(),
            ),
        )

    def pass_marks(self, first: int, stop: int, per_s: int) -> None:
        """Let the grid marks ``first/per_s`` .. ``(stop-1)/per_s`` pass without evaluating
        them, keeping what stepping through them would have kept: the theta trail (the only
        record of time the core writes while nothing changes). The caller guarantees, with
        :meth:`next_change`, that nothing else changes at those marks, and then evaluates the
        next two marks with :meth:`advance` (re-measuring every condition)."""
        theta = self.signals.theta
        if stop <= first or theta is None:
            return
        step = THETA_TRAIL_STEP_S

        def appends(j: int) -> bool:
            return j / per_s - self._trail_t >= step

        j1 = first
        while j1 < stop and not appends(j1):
            j1 += 1
        if j1 >= stop:
            return
        last = _last_append(j1, stop, per_s, step)
        trail = self.signals.theta_trail
        window = self.profile.not_returning_window_s
        for j in (j1, last) if last != j1 else (j1,):
            mark = j / per_s
            trail.append((mark, theta))
            horizon = mark - window
            while len(trail) > 1 and trail[1][0] <= horizon:
                trail.popleft()
        self._trail_t = last / per_s
        self.t = (stop - 1) / per_s

    # -- what the shell shows ------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """Where the user is."""
        return self.session.phase

    def drain_phase_changes(self) -> list[PhaseChange]:
        """Phase changes since the last call, oldest first."""
        changes = self.session.changes
        self.session.changes = []
        return changes

    # -- inside --------------------------------------------------------------------------

    def _clock(self, t: float) -> None:
        if t < self.t:
            raise ValueError(f"time went back from {self.t} to {t}")
        self.t = t
        if self._hr.suspect is None:  # nothing to expire (the common case, 100 times a second)
            return
        outcome = self._hr.expire(t)
        if outcome is not None:
            self.signals.slow_version += 1
            self._hr_outcome(t, outcome)

    def _step(self, t: float) -> list[AlarmEvent]:
        s = self.signals
        self.session.update(t, s.theta)
        if t - self._trail_t >= THETA_TRAIL_STEP_S and s.theta is not None:
            trail = s.theta_trail
            trail.append((t, s.theta))
            self._trail_t = t
            horizon = t - self.profile.not_returning_window_s
            while len(trail) > 1 and trail[1][0] <= horizon:
                trail.popleft()
        session = self.session
        s.expire(t, session.in_session, session.inverted, self.profile.hr_artifact_window_s)
        wants = self.rules.evaluate(t)
        s.judged()
        alarms = self.alarms
        if not wants and not alarms.alarms:  # (AlarmManager.update's own first test, asked
            return []  # here: most samples, nothing present and nothing listed)
        return alarms.update(t, wants, self.session.inverted)

    def _witmotion(self, t: float, data: bytes, stats: SensorStats) -> None:
        stream = self._wit
        frames = stream.feed(data)
        stats.discarded_bytes = stream.discarded_bytes
        assert self._tilt is not None
        axis = self._tilt.axis
        stats.samples += len(frames)
        for frame in frames:
            self._tilt_sample(t, frame.angle_deg[axis], frame.gyro_dps[axis], frame.accel_g)

    def _tilt_sample(
        self,
        t: float,
        angle: float,
        gyro: float | None,
        accel: tuple[float, float, float] | None,
    ) -> None:
        est = self._tilt
        assert est is not None
        s = self.signals
        before = s.theta
        if not est.update(t, angle, gyro, accel):
            return
        theta = est.theta_deg
        assert theta is not None
        if before is not None and (before < 0) != (theta < 0):
            s.zero_cross_t = t
        s.theta = theta
        s.rate_dps = est.rate_dps
        s.tilt_seen_t = t
        a = est.accel_g
        s.accel_g = a
        if a is not None:
            g = self._impact.update(t, a)
            if g is not None:
                s.impact_at = t
                if s.impact_g is None or g > s.impact_g:
                    s.impact_g = g

    def _heart_rate(self, t: float, m: heart_rate.HeartRateMeasurement) -> None:
        self.signals.slow_version += 1
        self._hr_outcome(t, self._hr.update(t, m.bpm, m.has_reading))

    def _hr_outcome(self, t: float, outcome: HrOutcome) -> None:
        s = self.signals
        checks = s.hr_checks
        for _ in outcome.rejected:
            checks.append((t, True))
            s.hr_rejected += 1
        if outcome.verdict is Verdict.ACCEPTED:
            history = s.hr_history
            for reading in outcome.accepted:
                history.append(reading)
                checks.append((t, False))
            s.hr_bpm = outcome.accepted[-1][1]
            s.hr_seen_t = t
            s.hr_version += 1
            while history and history[0][0] < t - HR_HISTORY_S:
                history.popleft()


def _last_append(j1: int, stop: int, per_s: int, step: float) -> int:
    """The last mark before ``stop`` at which stepping from an append at mark ``j1`` appends
    to the theta trail again. Each append is one or two marks after the one before (two when
    the float difference of the marks falls a hair short of ``step``), so the chain passes
    through one of any two neighbouring marks: two chains started side by side near ``stop``
    meet within a few marks and from there are the real one. Never walks the whole gap."""

    def after(j: int) -> int:
        return j + 1 if (j + 1) / per_s - j / per_s >= step else j + 2

    back = 64
    while True:
        start = stop - back
        if start <= j1:
            a = j1
            while after(a) < stop:
                a = after(a)
            return a
        a, b = start, start + 1
        while a != b and max(a, b) < stop:
            if a < b:
                a = after(a)
            else:
                b = after(b)
        if a == b and a < stop:
            while after(a) < stop:
                a = after(a)
            return a
        back *= 8


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else now - then


def snapshot(core: SafetyCore) -> dict[str, Any]:
    """What a restarted station needs to resume this core: every time as an age (seconds
    before ``core.t``), so it can be re-anchored on a new clock after any gap."""
    t = core.t
    s, session = core.signals, core.session
    alarms = []
    for alarm in core.alarms.alarms.values():
        alarms.append(
            {
                "id": alarm.id,
                "priority": alarm.priority.label,
                "state": alarm.state.value,
                "condition": alarm.condition,
                "raised_age_s": t - alarm.raised_at,
                "unacked_age_s": t - alarm.unacked_since,
                "acked_age_s": _age(t, alarm.acked_at),
                "silenced_left_s": max(0.0, alarm.silenced_until - t),
                "value": alarm.value,
                "limit": alarm.limit,
            }
        )
    return {
        "phase": session.phase.value,
        "session_age_s": _age(t, session.session_started_at),
        "inversion_age_s": _age(t, session.inversion_started_at),
        "last_inversion_end_age_s": _age(t, session.last_inversion_end),
        "rest_before_s": session.rest_before_s,
        "upright_age_s": t - session.upright_since,
        "end_requested": session.end_requested,
        "session_closed_s": session.session_closed_s,
        "day_closed_s": session.day_closed_s,
        "inversions": session.inversions,
        "theta": s.theta,
        "tilt_age_s": t - s.tilt_seen_t,
        "hr_bpm": s.hr_bpm,
        "hr_age_s": t - s.hr_seen_t,
        "symptom_age_s": _age(t, s.symptom_t),
        "symptom_theta": s.symptom_theta,
        "alarms": alarms,
    }


def restore(core: SafetyCore, snap: Mapping[str, Any], gap_s: float) -> None:
    """Resume a fresh core from a snapshot taken ``gap_s`` seconds (of wall time) before now.

    Fail-safe: the gap counts as time in whatever phase the user was in, so a crash during an
    inversion counts as inverted time; theta is held at its last value; sensors count as
    silent since their last reading before the crash; listed alarms stay listed.
    """
    t = core.t
    s, session = core.signals, core.session

    def at(age: float | None) -> float | None:
        return None if age is None else t - age - gap_s

    phase = Phase(snap["phase"])
    session.phase = phase
    session.in_session = phase is not Phase.IDLE
    session.inverted = phase is Phase.INVERTED
    session.session_started_at = at(snap["session_age_s"])
    session.inversion_started_at = at(snap["inversion_age_s"]) if session.inverted else None
    session.last_inversion_end = at(snap["last_inversion_end_age_s"])
    session.rest_before_s = snap["rest_before_s"]
    session.upright_since = t - snap["upright_age_s"] - gap_s
    session.end_requested = bool(snap["end_requested"])
    session.session_closed_s = float(snap["session_closed_s"])
    session.day_closed_s = float(snap["day_closed_s"])
    session.inversions = int(snap["inversions"])
    s.theta = snap["theta"]
    s.tilt_seen_t = t - snap["tilt_age_s"] - gap_s
    s.hr_bpm = snap["hr_bpm"]
    s.hr_seen_t = t - snap["hr_age_s"] - gap_s
    s.symptom_t = at(snap["symptom_age_s"])
    s.symptom_theta = snap["symptom_theta"]
    for saved in snap["alarms"]:
        priority = Priority.parse(saved["priority"])
        alarm = Alarm(
            saved["id"],
            (priority, saved["value"], saved["limit"]),
            LATCH_OF.get(saved["id"], Latch.NO),
            t - saved["raised_age_s"] - gap_s,
        )
        alarm.state = AlarmState(saved["state"])
        alarm.condition = bool(saved["condition"])
        alarm.unacked_since = t - saved["unacked_age_s"] - gap_s
        alarm.acked_at = at(saved["acked_age_s"])
        alarm.silenced_until = t + saved["silenced_left_s"] - gap_s
        core.alarms.alarms[alarm.id] = alarm
