"""The screen's read model: one state in, every word of the live page out, consistent."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.view import Limits, alarm_words, clock, screen, start_refusal

BEGINNER = Limits(max_angle_deg=30, max_hold_s=60, max_session_inverted_s=300)


def sensor(name: str, kind: str, **kw: Any) -> dict[str, Any]:
    base = {"name": name, "kind": kind, "connected": True, "silent_s": 0.1, "fresh": True}
    return {**base, **kw}


def alarm(alarm_id: str, priority: str, value: float, limit: float, **kw: Any) -> dict[str, Any]:
    base = {"id": alarm_id, "priority": priority, "value": value, "limit": limit}
    return {**base, "condition": True, **kw}


def state(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phase": "inverted",
        "user": None,
        "theta_deg": 22.0,
        "theta_last_deg": 22.0,
        "timers": {"hold_s": 20.0, "session_inverted_s": 20.0, "session_started": None},
        "profile": {
            "name": "beginner",
            "max_angle_deg": 30,
            "max_hold_s": 60,
            "max_session_inverted_s": 300,
        },
        "sensors": [sensor("tilt", "spotter_tilt"), sensor("hr", "heart_rate")],
        "alarms": [],
    }
    base["timers"]["session_started"] = "2026-12-02T10:32:07+00:00"
    return {**base, **kw}


def test_a_silent_tilt_sensor_is_lost_on_every_card_at_once() -> None:
    silent = state(
        theta_deg=None,
        theta_last_deg=35.0,
        sensors=[
            sensor("tilt", "spotter_tilt", silent_s=12.3, fresh=False),
            sensor("hr", "heart_rate"),
        ],
        alarms=[alarm("tilt.signal_lost", "medium", 12.3, 2.0)],
    )
    view = screen(silent)
    tilt = view["sensors"][0]
    assert tilt["text"] == "Tilt sensor: no signal for 12 s"
    assert tilt["ok"] is False
    assert view["theta"]["gauge_deg"] is None, "no needle at 0° without data"
    assert "UPRIGHT" not in view["theta"]["label"]
    assert view["theta"]["label"] == "NO TILT SIGNAL · last seen 35°"
    (listed,) = view["alarms"]
    assert listed["title"] == "Tilt sensor: no signal"
    assert "12 s" in listed["message"]
    assert start_refusal(silent) == ["Tilt sensor: no signal for 12 s: fix it before starting"]


def test_a_connected_sensor_that_never_spoke_is_not_shown_as_fine() -> None:
    view = screen(state(sensors=[sensor("hr", "heart_rate", silent_s=None, fresh=False)]))
    assert view["sensors"][0]["text"] == "Heart-rate strap: connected, no signal yet"
    down = screen(state(sensors=[sensor("hr", "heart_rate", connected=False, fresh=False)]))
    assert down["sensors"][0]["text"] == "Heart-rate strap: not connected"


def test_hold_escalated_at_twice_the_limit_names_the_users_own_limit() -> None:
    words = alarm_words("inversion.hold_limit", "high", 120.0, 120.0, BEGINNER, "escalated")
    assert words.title == "Inverted too long"
    assert words.message == "Inverted 2:00 — twice your 1:00 limit."
    assert words.action == "Come up slowly now."
    assert "inversion.hold_limit" in words.details
    assert "inversion.hold_limit" not in words.message + words.title + words.action


def test_an_escalation_by_nobody_acknowledging_says_so() -> None:
    words = alarm_words("inversion.hold_limit", "high", 90.0, 60.0, BEGINNER, "escalated")
    assert words.message.startswith("Inverted 1:30 — over your 1:00 limit.")
    assert "nobody acknowledged it within 30 s while inverted" in words.message


@pytest.mark.parametrize(
    ("alarm_id", "value", "limit", "expected"),
    [
        ("hr.high", 121.0, 120.0, "Ended: Heart rate back to 120 bpm or below."),
        ("inversion.hold_limit", 146.0, 120.0, "Ended: Came up after 2:26 inverted (limit 1:00)."),
        ("tilt.signal_lost", 15.3, 10.0, "Ended: Angle readings back after 15 s without."),
    ],
)
def test_clear_messages_say_what_ended(
    alarm_id: str, value: float, limit: float, expected: str
) -> None:
    words = alarm_words(alarm_id, "high", value, limit, BEGINNER, "cleared")
    assert words.message == expected


def test_not_returning_reads_as_one_sentence_without_a_contradiction() -> None:
    words = alarm_words("inversion.not_returning", "high", -0.4, 5.0, BEGINNER)
    assert words.message == (
        "Past a time limit, and in the last 30 s the angle came down only 0° "
        "(at least 5° expected)."
    )
    assert words.action == "Go to the table and help them up now."


def test_every_listed_alarm_has_plain_words_and_no_raw_id() -> None:
    ids = [
        "angle.over_limit",
        "inversion.hold_limit",
        "inversion.rest_too_short",
        "session.total_limit",
        "day.total_limit",
        "motion.too_fast",
        "motion.impact",
        "hr.high",
        "hr.spike",
        "hr.low",
        "hr.artifacts",
        "hr.signal_lost",
        "tilt.signal_lost",
        "user.symptom",
        "inversion.not_returning",
        "link.lost",
        "sensor.battery_low",
    ]
    view = screen(state(alarms=[alarm(i, "medium", 10.0, 5.0) for i in ids]))
    for alarm_id, listed in zip(ids, view["alarms"], strict=True):
        shown = f"{listed['title']} {listed['message']} {listed['action']}"
        assert listed["title"] != "Alarm", alarm_id
        assert listed["action"], alarm_id
        assert alarm_id not in shown
        assert "_" not in shown


def test_hold_timer_and_session_line() -> None:
    view = screen(state(user="anna"))
    assert view["hold"] == {
        "inverted": True,
        "text": "0:40",
        "label": "left of your 1:00 limit",
        "over": False,
    }
    assert view["session"] == "Session since 10:32 · anna · profile beginner"
    over = screen(state(timers={"hold_s": 75.0, "session_inverted_s": 75.0}))
    assert over["hold"]["text"] == "+0:15"
    assert over["hold"]["over"] is True
    idle = screen(state(phase="idle", timers={"hold_s": None, "session_inverted_s": None}))
    assert idle["session"] == "No session · profile beginner"
    assert idle["hold"]["inverted"] is False


def test_clock() -> None:
    assert [clock(0), clock(59.9), clock(60), clock(3725), clock(-5)] == [
        "0:00",
        "0:59",
        "1:00",
        "1:02:05",
        "\u22120:05",
    ]


@pytest.mark.parametrize(
    ("alarm_id", "value", "limit", "why"),
    [
        ("hr.high", 152.0, 150.0, "above the safe maximum for their age"),
        ("hr.high", 125.0, 120.0, "nobody acknowledged it within 30 s while inverted"),
        ("hr.low", 38.0, 40.0, "dangerously low"),
        ("hr.spike", 110.0, 100.0, "nobody acknowledged it within 30 s while inverted"),
        ("tilt.signal_lost", 10.0, 10.0, "the person was last seen inverted"),
    ],
)
def test_high_priority_says_why(alarm_id: str, value: float, limit: float, why: str) -> None:
    words = alarm_words(alarm_id, "high", value, limit, BEGINNER, "escalated")
    assert why in words.message


def test_high_by_its_own_rule_adds_no_second_reason() -> None:
    words = alarm_words("motion.impact", "high", 3.4, 3.0, BEGINNER)
    assert "High priority" not in words.message
    assert words.message == "A jolt of 3.4 g was measured."


def test_a_sensor_the_rules_call_lost_is_not_shown_as_fine() -> None:
    contact_lost = state(alarms=[alarm("hr.signal_lost", "low", 6.0, 5.0)])
    hr = screen(contact_lost)["sensors"][1]
    assert (hr["ok"], hr["text"]) == (False, "Heart-rate strap: no usable signal")
