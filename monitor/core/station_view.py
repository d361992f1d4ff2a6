"""The station's read model: one frozen snapshot of everything a sink or a status view reads.

Sinks (sound, push, the terminal view, MQTT, the dashboard, the service notifier) never reach
into the core's parts or the station's attributes; they read a :class:`StationView`. The
station produces it (``Station.view()``: the core's state plus the sensors' links, the
station's problems, the session's user); :class:`CoreViews` produces it from a core alone
(replay tools, tests). :func:`state_json` is the status JSON built from it: what the
dashboard shows, what MQTT's ``state`` topic carries, what ``monitor.core.view.screen`` reads.

Pure: no clock (the wall time of a JSON state is passed in), no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from monitor.core.alarms import Alarm, AlarmState, Priority
from monitor.core.session import Phase

if TYPE_CHECKING:
    from monitor.core.engine import SafetyCore
    from monitor.core.profiles import Profile


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One listed alarm as it stands, with its message for a person."""

    id: str
    priority: Priority
    state: AlarmState
    condition: bool
    """Whether the alarm's condition is still present (a latched alarm may outlive it)."""
    value: float | None
    limit: float | None
    message: str
    """The rule's description of the alarm now (``RuleEngine.describe``)."""
    raised_at: float
    unacked_since: float
    acked_at: float | None
    silenced_until: float

    @property
    def acknowledged(self) -> bool:
        """Whether someone acknowledged it (and it has not sounded again since)."""
        return self.state is AlarmState.ACKNOWLEDGED

    def sounding(self, t: float) -> bool:
        """Whether the station should be sounding this alarm at ``t`` (as ``Alarm.sounding``)."""
        return self.state is not AlarmState.ACKNOWLEDGED and t >= self.silenced_until

    @classmethod
    def of(cls, alarm: Alarm, message: str) -> AlarmView:
        """A snapshot of ``alarm``."""
        return cls(
            alarm.id,
            alarm.priority,
            alarm.state,
            alarm.condition,
            alarm.value,
            alarm.limit,
            message,
            alarm.raised_at,
            alarm.unacked_since,
            alarm.acked_at,
            alarm.silenced_until,
        )


@dataclass(frozen=True, slots=True)
class LinkView:
    """One sensor's radio link as the station runs it (``monitor.ble.link.SensorLink``)."""

    name: str
    status: str
    """``searching``, ``connecting``, ``streaming`` or ``lost``."""
    rssi: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class SensorView:
    """One configured sensor: what it sent (the core's counters) and its link, if run."""

    name: str
    kind: str
    is_tilt: bool
    connected: bool | None
    battery_percent: int | None
    malformed: int
    lost: int
    silent_s: float | None
    """Seconds since its signal was last accepted (None: never)."""
    fresh: bool
    """Whether its signal is recent enough to show (not past its lost delay)."""
    link: LinkView | None = None
    rate_hz: float | None = None
    """The tilt sensor's measured sample rate (None: not measured, or not the tilt sensor)."""


@dataclass(frozen=True, slots=True)
class StationView:
    """The station at one moment, read-only. Times are station seconds."""

    t: float
    phase: Phase
    profile: Profile
    theta_deg: float | None
    """The last θ (None before the first); may be stale: see :attr:`tilt_fresh`."""
    rate_dps: float
    hr_bpm: float | None
    """The last accepted heart rate; may be stale: see :attr:`hr_fresh`."""
    tilt_fresh: bool
    hr_fresh: bool
    in_session: bool
    inverted: bool
    hold_s: float | None
    """This inversion's hold so far (None: not inverted)."""
    inversion_started_at: float | None
    rest_s: float | None
    """Rest since the last inversion, within a session and upright (else None)."""
    session_inverted_s: float | None
    """Time inverted in this session (None: no session)."""
    day_inverted_s: float
    session_started_at: float | None
    """When the running session began, on the station clock."""
    alarms: tuple[AlarmView, ...]
    """Every listed alarm, in the order they were first listed."""
    sensors: tuple[SensorView, ...]
    links: tuple[LinkView, ...] = ()
    """The sensors' links, in the order the station runs them (none without a station)."""
    problems: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The station's problems by part (a failing store, a sink, the broker...)."""
    user: str | None = None
    """Whose guided session runs (None: nobody's, or no session)."""
    session_started: str | None = None
    """The running session's ``started_at`` as the store has it, once committed."""
    last_tick: float | None = None
    """When the ticker last advanced the core (None: without a station)."""

    @property
    def theta_fresh_deg(self) -> float | None:
        """θ if it is fresh, else None (what a display shows)."""
        return self.theta_deg if self.tilt_fresh else None

    @property
    def hr_fresh_bpm(self) -> float | None:
        """The heart rate if it is fresh, else None (what a display shows)."""
        return self.hr_bpm if self.hr_fresh else None

    def alarm(self, alarm_id: str) -> AlarmView | None:
        """The listed alarm ``alarm_id``, or None when it is not listed."""
        return next((a for a in self.alarms if a.id == alarm_id), None)

    def by_urgency(self) -> list[AlarmView]:
        """The listed alarms, most urgent first (priority, then the oldest)."""
        return sorted(self.alarms, key=lambda a: (-a.priority, a.raised_at))

    def sounding(self, t: float) -> list[AlarmView]:
        """The alarms the station should be sounding at ``t``, most urgent first
        (as ``AlarmManager.sounding``)."""
        return [a for a in self.by_urgency() if a.sounding(t)]

    def sensor(self, name: str) -> SensorView | None:
        """The configured sensor ``name``, or None."""
        return next((s for s in self.sensors if s.name == name), None)


class ViewSource(Protocol):
    """Something that produces the station's read model (a ``Station``; :class:`CoreViews`)."""

    def view(self) -> StationView:
        """The state now."""
        ...


def view_of(
    core: SafetyCore,
    *,
    links: Sequence[LinkView] = (),
    problems: Mapping[str, str] | None = None,
    tilt_rate_hz: float | None = None,
    user: str | None = None,
    session_started: str | None = None,
    last_tick: float | None = None,
) -> StationView:
    """The read model of ``core`` now, with what only the station knows passed in."""
    t = core.t
    s, session, p = core.signals, core.session, core.profile
    hr_fresh = s.hr_bpm is not None and t - s.hr_seen_t < p.hr_lost_delay_s
    tilt_fresh = s.theta is not None and t - s.tilt_seen_t < p.tilt_lost_delay_s
    rest = (
        t - session.last_inversion_end
        if session.in_session and not session.inverted and session.last_inversion_end is not None
        else None
    )
    describe = core.rules.describe
    return StationView(
        t=t,
        phase=session.phase,
        profile=p,
        theta_deg=s.theta,
        rate_dps=s.rate_dps,
        hr_bpm=s.hr_bpm,
        tilt_fresh=tilt_fresh,
        hr_fresh=hr_fresh,
        in_session=session.in_session,
        inverted=session.inverted,
        hold_s=session.hold_s(t) if session.inverted else None,
        inversion_started_at=session.inversion_started_at,
        rest_s=rest,
        session_inverted_s=session.session_inverted_s(t) if session.in_session else None,
        day_inverted_s=session.day_inverted_s(t),
        session_started_at=session.session_started_at,
        alarms=tuple(
            AlarmView.of(a, describe(a.id, a.priority, a.value, a.limit))
            for a in core.alarms.alarms.values()
        ),
        sensors=_sensor_views(core, links, tilt_fresh, hr_fresh, tilt_rate_hz),
        links=tuple(links),
        problems=MappingProxyType(dict(problems or {})),
        user=user,
        session_started=session_started,
        last_tick=last_tick,
    )


def _sensor_views(
    core: SafetyCore,
    links: Sequence[LinkView],
    tilt_fresh: bool,
    hr_fresh: bool,
    tilt_rate_hz: float | None,
) -> tuple[SensorView, ...]:
    """Each sensor's view, with its link's (by name) beside it."""
    t, s = core.t, core.signals
    by_name = {link.name: link for link in links}
    sensors = []
    for sensor, spec in core.sensors.items():
        stats = core.stats.sensors[sensor]
        is_tilt = sensor == core.tilt_name
        seen_t = s.tilt_seen_t if is_tilt else s.hr_seen_t
        sensors.append(
            SensorView(
                sensor,
                spec.kind.value,
                is_tilt,
                stats.connected,
                stats.battery_percent,
                stats.malformed,
                stats.lost,
                t - seen_t if math.isfinite(seen_t) else None,
                tilt_fresh if is_tilt else hr_fresh,
                by_name.get(sensor),
                tilt_rate_hz if is_tilt else None,
            )
        )
    return tuple(sensors)


class CoreViews:
    """Views of a core alone, without a station (no links, no problems): for tools and tests
    that drive a core and its sinks directly."""

    def __init__(self, core: SafetyCore) -> None:
        self.core = core

    def view(self) -> StationView:
        """The core's state now."""
        return view_of(self.core)


# -- the status JSON ----------------------------------------------------------------------


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _session_started(view: StationView, wall: datetime) -> str | None:
    """When the running session began: the store's own ``started_at`` once its row is
    committed (what history shows: one source), else reckoned from the station's clock."""
    if view.session_started is not None:
        return view.session_started
    started = view.session_started_at
    if started is None:
        return None
    return (wall - timedelta(seconds=view.t - started)).isoformat(timespec="seconds")


def _sensor_json(sensor: SensorView) -> dict[str, Any]:
    link = sensor.link
    return {
        "name": sensor.name,
        "kind": sensor.kind,
        "link": link.status if link is not None else None,
        "connected": sensor.connected,
        "battery_percent": sensor.battery_percent,
        "rssi_dbm": None if link is None else link.rssi,
        "malformed": sensor.malformed,
        "lost": sensor.lost,
        "last_error": None if link is None else link.last_error,
        "rate_hz": _r(sensor.rate_hz) if sensor.is_tilt else None,
        "silent_s": _r(sensor.silent_s),
        "fresh": sensor.fresh,
    }


def _alarm_json(alarm: AlarmView, t: float) -> dict[str, Any]:
    return {
        "id": alarm.id,
        "priority": alarm.priority.label,
        "state": alarm.state.value,
        "condition": alarm.condition,
        "acknowledged": alarm.acknowledged,
        "sounding": alarm.sounding(t),
        "silenced_for_s": _r(max(0.0, alarm.silenced_until - t)),
        "value": _r(alarm.value, 2),
        "limit": _r(alarm.limit, 2),
        "message": alarm.message,
        "raised_s_ago": _r(t - alarm.raised_at),
    }


def state_json(view: StationView, name: str, wall: datetime) -> dict[str, Any]:
    """Phase, theta, heart rate, timers against limits, sensors, listed alarms, problems:
    the station's state as one JSON-able object; ``wall`` is the wall-clock time of ``view``."""
    t, p = view.t, view.profile
    hold = view.hold_s
    alarms = [_alarm_json(alarm, t) for alarm in view.by_urgency()]
    return {
        "station": name,
        "at": wall.isoformat(timespec="milliseconds"),
        "t": round(t, 3),
        "phase": view.phase.value,
        "user": view.user,
        "theta_deg": _r(view.theta_fresh_deg),
        "theta_last_deg": _r(view.theta_deg),
        "rate_dps": _r(view.rate_dps) if view.tilt_fresh else None,
        "hr_bpm": _r(view.hr_fresh_bpm, 0),
        "timers": {
            "hold_s": _r(hold),
            "max_hold_s": p.max_hold_s,
            "hold_left_s": None if hold is None else _r(p.max_hold_s - hold),
            "rest_s": _r(view.rest_s),
            "min_rest_s": p.min_rest_s,
            "session_inverted_s": _r(view.session_inverted_s),
            "max_session_inverted_s": p.max_session_inverted_s,
            "day_inverted_s": _r(view.day_inverted_s),
            "max_day_inverted_s": p.max_day_inverted_s,
            "session_started": _session_started(view, wall),
        },
        "profile": {
            "name": p.name,
            "max_angle_deg": p.max_angle_deg,
            "max_hold_s": p.max_hold_s,
            "min_rest_s": p.min_rest_s,
            "max_session_inverted_s": p.max_session_inverted_s,
            "max_day_inverted_s": p.max_day_inverted_s,
            "hr_high_bpm": p.hr_high_bpm,
            "hr_low_bpm": p.hr_low_bpm,
        },
        "sensors": [_sensor_json(sensor) for sensor in view.sensors],
        "alarms": alarms,
        "highest_priority": alarms[0]["priority"] if alarms else None,
        "problems": dict(view.problems),
    }
