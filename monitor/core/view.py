"""What the screen says: one read model of the station's state, pure.

:func:`screen` turns the station's JSON state (:func:`monitor.core.station_view.state_json`
of its read model) into the words and figures the phone page shows: the sensor cards, the θ
card and gauge, the hold timer, the session line and the alarm list all come from here, so
they cannot disagree (a silent sensor is lost on every card at once). :func:`alarm_words`
writes an alarm for the person beside the table (a plain title, what happened against the
user's own limit, what to do); the raw id, value and limit stay in ``details`` for
clinicians. No I/O, no clock: time is in the state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TILT_KINDS = frozenset({"spotter_tilt", "witmotion"})
SESSION_HARD_CAP_S = 600.0


@dataclass(frozen=True)
class Limits:
    """The user's own limits, the ones the screen names (not the high-priority thresholds)."""

    max_angle_deg: float
    max_hold_s: float
    max_session_inverted_s: float
    hr_high_bpm: float = 120.0
    hr_low_bpm: float = 45.0

    @classmethod
    def of(cls, profile: Mapping[str, Any]) -> Limits:
        """From a state's ``profile`` object."""
        return cls(
            float(profile["max_angle_deg"]),
            float(profile["max_hold_s"]),
            float(profile["max_session_inverted_s"]),
            float(profile.get("hr_high_bpm", 120.0)),
            float(profile.get("hr_low_bpm", 45.0)),
        )


@dataclass(frozen=True)
class Words:
    """An alarm event or a listed alarm, written for a person."""

    title: str
    message: str
    action: str
    details: str

    def to_json(self) -> dict[str, str]:
        """As the page receives it."""
        return {
            "title": self.title,
            "message": self.message,
            "action": self.action,
            "details": self.details,
        }


def clock(seconds: float | None) -> str:
    """Seconds as m:ss (or h:mm:ss), as the page's timers show them."""
    if seconds is None:
        return "\u2013"  # en dash, as the page shows a missing figure
    s = int(abs(seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    sign = "\u2212" if seconds < 0 else ""
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else clock(seconds)


def _n(value: float | None) -> float:
    return 0.0 if value is None else float(value)


# id -> title; (message, what to do) come from _present and _ended below.
TITLES: dict[str, str] = {
    "angle.over_limit": "Angle too steep",
    "inversion.hold_limit": "Inverted too long",
    "inversion.rest_too_short": "Rest too short",
    "session.total_limit": "Session time used up",
    "day.total_limit": "Enough for today",
    "motion.too_fast": "Moving too fast",
    "motion.impact": "Possible fall or knock",
    "hr.high": "Heart rate high",
    "hr.spike": "Heart rate rising fast",
    "hr.low": "Heart rate low",
    "hr.artifacts": "Heart-rate readings unreliable",
    "hr.signal_lost": "Heart-rate strap: no signal",
    "tilt.signal_lost": "Tilt sensor: no signal",
    "user.symptom": "STOP pressed",
    "inversion.not_returning": "Not coming up",
    "link.lost": "Clinic link lost",
    "sensor.battery_low": "Battery low",
}


def _present(alarm_id: str, high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    """(what is happening, what to do) while the condition is present: the alarm's own words
    (:data:`PRESENT`), or plain advice for an alarm the screen does not know."""
    say = PRESENT.get(alarm_id)
    if say is None:
        return ("Check the station.", "Check on the person.")
    return say(high, v, lim, limits)


def _angle_over_limit(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    over = "more than 20° over" if high else "over"
    return (
        f"Tilted to {v:.0f}° — {over} your {limits.max_angle_deg:.0f}° limit.",
        f"Come up slowly to below {limits.max_angle_deg:.0f}°.",
    )


def _hold_limit(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    own = limits.max_hold_s
    how = "twice" if v >= 2 * own else "over"
    return (f"Inverted {clock(v)} — {how} your {clock(own)} limit.", "Come up slowly now.")


def _rest_too_short(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"Inverted again after only {clock(v)} of rest; rest at least {clock(lim)}.",
        "Come up and rest before the next hold.",
    )


def _session_total_limit(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    own = limits.max_session_inverted_s
    if v >= SESSION_HARD_CAP_S:
        what = f"the {clock(SESSION_HARD_CAP_S)} no session may pass"
    else:
        what = f"over your {clock(own)} limit"
    return (
        f"Inverted {clock(v)} this session — {what}.",
        "Come up slowly and end the session.",
    )


def _day_total_limit(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"Inverted {clock(v)} today — your daily limit is {clock(lim)}.",
        "Come up and stop for today.",
    )


def _too_fast(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"The table is turning at {abs(v):.0f}°/s (keep under {lim:.0f}°/s).",
        "Move slowly.",
    )


def _impact(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (f"A jolt of {v:.1f} g was measured.", "Check on the person now.")


def _hr_high(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (f"Heart rate {v:.0f} bpm — above {lim:.0f} bpm.", "Come up slowly and rest.")


def _hr_spike(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"Heart rate jumped to {v:.0f} bpm within a minute (alarm above {lim:.0f} bpm).",
        "Come up slowly and rest.",
    )


def _hr_low(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"Heart rate {v:.0f} bpm — below {lim:.0f} bpm.",
        "Come up slowly and check on the person.",
    )


def _hr_artifacts(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"{v:.0f} % of heart-rate readings were unusable in the last 30 s.",
        "Moisten the strap's pads and tighten it.",
    )


def _hr_signal_lost(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"No heart rate for {_secs(v)}.",
        "Come up and check the strap." if high else "Check the strap is worn and on.",
    )


def _tilt_signal_lost(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"No angle reading for {_secs(v)}: the timers assume the last known angle.",
        "Check on the person, then the tilt sensor.",
    )


def _symptom(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    if high:
        return (
            "STOP was pressed and the angle has not come down within 15 s.",
            "Go to the table and help them up now.",
        )
    return ("The person on the table feels unwell.", "Help them up slowly.")


def _not_returning(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"Past a time limit, and in the last 30 s the angle came down only "
        f"{max(v, 0.0):.0f}° (at least {lim:.0f}° expected).",
        "Go to the table and help them up now.",
    )


def _link_lost(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (
        f"No contact with the clinic hub for {_secs(v)}.",
        "Alarms still sound here; check the network.",
    )


def _battery_low(high: bool, v: float, lim: float, limits: Limits) -> tuple[str, str]:
    return (f"A sensor's battery is at {v:.0f} %.", "Charge or replace the battery.")


PRESENT: dict[str, Callable[[bool, float, float, Limits], tuple[str, str]]] = {
    "angle.over_limit": _angle_over_limit,
    "inversion.hold_limit": _hold_limit,
    "inversion.rest_too_short": _rest_too_short,
    "session.total_limit": _session_total_limit,
    "day.total_limit": _day_total_limit,
    "motion.too_fast": _too_fast,
    "motion.impact": _impact,
    "hr.high": _hr_high,
    "hr.spike": _hr_spike,
    "hr.low": _hr_low,
    "hr.artifacts": _hr_artifacts,
    "hr.signal_lost": _hr_signal_lost,
    "tilt.signal_lost": _tilt_signal_lost,
    "user.symptom": _symptom,
    "inversion.not_returning": _not_returning,
    "link.lost": _link_lost,
    "sensor.battery_low": _battery_low,
}
"""Alarm id -> its words while the condition is present: each takes (high priority, value,
limit, the user's limits) and gives (what is happening, what to do)."""


def _ended(alarm_id: str, v: float, lim: float, limits: Limits) -> str:
    """What ended, when the condition clears."""
    ended: dict[str, str] = {
        "angle.over_limit": f"Back below {limits.max_angle_deg:.0f}°.",
        "inversion.hold_limit": f"Came up after {clock(v)} inverted "
        f"(limit {clock(limits.max_hold_s)}).",
        "inversion.rest_too_short": "That hold is over.",
        "session.total_limit": f"Came up after {clock(v)} inverted this session.",
        "day.total_limit": f"Came up; {clock(v)} inverted today.",
        "motion.too_fast": "Moving slowly again.",
        "motion.impact": "No more jolts measured.",
        "hr.high": f"Heart rate back to {lim:.0f} bpm or below.",
        "hr.spike": "Heart rate no longer rising fast.",
        "hr.low": f"Heart rate back to {lim:.0f} bpm or above.",
        "hr.artifacts": "Heart-rate readings usable again.",
        "hr.signal_lost": f"Heart rate back after {_secs(v)} without.",
        "tilt.signal_lost": f"Angle readings back after {_secs(v)} without.",
        "user.symptom": "The angle came down after STOP.",
        "inversion.not_returning": "Coming up now.",
        "link.lost": "Clinic hub reachable again.",
        "sensor.battery_low": "Battery no longer low.",
    }
    return ended.get(alarm_id, "The condition ended.")


NOBODY_ACKNOWLEDGED = " High priority: nobody acknowledged it within 30 s while inverted."
ALWAYS_EXPLAINED = frozenset({"motion.impact", "inversion.not_returning", "user.symptom"})
"""High by their own rule, and their message already says why."""


def _why_high(alarm_id: str, v: float, lim: float, limits: Limits) -> str:
    """Why an alarm is at high priority: its own threshold (the message says it, or this
    adds it), or an escalation because nobody acknowledged it while the user was inverted."""
    if alarm_id in ALWAYS_EXPLAINED:
        return ""
    own_threshold = {
        "angle.over_limit": v > limits.max_angle_deg + 20,
        "inversion.hold_limit": v >= 2 * limits.max_hold_s,
        "session.total_limit": v >= SESSION_HARD_CAP_S,
        "hr.high": lim > limits.hr_high_bpm,
        "hr.low": lim < limits.hr_low_bpm,
    }
    if alarm_id in own_threshold:
        if not own_threshold[alarm_id]:
            return NOBODY_ACKNOWLEDGED
        if alarm_id == "hr.high":
            return " High priority: above the safe maximum for their age."
        if alarm_id == "hr.low":
            return " High priority: dangerously low."
        return ""
    why = {
        "tilt.signal_lost": " High priority: the person was last seen inverted.",
        "hr.signal_lost": " High priority: inverted without a heart rate for 30 s or more.",
    }
    return why.get(alarm_id, NOBODY_ACKNOWLEDGED)


def alarm_words(
    alarm_id: str,
    priority: str,
    value: float | None,
    limit: float | None,
    limits: Limits,
    event: str = "raised",
    note: str = "",
) -> Words:
    """An alarm (listed, or one of its events) in words for the person beside the table.

    ``event`` is the SPEC section 7 event kind (``raised`` for a listed alarm); ``note`` is
    the event's own message for the kinds that carry a person's name (acknowledged, silenced).
    """
    v, lim = _n(value), _n(limit)
    high = priority == "high"
    title = TITLES.get(alarm_id, "Alarm")
    happening, action = _present(alarm_id, high, v, lim, limits)
    if event in ("raised", "escalated"):
        message = happening
        if high:
            message += _why_high(alarm_id, v, lim, limits)
    elif event == "cleared":
        message, action = f"Ended: {_ended(alarm_id, v, lim, limits)}", ""
    elif event == "resolved":
        message, action = "Off the list.", ""
    else:
        message, action = note, ""
    raw = [alarm_id, priority]
    if value is not None:
        raw.append(f"value {value:g}")
    if limit is not None:
        raw.append(f"threshold {limit:g}")
    return Words(title, message, action, " · ".join(raw))


# -- the live screen ---------------------------------------------------------------------


def _sensor(sensor: Mapping[str, Any], lost_alarm: bool, tilt: bool) -> dict[str, Any]:
    title = "Tilt sensor" if tilt else "Heart-rate strap"
    silent_s = sensor.get("silent_s")
    if not sensor["connected"]:
        status, ok = "not connected", False
    elif silent_s is None:
        status, ok = "connected, no signal yet", False
    elif sensor.get("fresh"):
        status, ok = "receiving", True
    else:
        status, ok = f"no signal for {_secs(float(silent_s))}", False
    if ok and lost_alarm:  # the rules still call it lost (e.g. a strap without skin contact)
        status, ok = "no usable signal", False
    return {
        "name": sensor["name"],
        "title": title,
        "ok": ok,
        "status": status,
        "text": f"{title}: {status}",
    }


def _sensors(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    listed = {a["id"] for a in state["alarms"] if a["condition"]}
    views = []
    for s in state["sensors"]:
        tilt = s["kind"] in TILT_KINDS
        lost = ("tilt" if tilt else "hr") + ".signal_lost" in listed
        views.append(_sensor(s, lost, tilt))
    return views


def screen(state: Mapping[str, Any]) -> dict[str, Any]:
    """Every word and figure of the live page, from one state."""
    limits = Limits.of(state["profile"])
    sensors = _sensors(state)
    tilt_ok = state["theta_deg"] is not None
    phase = str(state["phase"])
    if tilt_ok:
        theta_label = "INVERTED" if phase == "inverted" else "UPRIGHT"
        gauge_deg = state["theta_deg"]
    else:
        last = state.get("theta_last_deg")
        theta_label = "NO TILT SIGNAL" + ("" if last is None else f" · last seen {last:.0f}°")
        gauge_deg = None
    timers = state["timers"]
    hold_s = timers["hold_s"]
    if hold_s is None:
        hold = {
            "inverted": False,
            "text": clock(0),
            "label": f"not inverted · hold limit {clock(limits.max_hold_s)}",
            "over": False,
        }
    else:
        left = limits.max_hold_s - hold_s
        hold = {
            "inverted": True,
            "text": clock(math.ceil(left)) if left >= 0 else f"+{clock(-left)}",
            "label": f"left of your {clock(limits.max_hold_s)} limit"
            if left >= 0
            else f"over your {clock(limits.max_hold_s)} limit",
            "over": left < 0,
        }
    if timers["session_inverted_s"] is None:
        session_line = f"No session · profile {state['profile']['name']}"
    else:
        who = f" · {state['user']}" if state.get("user") else ""
        since = (timers.get("session_started") or "")[11:16]
        session_line = f"Session since {since}{who} · profile {state['profile']['name']}"
    alarms = []
    for a in state["alarms"]:
        words = alarm_words(a["id"], a["priority"], a["value"], a["limit"], limits)
        entry = words.to_json()
        if not a["condition"]:  # latched: it happened, it is over, someone must see it
            entry["message"] = f"{entry['message']} (over now)"
            entry["action"] = "Acknowledge once someone has checked on the person."
        alarms.append({"id": a["id"], **entry})
    return {
        "sensors": sensors,
        "theta": {
            "value_deg": state["theta_deg"],
            "gauge_deg": gauge_deg,
            "label": theta_label,
            "over": tilt_ok and state["theta_deg"] > limits.max_angle_deg,
        },
        "hold": hold,
        "session": session_line,
        "alarms": alarms,
        "start_refusal": start_refusal(state),
    }


def start_refusal(state: Mapping[str, Any]) -> list[str]:
    """Why a guided start must wait now (empty: it may go ahead): lost sensors."""
    return [f"{v['text']}: fix it before starting" for v in _sensors(state) if not v["ok"]]
