"""Each safety rule of SPEC section 6, through the real core on the replay path.

Tilt at 50 Hz (0.02 s) and heart rate at 1 Hz: "on time" means within one sample period (plus
the median filter's one-sample delay for tilt).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.codecs.heart_rate import Contact
from monitor.core.profiles import BUILTIN, Profile
from monitor.core.rules import RULE_IDS
from monitor.core.trace import InputKind
from tests.core.rig import (
    ack,
    battery_read,
    hr_payload,
    hr_stream,
    ids,
    make_core,
    of,
    press,
    ramp,
    run,
    steady,
    steps,
    tilt_stream,
)

TILT = 0.02 * 2 + 1e-6  # one sample period plus the median filter's one-sample delay
HR = 1.0 + 1e-6


def near(actual: float, expected: float, within: float) -> bool:
    return expected - 1e-6 <= actual <= expected + within


def test_rule_table_has_every_rule_of_the_spec_in_order() -> None:
    assert RULE_IDS == (
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
        "sensor.battery_low",
    )


# -- angle -----------------------------------------------------------------------------------


def test_angle_over_limit_raised_after_2_s_then_cleared_and_resolved() -> None:
    theta = steps((0, 0.0), (5, 20.0), (10, 35.0), (20, 20.0), (25, 0.0))
    events = run(make_core(), tilt_stream(theta, 30), hr_stream(steady(70), 30), until=30)
    got = of(events, "angle.over_limit")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("cleared", "medium"),
        ("resolved", "medium"),
    ]
    assert near(got[0][2], 12.0, TILT)
    assert near(got[1][2], 20.0, TILT)
    raised = next(e for e in events if e.id == "angle.over_limit")
    assert raised.limit == 30.0
    assert raised.value == 35.0
    assert raised.message == "Angle 35° > 30°"


def test_angle_far_over_limit_is_high_and_latches_until_acknowledged() -> None:
    theta = steps((0, 0.0), (5, 20.0), (10, 55.0), (15, 20.0))
    events = run(
        make_core(),
        tilt_stream(theta, 30),
        hr_stream(steady(70), 30),
        [ack(25, "angle.over_limit")],
        until=30,
    )
    got = of(events, "angle.over_limit")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "high"),
        ("cleared", "high"),
        ("acknowledged", "high"),
        ("resolved", "high"),
    ]
    assert near(got[0][2], 12.0, TILT)
    assert got[2][2] == got[3][2] == 25.0


def test_angle_glitches_never_raise_start_or_end_anything() -> None:
    def theta(t: float) -> float:
        if abs(t - 10.0) < 1e-9 or abs(t - 30.0) < 1e-9:
            return 85.0  # single-sample glitches: one while flat, one while inverted
        if abs(t - 40.0) < 1e-9:
            return -20.0  # a dip that would end the inversion
        return 20.0 if 20 <= t < 50 else 0.0

    core = make_core()
    events = run(core, tilt_stream(theta, 60), hr_stream(steady(70), 60), until=60)
    assert events == []
    changes = core.drain_phase_changes()
    assert [(c.old.value, c.new.value) for c in changes] == [
        ("idle", "inverted"),
        ("inverted", "upright"),
    ]
    assert near(changes[0].t, 20.0, TILT)
    assert near(changes[1].t, 50.0, TILT)


# -- time ------------------------------------------------------------------------------------


def test_hold_limit_raised_at_60_s_and_resolved_when_upright() -> None:
    theta = steps((0, 0.0), (5, 25.0), (70, 0.0))
    events = run(make_core(), tilt_stream(theta, 80), hr_stream(steady(70), 80), until=80)
    got = of(events, "inversion.hold_limit")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("cleared", "medium"),
        ("resolved", "medium"),
    ]
    assert near(got[0][2], 65.0, TILT)
    assert near(got[1][2], 70.0, TILT)
    first = next(e for e in events if e.id == "inversion.hold_limit")
    assert first.message == "Inverted for 60 s (limit 60 s)"


def test_hold_limit_is_high_at_twice_the_limit_and_then_latches() -> None:
    theta = steps((0, 0.0), (5, 25.0), (130, 0.0))
    events = run(
        make_core(),
        tilt_stream(theta, 150),
        hr_stream(steady(70), 150),
        [ack(66, "inversion.hold_limit"), ack(140, "inversion.hold_limit")],
        until=150,
    )
    got = of(events, "inversion.hold_limit")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("acknowledged", "medium"),
        ("escalated", "high"),  # 2 x 60 s after the inversion started
        ("cleared", "high"),
        ("acknowledged", "high"),
        ("resolved", "high"),
    ]
    assert near(got[2][2], 125.0, TILT)


def test_rest_too_short_low_for_the_inversion_that_started_early() -> None:
    theta = steps((0, 0.0), (5, 25.0), (35, 0.0), (75, 25.0), (100, 0.0))
    events = run(make_core(), tilt_stream(theta, 110), hr_stream(steady(70), 110), until=110)
    got = of(events, "inversion.rest_too_short")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "low"),
        ("cleared", "low"),
        ("resolved", "low"),
    ]
    assert near(got[0][2], 75.0, TILT)
    assert near(got[1][2], 100.0, TILT)
    raised = next(e for e in events if e.id == "inversion.rest_too_short")
    assert raised.value == pytest.approx(40.0, abs=0.05)
    assert raised.limit == 90.0


def test_enough_rest_raises_nothing() -> None:
    theta = steps((0, 0.0), (5, 25.0), (35, 0.0), (126, 25.0), (150, 0.0))
    events = run(make_core(), tilt_stream(theta, 160), hr_stream(steady(70), 160), until=160)
    assert events == []


def test_session_total_medium_at_its_limit_while_inverted() -> None:
    # Six holds of 55 s with 95 s rests: the total passes 300 s 25 s into the sixth hold.
    points: list[tuple[float, float | None]] = [(0, 0.0)]
    for i in range(6):
        start = 5 + i * 150
        points += [(start, 25.0), (start + 55, 0.0)]
    theta = steps(*points)
    events = run(make_core(), tilt_stream(theta, 820, hz=10), hr_stream(steady(70), 820), until=820)
    got = of(events, "session.total_limit")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("cleared", "medium"),
        ("resolved", "medium"),
    ]
    assert near(got[0][2], 5 + 5 * 150 + 25.0, 0.2 + 1e-6)
    assert near(got[1][2], 5 + 5 * 150 + 55.0, 0.2 + 1e-6)
    assert ids(events) == {"session.total_limit"}


def test_session_total_is_high_at_the_600_s_hard_cap_in_every_profile() -> None:
    profile = BUILTIN["standard"].model_copy(
        update={"max_hold_s": 590.0, "max_session_inverted_s": 590.0}
    )
    theta = steps((0, 0.0), (5, 25.0), (620, 0.0))
    core = make_core(profile)
    run(core, tilt_stream(theta, 606, hz=10), hr_stream(steady(70), 606), until=606)
    alarm = core.alarms.alarms["session.total_limit"]
    assert alarm.priority.label == "high"
    assert alarm.limit == 600.0


def test_day_total_low_when_today_passes_its_limit() -> None:
    theta = steps((0, 0.0), (5, 25.0), (40, 0.0))
    core = make_core(day_inverted_before_s=880.0)
    events = run(core, tilt_stream(theta, 50), hr_stream(steady(70), 50), until=50)
    got = of(events, "day.total_limit")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "low"),
        ("cleared", "low"),
        ("resolved", "low"),
    ]
    assert near(got[0][2], 25.0, TILT)


def test_day_total_starts_again_at_local_midnight() -> None:
    started = datetime.fromisoformat("2026-11-22T23:59:00+01:00")
    theta = steps((0, 0.0), (5, 25.0), (70, 0.0))
    core = make_core("standard", started_at=started, day_inverted_before_s=898.0)
    events = run(core, tilt_stream(theta, 80), hr_stream(steady(70), 80), until=80)
    got = of(events, "day.total_limit")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "low"),
        ("cleared", "low"),
        ("resolved", "low"),
    ]
    assert near(got[0][2], 7.0, TILT)
    assert near(got[1][2], 60.0, 0.02 + 1e-6)  # midnight local time: a new day


# -- motion ----------------------------------------------------------------------------------


def test_coming_up_faster_than_30_deg_s_is_low_after_half_a_second() -> None:
    theta = ramp((0, 0.0), (5, 0.0), (15, 60.0), (20, 60.0), (21.2, 0.0), (30, 0.0))
    gyro = lambda t: -50.0 if 20 <= t < 21.2 else (6.0 if 5 <= t < 15 else 0.0)  # noqa: E731
    events = run(
        make_core("standard"),
        tilt_stream(theta, 30, gyro=gyro),
        hr_stream(steady(70), 30),
        until=30,
    )
    got = of(events, "motion.too_fast")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "low"),
        ("cleared", "low"),
        ("resolved", "low"),
    ]
    assert near(got[0][2], 20.5, TILT)
    first = next(e for e in events if e.id == "motion.too_fast")
    assert first.message == "Come up slowly: 50°/s > 30°/s"


def test_moving_faster_than_90_deg_s_is_medium() -> None:
    theta = ramp((0, 0.0), (5, 0.0), (15, 60.0), (20, 60.0), (20.6, 0.0), (30, 0.0))
    gyro = lambda t: -100.0 if 20 <= t < 20.6 else (6.0 if 5 <= t < 15 else 0.0)  # noqa: E731
    events = run(
        make_core("standard"),
        tilt_stream(theta, 30, gyro=gyro),
        hr_stream(steady(70), 30),
        until=30,
    )
    got = of(events, "motion.too_fast")
    assert got[0][:2] == ("raised", "medium")
    assert near(got[0][2], 20.5, TILT)


def test_coming_up_fast_is_seen_without_a_gyro_too() -> None:
    theta = ramp((0, 0.0), (5, 0.0), (15, 60.0), (20, 60.0), (21.2, 0.0), (30, 0.0))
    events = run(make_core("standard"), tilt_stream(theta, 30), hr_stream(steady(70), 30), until=30)
    got = of(events, "motion.too_fast")
    assert got[0][:2] == ("raised", "low")
    assert 20.5 <= got[0][2] <= 20.5 + 0.3  # the smoothed derivative lags a little


def test_free_fall_then_impact_is_high_and_latches() -> None:
    def accel(t: float) -> float:
        if 30.0 <= t < 30.15:
            return 0.2
        if 30.15 <= t < 30.21:
            return 2.8
        return 1.0

    theta = steps((0, 0.0), (5, 25.0), (45, 0.0))
    events = run(
        make_core(),
        tilt_stream(theta, 60, accel=accel),
        hr_stream(steady(70), 60),
        [ack(50, "motion.impact")],
        until=60,
    )
    got = of(events, "motion.impact")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "high"),
        ("cleared", "high"),
        ("acknowledged", "high"),
        ("resolved", "high"),
    ]
    assert near(got[0][2], 30.15, TILT)
    assert near(got[1][2], 30.20 + 1.0, TILT)  # 1 s after the last sample over 2.5 g


def test_impact_without_free_fall_needs_more_than_3_g() -> None:
    def accel(t: float) -> float:
        if 20.0 <= t < 20.06:
            return 2.8  # a bump, no free fall: not a fall
        if 30.0 <= t < 30.06:
            return 3.5
        return 1.0

    theta = steps((0, 0.0), (5, 25.0), (45, 0.0))
    events = run(
        make_core(), tilt_stream(theta, 50, accel=accel), hr_stream(steady(70), 50), until=50
    )
    got = of(events, "motion.impact")
    assert got[0][:2] == ("raised", "high")
    assert near(got[0][2], 30.0, TILT)


def test_a_single_acceleration_glitch_is_not_an_impact() -> None:
    accel = lambda t: 6.0 if abs(t - 30.0) < 1e-9 else 1.0  # noqa: E731
    theta = steps((0, 0.0), (5, 25.0), (45, 0.0))
    events = run(
        make_core(), tilt_stream(theta, 50, accel=accel), hr_stream(steady(70), 50), until=50
    )
    assert events == []


# -- heart rate ------------------------------------------------------------------------------


def _session_start() -> list:
    return [press(1.0, InputKind.SESSION_START)]


def test_hr_high_medium_after_10_s_then_high_after_5_s_over_the_age_limit() -> None:
    hr = ramp(
        (0, 70.0), (20, 70.0), (20.1, 130.0), (60, 130.0), (60.1, 160.0), (80, 160.0), (80.1, 80.0)
    )
    events = run(
        make_core(age=40),
        tilt_stream(steady(0.0), 100, hz=10),
        hr_stream(lambda t: hr(t), 100),
        _session_start(),
        [ack(95, "hr.high")],
        until=100,
    )
    got = of(events, "hr.high")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("escalated", "high"),
        ("cleared", "high"),
        ("acknowledged", "high"),
        ("resolved", "high"),
    ]
    assert near(got[0][2], 30.5, HR)
    assert near(got[1][2], 65.5, HR)
    raised = next(e for e in events if e.id == "hr.high")
    assert raised.message == "HR 130 > 120"


@pytest.mark.parametrize(("age", "high"), [(30, False), (70, True)])
def test_hr_high_limit_depends_on_age(age: float, high: bool) -> None:
    # 0.85 x (208 - 0.7 x 70) = 135.15: 140 bpm is high at 70, only medium at 30.
    hr = ramp((0, 70.0), (20, 70.0), (20.1, 140.0), (60, 140.0))
    core = make_core(age=age)
    run(core, tilt_stream(steady(0.0), 60, hz=10), hr_stream(hr, 60), _session_start(), until=60)
    priority = core.alarms.alarms["hr.high"].priority.label
    assert priority == ("high" if high else "medium")


def test_hr_low_medium_then_high() -> None:
    hr = ramp(
        (0, 60.0), (20, 60.0), (20.1, 43.0), (50, 43.0), (50.1, 38.0), (70, 38.0), (70.1, 60.0)
    )
    events = run(
        make_core(),
        tilt_stream(steady(0.0), 80, hz=10),
        hr_stream(hr, 80),
        _session_start(),
        until=80,
    )
    got = of(events, "hr.low")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("escalated", "high"),
        ("cleared", "high"),
    ]
    assert near(got[0][2], 30.5, HR)
    assert near(got[1][2], 55.5, HR)


def test_hr_spike_after_5_s_then_clears_when_the_rise_is_old() -> None:
    hr = ramp((0, 70.0), (80, 70.0), (83, 106.0), (200, 106.0))
    events = run(
        make_core(),
        tilt_stream(steady(0.0), 120, hz=10),
        hr_stream(hr, 120),
        _session_start(),
        until=120,
    )
    got = of(events, "hr.spike")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("cleared", "medium"),
        ("resolved", "medium"),
    ]
    # >= 100 bpm from the reading at 82.5 s; held 5 s.
    assert near(got[0][2], 87.5, HR)
    assert ids(events) == {"hr.spike"}


def test_hr_spike_not_judged_for_20_s_after_theta_crosses_zero() -> None:
    hr = ramp((0, 70.0), (80, 70.0), (83, 106.0), (200, 106.0))
    theta = steps((0, -60.0), (75, 0.0), (76, 0.0))  # standing up to flat at 75 s: posture change
    core = make_core()
    events = run(
        core, tilt_stream(theta, 120, hz=10), hr_stream(hr, 120), _session_start(), until=120
    )
    assert "hr.spike" not in ids(events)


def test_a_slow_rise_is_not_a_spike() -> None:
    hr = ramp((0, 70.0), (80, 70.0), (140, 110.0))
    events = run(
        make_core(),
        tilt_stream(steady(0.0), 140, hz=10),
        hr_stream(hr, 140),
        _session_start(),
        until=140,
    )
    assert events == []


def test_hr_artifacts_low_after_30_s_of_more_than_20_percent_rejected() -> None:
    hr = lambda t: 250.0 if 20 <= t < 80 and int(t) % 3 == 0 else 70.0  # noqa: E731
    events = run(
        make_core(),
        tilt_stream(steady(0.0), 120, hz=10),
        hr_stream(hr, 120),
        _session_start(),
        until=120,
    )
    got = of(events, "hr.artifacts")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "low"),
        ("cleared", "low"),
        ("resolved", "low"),
    ]
    # Every third reading from 21.5 s is rejected; the 30-s window first holds more than 20 %
    # rejected at 39.5 s (7 of 31); held for 30 s.
    assert near(got[0][2], 69.5, HR)
    assert ids(events) == {"hr.artifacts"}


def test_a_jump_confirmed_by_the_next_reading_is_accepted_and_a_lone_one_is_not() -> None:
    # 70 -> 160 for one reading (rejected), later 70 -> 160 for good (accepted after one reading)
    hr = lambda t: 160.0 if abs(t - 30.5) < 1e-9 or t >= 60 else 70.0  # noqa: E731
    core = make_core()
    run(core, tilt_stream(steady(0.0), 70, hz=10), hr_stream(hr, 70), _session_start(), until=70)
    assert core.signals.hr_bpm == 160.0
    assert core.alarms.alarms["hr.high"].priority.label == "high"


def test_hr_signal_lost_low_when_upright_in_a_session() -> None:
    hr = lambda t: 70.0 if t < 20 else None  # noqa: E731
    events = run(
        make_core(),
        tilt_stream(steady(0.0), 60, hz=10),
        hr_stream(hr, 60),
        _session_start(),
        until=60,
    )
    got = of(events, "hr.signal_lost")
    assert got == [("raised", "low", got[0][2])]
    assert near(got[0][2], 19.5 + 5, 0.1 + 1e-6)


def test_hr_signal_lost_inverted_is_medium_then_high_after_30_s() -> None:
    theta = steps((0, 0.0), (5, 25.0), (59, 0.0))
    hr = lambda t: 70.0 if t < 20 or t > 55 else 0.0  # noqa: E731
    stream = [
        r
        if not (20 <= r.t <= 55)
        else type(r)(r.t, r.sensor, r.char, hr_payload(0, Contact.NOT_DETECTED))  # type: ignore[call-arg, attr-defined]
        for r in hr_stream(hr, 70)
    ]
    events = run(make_core(), tilt_stream(theta, 70), stream, [ack(65, "hr.signal_lost")], until=70)
    got = of(events, "hr.signal_lost")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("escalated", "high"),
        ("cleared", "high"),
        ("acknowledged", "high"),
        ("resolved", "high"),
    ]
    assert near(got[0][2], 19.5 + 5, 0.1 + 1e-6)
    assert near(got[1][2], 19.5 + 30, 0.1 + 1e-6)
    assert near(got[2][2], 55.5, 1e-6)


def test_outside_a_session_sensor_state_is_not_alarmed() -> None:
    hr = lambda t: 130.0 if t < 20 else None  # noqa: E731
    events = run(make_core(), tilt_stream(steady(0.0), 60, hz=10), hr_stream(hr, 60), until=60)
    assert events == []


# -- sensors and the user --------------------------------------------------------------------


def test_tilt_signal_lost_inverted_medium_after_2_s_high_after_10_s() -> None:
    theta = lambda t: None if 20 <= t < 40 else (25.0 if 5 <= t < 50 else 0.0)  # noqa: E731
    events = run(
        make_core(),
        tilt_stream(theta, 60),
        hr_stream(steady(70), 60),
        [ack(55, "tilt.signal_lost")],
        until=60,
    )
    got = of(events, "tilt.signal_lost")
    assert [(e, p) for e, p, _ in got] == [
        ("raised", "medium"),
        ("escalated", "high"),
        ("cleared", "high"),
        ("acknowledged", "high"),
        ("resolved", "high"),
    ]
    assert near(got[0][2], 19.98 + 2, 0.1 + 1e-6)
    assert near(got[1][2], 19.98 + 10, 0.1 + 1e-6)
    assert near(got[2][2], 40.0, TILT)


def test_tilt_silence_upright_in_a_session_is_medium_only() -> None:
    theta = lambda t: None if t >= 20 else 0.0  # noqa: E731
    events = run(
        make_core(), tilt_stream(theta, 60), hr_stream(steady(70), 60), _session_start(), until=60
    )
    got = of(events, "tilt.signal_lost")
    assert got == [("raised", "medium", got[0][2])]


def test_timers_keep_running_while_the_tilt_signal_is_lost() -> None:
    theta = lambda t: None if t >= 30 else (25.0 if t >= 5 else 0.0)  # noqa: E731
    events = run(make_core(), tilt_stream(theta, 70), hr_stream(steady(70), 70), until=70)
    got = of(events, "inversion.hold_limit")
    assert got[0][:2] == ("raised", "medium")
    assert near(got[0][2], 65.0, TILT + 0.1)  # no samples: replay's 0.1 s ticks


def test_symptom_medium_then_high_if_not_coming_up_within_15_s() -> None:
    theta = steps((0, 0.0), (5, 25.0), (40, 0.0))
    events = run(
        make_core(),
        tilt_stream(theta, 60),
        hr_stream(steady(70), 60),
        [press(20, InputKind.SYMPTOM), ack(50, "user.symptom")],
        until=60,
    )
    got = of(events, "user.symptom")
    assert [(e, p, t) for e, p, t in got] == [
        ("raised", "medium", 20.0),
        ("escalated", "high", 35.0),
        ("cleared", "high", got[2][2]),
        ("acknowledged", "high", 50.0),
        ("resolved", "high", 50.0),
    ]
    assert near(got[2][2], 40.0, TILT)


def test_symptom_stays_medium_when_the_user_comes_up() -> None:
    theta = ramp((0, 0.0), (5, 25.0), (20, 25.0), (30, 0.0))
    events = run(
        make_core(),
        tilt_stream(theta, 60),
        hr_stream(steady(70), 60),
        [press(20, InputKind.SYMPTOM)],
        until=60,
    )
    got = of(events, "user.symptom")
    assert [(e, p) for e, p, _ in got] == [("raised", "medium"), ("cleared", "medium")]
    assert "user.symptom" in core_alarms_after(events)


def core_alarms_after(events: list) -> set[str]:
    listed: set[str] = set()
    for e in events:
        if e.event.value == "raised":
            listed.add(e.id)
        elif e.event.value == "resolved":
            listed.discard(e.id)
    return listed


def test_symptom_outside_a_session_is_still_raised() -> None:
    events = run(
        make_core(),
        tilt_stream(steady(0.0), 20, hz=10),
        [press(10, InputKind.SYMPTOM)],
        until=20,
    )
    assert of(events, "user.symptom")[0] == ("raised", "medium", 10.0)


def test_not_returning_high_30_s_after_the_hold_limit_when_theta_does_not_fall() -> None:
    theta = steps((0, 0.0), (5, 25.0), (100, 0.0))
    events = run(make_core(), tilt_stream(theta, 110), hr_stream(steady(70), 110), until=110)
    got = of(events, "inversion.not_returning")
    assert got[0][:2] == ("raised", "high")
    assert near(got[0][2], 95.0, TILT)
    assert [e for e, _, _ in got] == ["raised", "cleared"]  # latches: listed until acknowledged


def test_not_returning_quiet_when_the_user_is_coming_down() -> None:
    theta = ramp((0, 0.0), (5, 25.0), (65, 25.0), (66, 24.0), (80, 12.0), (100, 12.0), (101, 0.0))
    events = run(make_core(), tilt_stream(theta, 110), hr_stream(steady(70), 110), until=110)
    assert "inversion.not_returning" not in ids(events)


def test_battery_low_at_15_percent_and_resolved_after_a_charge() -> None:
    events = run(
        make_core(),
        tilt_stream(steady(0.0), 40, hz=10),
        hr_stream(steady(70), 40),
        _session_start(),
        [battery_read(10, "hr", 15), battery_read(30, "hr", 80)],
        until=40,
    )
    got = of(events, "sensor.battery_low")
    assert [(e, p, t) for e, p, t in got] == [
        ("raised", "low", 10.0),
        ("cleared", "low", 30.0),
        ("resolved", "low", 30.0),
    ]
    raised = next(e for e in events if e.id == "sensor.battery_low")
    assert raised.message == "Battery low: hr 15 %"


def test_custom_profile_numbers_are_used() -> None:
    profile = Profile.model_validate({**BUILTIN["beginner"].model_dump(), "max_hold_s": 20.0})
    theta = steps((0, 0.0), (5, 25.0), (30, 0.0))
    events = run(make_core(profile), tilt_stream(theta, 40), hr_stream(steady(70), 40), until=40)
    got = of(events, "inversion.hold_limit")
    assert near(got[0][2], 25.0, TILT)


def test_an_external_condition_is_alarmed_during_a_session_only() -> None:
    from monitor.core.alarms import Priority

    core = make_core(tilt=False, hr=False)
    assert core.external_condition(1.0, "link.lost", (Priority.MEDIUM, 5.0, 5.0)) == []
    events = core.user_input(2.0, InputKind.SESSION_START)
    assert [(e.id, e.event.value, e.message) for e in events] == [
        ("link.lost", "raised", "Link to the clinic hub lost for 5 s")
    ]
    gone = core.external_condition(3.0, "link.lost", None)
    assert [e.event.value for e in gone] == ["cleared", "resolved"]


@given(st.lists(st.floats(min_value=20, max_value=250), min_size=1, max_size=80))
def test_median_is_the_statistics_median(values: list[float]) -> None:
    import statistics

    from monitor.core.rules import median

    assert median(values) == statistics.median(values)
