"""The safety rules of SPEC section 6: one table, one method per rule, pure.

Each rule looks at the current signals and the session and says whether its condition is
present, at what priority, with its value and limit. "For d s" means the condition has held
continuously for d seconds: the rule reports it from that moment, not later. Rules are asked
only during a session (``user.symptom`` also outside one: the user asked for help).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.core.alarms import Latch, Priority, Want
from monitor.core.deadline import earliest
from monitor.core.limits import SESSION_HARD_CAP_S
from monitor.core.session import INVERTED_AT_DEG, SessionTracker

if TYPE_CHECKING:
    from monitor.core.profiles import Profile

HIGH, MEDIUM, LOW = Priority.HIGH, Priority.MEDIUM, Priority.LOW


def median(values: list[float]) -> float:
    """``statistics.median`` (same result: the middle value, or the mean of the two middle
    ones), without importing ``statistics`` (its fractions and decimal cost the core's import
    time a sixth)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


SLOW_RULES_CELLS_PER_S = 10
"""Heart-rate and battery rules change only with their own readings or slowly with time:
between those readings they are evaluated once per 0.1 s cell of the clock (tilt drives 100 Hz
steps). Cells of the clock, not 0.1 s since the last time, so a live run and the replay of its
trace evaluate them in the same cells."""
MIN_BASELINE_READINGS = 10
"""``hr.spike`` needs this many readings in the preceding 60 s before it judges a jump."""
THETA_TRAIL_STEP_S = 0.1
IMPACT_PRESENT_S = 1.0
"""An impact's condition lasts this long after its last over-threshold sample (it latches
anyway); a fixed span keeps the events the same whatever the step cadence."""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A row of the rule table."""

    id: str
    title: str
    latch: Latch


RULES: tuple[RuleInfo, ...] = (
    RuleInfo("angle.over_limit", "Angle over limit", Latch.HIGH_ONLY),
    RuleInfo("inversion.hold_limit", "Inverted too long", Latch.HIGH_ONLY),
    RuleInfo("inversion.rest_too_short", "Rest too short", Latch.NO),
    RuleInfo("session.total_limit", "Session inverted time", Latch.HIGH_ONLY),
    RuleInfo("day.total_limit", "Day inverted time", Latch.NO),
    RuleInfo("motion.too_fast", "Moving too fast", Latch.NO),
    RuleInfo("motion.impact", "Impact", Latch.YES),
    RuleInfo("hr.high", "Heart rate high", Latch.HIGH_ONLY),
    RuleInfo("hr.spike", "Heart-rate spike", Latch.NO),
    RuleInfo("hr.low", "Heart rate low", Latch.HIGH_ONLY),
    RuleInfo("hr.artifacts", "Heart-rate artifacts", Latch.NO),
    RuleInfo("hr.signal_lost", "Heart-rate signal lost", Latch.HIGH_ONLY),
    RuleInfo("tilt.signal_lost", "Tilt signal lost", Latch.HIGH_ONLY),
    RuleInfo("user.symptom", "User pressed STOP", Latch.YES),
    RuleInfo("inversion.not_returning", "Not returning upright", Latch.YES),
    RuleInfo("sensor.battery_low", "Sensor battery low", Latch.NO),
)
RULE_IDS = tuple(r.id for r in RULES)
LATCH_OF = {r.id: r.latch for r in RULES}
TITLE_OF = {r.id: r.title for r in RULES}


class Signals:
    """The clean signals the rules read; the core keeps them current."""

    __slots__ = (
        "accel_g",
        "battery",
        "external",
        "hr_bpm",
        "hr_checks",
        "hr_configured",
        "hr_history",
        "hr_rejected",
        "hr_seen_t",
        "hr_version",
        "impact_at",
        "impact_g",
        "rate_dps",
        "slow_version",
        "symptom_pending",
        "symptom_t",
        "symptom_theta",
        "theta",
        "theta_trail",
        "tilt_configured",
        "tilt_seen_t",
        "zero_cross_t",
    )

    def __init__(self, t0: float, has_tilt: bool, has_hr: bool) -> None:
        self.theta: float | None = None
        self.rate_dps = 0.0
        self.accel_g: float | None = None
        self.tilt_configured = has_tilt
        self.tilt_seen_t = t0
        self.zero_cross_t = float("-inf")
        self.theta_trail: deque[tuple[float, float]] = deque()
        self.impact_g: float | None = None
        """The peak |a| of the latest impact (reset when its condition ends)."""
        self.impact_at = float("-inf")
        """When the latest impact sample was seen."""
        self.hr_configured = has_hr
        self.hr_bpm: float | None = None
        self.hr_seen_t = t0
        self.hr_version = 0
        """Bumped by the core with each accepted heart-rate reading (the spike rule's input)."""
        self.hr_history: deque[tuple[float, float]] = deque()
        self.hr_checks: deque[tuple[float, bool]] = deque()
        self.hr_rejected = 0
        self.battery: dict[str, int] = {}
        self.symptom_t: float | None = None
        self.symptom_theta: float | None = None
        self.symptom_pending = False
        self.slow_version = 0
        """Bumped by the core whenever an input of the slow rules (heart rate, battery, a
        link, a user input) changed: the rules re-judge them at once instead of at the next
        cell. The rules compare it with the version they last judged; they never write it."""
        self.external: dict[str, Want] = {}
        """Conditions the shell reports (e.g. ``link.lost`` from the MQTT bridge)."""

    # The core (never the rules) calls these two around :meth:`Rules.evaluate`: the rules
    # only read their inputs, so an impact that is over and a symptom the user came up from
    # are let go here, at exactly the evaluations where the rules would see them end.

    def expire(self, t: float, in_session: bool, inverted: bool, hr_window_s: float) -> None:
        """Before the rules judge ``t``: an impact 1 s past its last sample (judged in a
        session only) and a symptom neither new nor held by an inversion are over; heart-rate
        checks older than the artifact window leave it."""
        checks = self.hr_checks
        if checks:
            horizon = t - hr_window_s
            while checks and checks[0][0] < horizon:
                if checks.popleft()[1]:
                    self.hr_rejected -= 1
        if in_session and self.impact_g is not None and t - self.impact_at >= IMPACT_PRESENT_S:
            self.impact_g = None
        if self.symptom_t is not None and not (self.symptom_pending or inverted):
            self.symptom_t = self.symptom_theta = None

    def judged(self) -> None:
        """After the rules judged: a new symptom has been seen once."""
        if self.symptom_t is not None:
            self.symptom_pending = False


class ImpactDetector:
    """A fall: |a| < 0.5 g for >= 80 ms, then |a| > 2.5 g within 1 s; or any |a| > 3 g.

    Fed the median-filtered |a|, so a single glitch sample cannot look like an impact.
    """

    __slots__ = ("_armed_until", "_freefall_g", "_impact_g", "_low_since", "_shock_g", "p")

    def __init__(self, profile: Profile) -> None:
        self.p = profile
        # the profile's numbers asked every sample, read once: a pydantic model's attribute
        # costs ~23 ns on Python 3.11, a slot ~6 ns
        self._freefall_g = profile.freefall_g
        self._shock_g = profile.shock_g
        self._impact_g = profile.impact_g
        self._low_since: float | None = None
        self._armed_until = float("-inf")

    def reset(self) -> None:
        """Forget a free fall in progress (the sensor's stream was interrupted)."""
        self._low_since = None
        self._armed_until = float("-inf")

    def update(self, t: float, accel_g: float) -> float | None:
        """Take one |a| sample; return it when it is an impact."""
        if accel_g < self._freefall_g:
            if self._low_since is None:
                self._low_since = t
            return None
        if self._low_since is not None:
            p = self.p
            if t - self._low_since >= p.freefall_min_s:
                self._armed_until = t + p.impact_window_s
            self._low_since = None
        if accel_g > self._shock_g or (accel_g > self._impact_g and t <= self._armed_until):
            return accel_g
        return None


class Held:
    """Since when a condition has held continuously."""

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since: float | None = None

    def held(self, condition: bool, t: float) -> float:
        """Seconds the condition has held at ``t``; -1 when it does not hold."""
        if not condition:
            self.since = None
            return -1.0
        if self.since is None:
            self.since = t
        return t - self.since


class RuleEngine:
    """Evaluates the rule table against the signals and the session."""

    def __init__(
        self,
        profile: Profile,
        signals: Signals,
        session: SessionTracker,
        age_years: float | None = None,
    ) -> None:
        self.p = profile
        self.s = signals
        self.session = session
        self.hr_critical_high_bpm = profile.hr_critical_high_bpm(age_years)
        # the profile's numbers the tilt rules ask every sample, read once (a pydantic
        # model's attribute costs ~23 ns on Python 3.11, a plain one ~6 ns)
        self._angle_limits = (
            profile.max_angle_deg,
            profile.max_angle_deg + profile.angle_high_margin_deg,
        )
        self._motion_band = (-profile.come_up_max_dps, profile.motion_max_dps)
        self._angle = (Held(), Held())
        self._motion = (Held(), Held())
        self._hr_high = (Held(), Held())
        self._hr_low = (Held(), Held())
        self._spike = Held()
        self._spike_want: tuple[float, float] | None = None
        self._artifacts = Held()
        self._not_returning = Held()
        Rule = Callable[[float], Want | None]
        # The rules asked at every step of a session (tilt drives 100 Hz steps). Only those
        # that can be present are asked: the ones below hold timers or read theta and time at
        # every step; the inverted-time rules are absent, by their definitions, unless the
        # user is inverted; impact and symptom are absent unless their signal is set. Asking
        # the others would only return None (they keep no state), at a fifth of the core's
        # cost per sample.
        self._slow_rules: tuple[tuple[str, Rule], ...] = (
            ("hr.high", self.hr_high),
            ("hr.spike", self.hr_spike),
            ("hr.low", self.hr_low),
            ("hr.artifacts", self.hr_artifacts),
            ("hr.signal_lost", self.hr_signal_lost),
            ("sensor.battery_low", self.battery_low),
        )
        self._slow_cell_end = 0
        """The slow rules' current cell ends where ``t * SLOW_RULES_CELLS_PER_S`` reaches this
        (time never goes back in a core)."""
        self._slow_wants: dict[str, Want] = {}
        self._slow_judged: int | None = None
        """The ``Signals.slow_version`` the slow rules last judged (None: judge them next)."""
        self._hr_judged = 0
        """The ``Signals.hr_version`` the spike rule last judged."""

    def evaluate(self, t: float) -> dict[str, Want]:
        """Every present condition at ``t``, by rule id.

        Long because the per-sample rules are asked written out, in the table's order, not
        from a loop (asked 100 times a second; a loop over (id, method) pairs cost a few per
        cent of a replay)."""
        s = self.s
        if s.hr_version != self._hr_judged:
            self._hr_judged = s.hr_version
            self._spike_want = self._judge_spike(t)
        wants: dict[str, Want] = {}
        session = self.session
        if session.in_session:
            # The tilt rules, in this order, written out: asked 100 times a second.
            want = self.angle_over_limit(t)
            if want is not None:
                wants["angle.over_limit"] = want
            want = self.too_fast(t)
            if want is not None:
                wants["motion.too_fast"] = want
            want = self.tilt_signal_lost(t)
            if want is not None:
                wants["tilt.signal_lost"] = want
            want = self.not_returning(t)
            if want is not None:
                wants["inversion.not_returning"] = want
            if session.inverted:  # the inverted-time rules, in this order, written out
                want = self.hold_limit(t)
                if want is not None:
                    wants["inversion.hold_limit"] = want
                want = self.rest_too_short(t)
                if want is not None:
                    wants["inversion.rest_too_short"] = want
                want = self.session_total(t)
                if want is not None:
                    wants["session.total_limit"] = want
                want = self.day_total(t)
                if want is not None:
                    wants["day.total_limit"] = want
            if s.impact_g is not None:
                want = self.impact(t)
                if want is not None:
                    wants["motion.impact"] = want
            if s.symptom_t is not None:
                want = self.symptom(t)
                if want is not None:
                    wants["user.symptom"] = want
            cells = t * SLOW_RULES_CELLS_PER_S
            if s.slow_version != self._slow_judged or cells >= self._slow_cell_end:
                self._slow_judged = s.slow_version
                self._slow_cell_end = int(cells) + 1
                slow: dict[str, Want] = {}
                for rule_id, rule in self._slow_rules:
                    want = rule(t)
                    if want is not None:
                        slow[rule_id] = want
                self._slow_wants = slow
            if self._slow_wants:
                wants.update(self._slow_wants)
            if s.external:
                wants.update(s.external)
        else:
            self._slow_judged = None
            self._slow_wants = {}
            want = self.symptom(t)
            if want is not None:
                wants["user.symptom"] = want
        return wants

    # -- angle and time ------------------------------------------------------------------

    def angle_over_limit(self, t: float) -> Want | None:
        """theta > max_angle for 2 s: medium; theta > max_angle + 20 for 2 s: high."""
        theta = self.s.theta
        p = self.p
        limit, high_limit = self._angle_limits
        if theta is None or (theta <= limit and theta <= high_limit):  # (neither holds)
            self._angle[0].since = None
            self._angle[1].since = None
            return None
        if self._angle[1].held(theta > high_limit, t) >= p.angle_delay_s:
            self._angle[0].held(True, t)
            return (HIGH, theta, high_limit)
        if self._angle[0].held(theta > limit, t) >= p.angle_delay_s:
            return (MEDIUM, theta, limit)
        return None

    def hold_limit(self, t: float) -> Want | None:
        """Continuous inverted time >= max_hold: medium; >= 2 x max_hold: high."""
        start = self.session.inversion_started_at  # (session.hold_s(t), written out)
        hold = t - start if start is not None else 0.0
        limit = self.p.max_hold_s
        if hold >= 2 * limit:
            return (HIGH, hold, 2 * limit)
        if hold >= limit:
            return (MEDIUM, hold, limit)
        return None

    def rest_too_short(self, t: float) -> Want | None:
        """This inversion started less than min_rest after the previous one ended."""
        rest = self.session.rest_before_s
        if self.session.inverted and rest is not None and rest < self.p.min_rest_s:
            return (LOW, rest, self.p.min_rest_s)
        return None

    def session_total(self, t: float) -> Want | None:
        """Inverted time this session over its limit, while inverted; high at the hard cap."""
        session = self.session
        if not session.inverted:
            return None
        start = session.inversion_started_at  # (session.session_inverted_s(t), written out)
        total = session.session_closed_s + (t - start if start is not None else 0.0)
        if total >= SESSION_HARD_CAP_S:
            return (HIGH, total, SESSION_HARD_CAP_S)
        if total >= self.p.max_session_inverted_s:
            return (MEDIUM, total, self.p.max_session_inverted_s)
        return None

    def day_total(self, t: float) -> Want | None:
        """Inverted time today over its limit, while inverted."""
        if not self.session.inverted:
            return None
        total = self.session.day_inverted_s(t)
        if total >= self.p.max_day_inverted_s:
            return (LOW, total, self.p.max_day_inverted_s)
        return None

    # -- motion --------------------------------------------------------------------------

    def too_fast(self, t: float) -> Want | None:
        """|dtheta/dt| > 90 deg/s for 0.5 s: medium; falling faster than 30 deg/s while
        theta > 10 deg for 0.5 s ("come up slowly"): low."""
        rate = self.s.rate_dps
        slowest, fastest = self._motion_band  # (-come_up_max_dps, motion_max_dps)
        if slowest <= rate <= fastest and (
            -rate <= fastest
        ):  # (the common case: neither too fast nor falling fast, so neither holds)
            self._motion[0].since = None
            self._motion[1].since = None
            return None
        theta = self.s.theta
        p = self.p
        delay = p.motion_delay_s
        fast = self._motion[1].held(abs(rate) > self.p.motion_max_dps, t)
        if fast >= delay:
            self._motion[0].held(False, t)
            return (MEDIUM, rate, self.p.motion_max_dps)
        falling = theta is not None and theta > INVERTED_AT_DEG and -rate > self.p.come_up_max_dps
        if self._motion[0].held(falling, t) >= delay:
            return (LOW, rate, self.p.come_up_max_dps)
        return None

    def impact(self, t: float) -> Want | None:
        """A fall's impact, as the core's detector saw it, for 1 s after its last sample."""
        s = self.s
        g = s.impact_g
        if g is None:
            return None
        if t - s.impact_at >= IMPACT_PRESENT_S:  # (the engine has let it go: Signals.expire)
            return None
        return (HIGH, g, self.p.shock_g if g > self.p.shock_g else self.p.impact_g)

    # -- heart rate ----------------------------------------------------------------------

    def _hr_now(self, t: float) -> float | None:
        """The heart rate, or None when no reading was accepted within the lost delay."""
        s = self.s
        if s.hr_bpm is None or t - s.hr_seen_t >= self.p.hr_lost_delay_s:
            return None
        return s.hr_bpm

    def hr_high(self, t: float) -> Want | None:
        """HR > 120 for 10 s: medium; HR > the age-dependent limit for 5 s: high."""
        hr = self._hr_now(t)
        p = self.p
        high = self._hr_high[1].held(hr is not None and hr > self.hr_critical_high_bpm, t)
        med = self._hr_high[0].held(hr is not None and hr > p.hr_high_bpm, t)
        if high >= p.hr_critical_high_delay_s:
            return (HIGH, hr, self.hr_critical_high_bpm)
        if med >= p.hr_high_delay_s:
            return (MEDIUM, hr, p.hr_high_bpm)
        return None

    def hr_low(self, t: float) -> Want | None:
        """HR < 45 for 10 s: medium; HR < 40 for 5 s: high."""
        hr = self._hr_now(t)
        p = self.p
        high = self._hr_low[1].held(hr is not None and hr < p.hr_critical_low_bpm, t)
        med = self._hr_low[0].held(hr is not None and hr < p.hr_low_bpm, t)
        if high >= p.hr_critical_low_delay_s:
            return (HIGH, hr, p.hr_critical_low_bpm)
        if med >= p.hr_low_delay_s:
            return (MEDIUM, hr, p.hr_low_bpm)
        return None

    def _judge_spike(self, t: float) -> tuple[float, float] | None:
        """At a new accepted reading: (bpm, threshold) if it is >= 30 above the median of the
        preceding 60 s and rose by >= 30 within the last 15 s, else None."""
        history = self.s.hr_history
        if not history:
            return None
        now_t, bpm = history[-1]
        p = self.p
        baseline = [b for ht, b in history if now_t - p.hr_spike_baseline_s <= ht < now_t]
        if len(baseline) < MIN_BASELINE_READINGS:
            return None
        threshold = median(baseline) + p.hr_spike_bpm
        recent = [b for ht, b in history if now_t - p.hr_spike_rise_s <= ht < now_t]
        if bpm >= threshold and recent and bpm - min(recent) >= p.hr_spike_bpm:
            return (bpm, threshold)
        return None

    def hr_spike(self, t: float) -> Want | None:
        """A jump of >= 30 bpm over the last minute's median, reached within 15 s, for 5 s;
        not judged for 20 s after theta crosses 0 (posture change)."""
        s = self.s
        spike = self._spike_want
        if self._hr_now(t) is None or t - s.zero_cross_t < self.p.hr_spike_posture_s:
            spike = None
        if self._spike.held(spike is not None, t) >= self.p.hr_spike_delay_s:
            assert spike is not None
            return (MEDIUM, spike[0], spike[1])
        return None

    def hr_artifacts(self, t: float) -> Want | None:
        """More than 20 % of heart-rate readings rejected over 30 s, for 30 s."""
        s = self.s
        checks = s.hr_checks  # (the window kept by the engine: Signals.expire)
        fraction = s.hr_rejected / len(checks) if checks else 0.0
        bad = fraction > self.p.hr_artifact_fraction
        if self._artifacts.held(bad, t) >= self.p.hr_artifact_delay_s:
            return (LOW, 100 * fraction, 100 * self.p.hr_artifact_fraction)
        return None

    def hr_signal_lost(self, t: float) -> Want | None:
        """No accepted heart-rate reading for 5 s: low upright, medium inverted, high when
        inverted and lost for 30 s."""
        s = self.s
        if not s.hr_configured:
            return None
        lost = t - s.hr_seen_t
        p = self.p
        if lost < p.hr_lost_delay_s:
            return None
        if self.session.inverted:
            if lost >= p.hr_lost_high_s:
                return (HIGH, lost, p.hr_lost_high_s)
            return (MEDIUM, lost, p.hr_lost_delay_s)
        return (LOW, lost, p.hr_lost_delay_s)

    # -- sensors and the user ------------------------------------------------------------

    def tilt_signal_lost(self, t: float) -> Want | None:
        """No tilt reading for 2 s: medium; high when theta was last >= 10 deg and the signal
        has been lost for 10 s."""
        s = self.s
        if not s.tilt_configured:
            return None
        lost = t - s.tilt_seen_t
        p = self.p
        if lost < p.tilt_lost_delay_s:
            return None
        if lost >= p.tilt_lost_high_s and s.theta is not None and s.theta >= INVERTED_AT_DEG:
            return (HIGH, lost, p.tilt_lost_high_s)
        return (MEDIUM, lost, p.tilt_lost_delay_s)

    def symptom(self, t: float) -> Want | None:
        """STOP pressed: medium, present until the user is upright; high if theta has not
        fallen by 5 deg within 15 s of the press."""
        s = self.s
        if s.symptom_t is None:
            return None
        if not (s.symptom_pending or self.session.inverted):  # (the engine lets it go)
            return None
        theta, before = s.theta, s.symptom_theta
        fell = 0.0 if theta is None or before is None else before - theta
        if t - s.symptom_t >= self.p.symptom_window_s and fell < self.p.symptom_fall_deg:
            return (HIGH, fell, self.p.symptom_fall_deg)
        return (MEDIUM, fell, self.p.symptom_fall_deg)

    def not_returning(self, t: float) -> Want | None:
        """hold_limit or session.total_limit present and theta has not fallen by 5 deg over
        the last 30 s, for 30 s."""
        p = self.p
        session = self.session
        if not session.inverted:  # (not inverted: the condition does not hold)
            self._not_returning.since = None
            return None
        # session.hold_s(t) and session.session_inverted_s(t), written out (asked every
        # inverted sample): the same arithmetic, without two calls
        start = session.inversion_started_at
        hold = t - start if start is not None else 0.0
        if hold < p.max_hold_s and session.session_closed_s + hold < p.max_session_inverted_s:
            self._not_returning.since = None  # (neither limit reached: it does not hold)
            return None
        s = self.s
        trail = s.theta_trail
        stuck = False
        fell = 0.0
        if trail and s.theta is not None:
            fell = trail[0][1] - s.theta
            stuck = fell < p.not_returning_fall_deg
        if self._not_returning.held(stuck, t) >= p.not_returning_window_s:
            return (HIGH, fell, p.not_returning_fall_deg)
        return None

    def battery_low(self, t: float) -> Want | None:
        """A sensor's battery at or below 15 %."""
        if not self.s.battery:
            return None
        lowest = min(self.s.battery.values())
        if lowest <= self.p.battery_low_percent:
            return (LOW, float(lowest), self.p.battery_low_percent)
        return None

    # -- time --------------------------------------------------------------------------

    def next_change(self, t: float) -> float:
        """The earliest time after ``t`` at which a rule's answer may change with no new
        reading: a "for d s" delay running out, a signal growing stale, an inverted-time
        limit reached, the theta trail moving on. Letting time pass up to it changes nothing
        but the values of time-measuring conditions (replay jumps gaps with it). Conservative:
        a time too early only costs a step; a time too late would be a bug."""
        p, s, session = self.p, self.s, self.session
        times: list[float] = []

        def held(timer: Held, *delays: float) -> None:
            if timer.since is not None:
                times.extend(timer.since + d for d in delays)

        held(self._angle[0], p.angle_delay_s)
        held(self._angle[1], p.angle_delay_s)
        held(self._motion[0], p.motion_delay_s)
        held(self._motion[1], p.motion_delay_s)
        held(self._hr_high[0], p.hr_high_delay_s)
        held(self._hr_high[1], p.hr_critical_high_delay_s)
        held(self._hr_low[0], p.hr_low_delay_s)
        held(self._hr_low[1], p.hr_critical_low_delay_s)
        held(self._spike, p.hr_spike_delay_s)
        held(self._artifacts, p.hr_artifact_delay_s)
        held(self._not_returning, p.not_returning_window_s)
        times += (
            s.tilt_seen_t + p.tilt_lost_delay_s,
            s.tilt_seen_t + p.tilt_lost_high_s,
            s.hr_seen_t + p.hr_lost_delay_s,
            s.hr_seen_t + p.hr_lost_high_s,
            s.zero_cross_t + p.hr_spike_posture_s,
        )
        if s.impact_g is not None:
            times.append(s.impact_at + IMPACT_PRESENT_S)
        if s.symptom_t is not None:
            times.append(s.symptom_t + p.symptom_window_s)
        if s.hr_checks:
            times.append(s.hr_checks[0][0] + p.hr_artifact_window_s)
        times.append(self._trail_change(t))
        start = session.inversion_started_at
        if start is not None:
            closed = session.session_closed_s
            times += (
                start + p.max_hold_s,
                start + 2 * p.max_hold_s,
                start + p.max_session_inverted_s - closed,
                start + SESSION_HARD_CAP_S - closed,
                t + p.max_day_inverted_s - session.day_inverted_s(t),
            )
        return earliest(t, times)

    def _trail_change(self, t: float) -> float:
        """When the theta trail's head (what ``not_returning`` compares with) may take a new
        value: when the horizon reaches the first entry that differs from it, or, if none
        does, an entry a gap adds (after ``t``, with the current theta)."""
        trail = self.s.theta_trail
        if not trail:
            return math.inf
        window = self.p.not_returning_window_s
        head = trail[0][1]
        for entry_t, theta in itertools.islice(trail, 1, None):
            if theta != head:
                # not before now: a pop that is due waits for the trail's next entry
                return max(entry_t + window, t)
        return math.inf if self.s.theta == head else t + window

    # -- messages ------------------------------------------------------------------------

    def describe(
        self, alarm_id: str, priority: Priority, value: float | None, limit: float | None
    ) -> str:
        """The human sentence of a raised or escalated alarm: value against limit."""
        v = 0.0 if value is None else value
        lim = 0.0 if limit is None else limit
        s, p = self.s, self.p
        texts: dict[str, Callable[[], str]] = {
            # The user's own limit, also when the alarm's limit is the high-priority threshold
            # (limit + 20°, 2 x the hold, the 600 s hard cap): a therapist reads it as theirs.
            "angle.over_limit": lambda: f"Angle {v:.0f}° > {p.max_angle_deg:.0f}°",
            "inversion.hold_limit": lambda: f"Inverted for {v:.0f} s (limit {p.max_hold_s:.0f} s)",
            "inversion.rest_too_short": lambda: (
                f"Inverted again after {v:.0f} s of rest (rest at least {lim:.0f} s)"
            ),
            "session.total_limit": lambda: (
                f"Inverted {v:.0f} s this session (limit {p.max_session_inverted_s:.0f} s): "
                "come up slowly"
            ),
            "day.total_limit": lambda: f"Inverted {v:.0f} s today (limit {lim:.0f} s)",
            "motion.too_fast": lambda: (
                f"Moving too fast: {abs(v):.0f}°/s > {lim:.0f}°/s"
                if priority >= MEDIUM
                else f"Come up slowly: {abs(v):.0f}°/s > {lim:.0f}°/s"
            ),
            "motion.impact": lambda: f"Impact: {v:.1f} g > {lim:.1f} g",
            "hr.high": lambda: f"HR {v:.0f} > {lim:.0f}",
            "hr.spike": lambda: f"HR {v:.0f} > {lim:.0f}: a sudden rise over the last minute",
            "hr.low": lambda: f"HR {v:.0f} < {lim:.0f}",
            "hr.artifacts": lambda: (
                f"{v:.0f} % of heart-rate readings rejected > {lim:.0f} %: check the strap"
            ),
            "hr.signal_lost": lambda: f"Heart-rate signal lost for {v:.0f} s",
            "tilt.signal_lost": lambda: f"Tilt sensor lost for {v:.0f} s",
            "user.symptom": lambda: (
                "STOP pressed: not coming up"
                if priority is HIGH
                else "STOP pressed: the user feels unwell"
            ),
            "inversion.not_returning": lambda: (
                f"Not coming up: fell {max(v, 0.0):.0f}° in 30 s (< {lim:.0f}°)"
            ),
            "link.lost": lambda: f"Link to the clinic hub lost for {v:.0f} s",
            "sensor.battery_low": lambda: (
                "Battery low: "
                + ", ".join(f"{n} {pct} %" for n, pct in sorted(s.battery.items()) if pct <= lim)
            ),
        }
        text = texts.get(alarm_id)
        return text() if text is not None else TITLE_OF.get(alarm_id, alarm_id)
