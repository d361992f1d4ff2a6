"""The station's state as one JSON-able object: what the dashboard shows, what MQTT's
``state`` topic carries, what the service reports. Read-only over the station."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.core.alarms import AlarmState

if TYPE_CHECKING:
    from monitor.station.station import Station


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _session_started(station: Station, wall: datetime) -> str | None:
    """When the running session began: the store's own ``started_at`` once its row is
    committed (what history shows: one source), else reckoned from the station's clock."""
    journal = station.journal
    if journal is not None and journal.session_started_at is not None:
        return journal.session_started_at
    core = station.core
    started = core.session.session_started_at
    if started is None:
        return None
    return (wall - timedelta(seconds=core.t - started)).isoformat(timespec="seconds")


def station_state(station: Station, name: str = "") -> dict[str, Any]:
    """Phase, theta, heart rate, timers against limits, sensors, listed alarms."""
    core = station.core
    t = core.t
    s, session, p = core.signals, core.session, core.profile
    hr_fresh = s.hr_bpm is not None and t - s.hr_seen_t < p.hr_lost_delay_s
    tilt_fresh = s.theta is not None and t - s.tilt_seen_t < p.tilt_lost_delay_s
    hold = session.hold_s(t) if session.inverted else None
    rest = (
        t - session.last_inversion_end
        if session.in_session and not session.inverted and session.last_inversion_end is not None
        else None
    )
    sensors = []
    links = {link.name: link for link in station.links}
    for sensor, spec in core.sensors.items():
        stats = core.stats.sensors[sensor]
        link = links.get(sensor)
        is_tilt = sensor == core.tilt_name
        seen_t = s.tilt_seen_t if is_tilt else s.hr_seen_t
        silent_s = t - seen_t if math.isfinite(seen_t) else None
        sensors.append(
            {
                "name": sensor,
                "kind": spec.kind.value,
                "link": link.state.status.value if link is not None else None,
                "connected": stats.connected,
                "battery_percent": stats.battery_percent,
                "rssi_dbm": None if link is None else link.state.rssi,
                "malformed": stats.malformed,
                "lost": stats.lost,
                "last_error": None if link is None else link.state.last_error,
                "rate_hz": _r(station.tilt_rate.rate_hz) if is_tilt else None,
                "silent_s": _r(silent_s),
                "fresh": tilt_fresh if is_tilt else hr_fresh,
            }
        )
    alarms = []
    for alarm in sorted(core.alarms.alarms.values(), key=lambda a: (-a.priority, a.raised_at)):
        alarms.append(
            {
                "id": alarm.id,
                "priority": alarm.priority.label,
                "state": alarm.state.value,
                "condition": alarm.condition,
                "acknowledged": alarm.state is AlarmState.ACKNOWLEDGED,
                "sounding": alarm.sounding(t),
                "silenced_for_s": _r(max(0.0, alarm.silenced_until - t)),
                "value": _r(alarm.value, 2),
                "limit": _r(alarm.limit, 2),
                "message": core.rules.describe(alarm.id, alarm.priority, alarm.value, alarm.limit),
                "raised_s_ago": _r(t - alarm.raised_at),
            }
        )
    wall = datetime.now().astimezone()
    return {
        "station": name,
        "at": wall.isoformat(timespec="milliseconds"),
        "t": round(t, 3),
        "phase": session.phase.value,
        "user": None if station.journal is None else station.journal.session_user,
        "theta_deg": _r(s.theta) if tilt_fresh else None,
        "theta_last_deg": _r(s.theta),
        "rate_dps": _r(s.rate_dps) if tilt_fresh else None,
        "hr_bpm": _r(s.hr_bpm, 0) if hr_fresh else None,
        "timers": {
            "hold_s": _r(hold),
            "max_hold_s": p.max_hold_s,
            "hold_left_s": None if hold is None else _r(p.max_hold_s - hold),
            "rest_s": _r(rest),
            "min_rest_s": p.min_rest_s,
            "session_inverted_s": _r(session.session_inverted_s(t)) if session.in_session else None,
            "max_session_inverted_s": p.max_session_inverted_s,
            "day_inverted_s": _r(session.day_inverted_s(t)),
            "max_day_inverted_s": p.max_day_inverted_s,
            "session_started": _session_started(station, wall),
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
        "sensors": sensors,
        "alarms": alarms,
        "highest_priority": alarms[0]["priority"] if alarms else None,
        "problems": dict(station.problems),
    }
