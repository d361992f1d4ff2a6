"""The session and inversion state machine."""

from __future__ import annotations

import pytest

from monitor.core.session import ALLOWED, Phase, SessionTracker, TransitionError


def phases(s: SessionTracker) -> list[tuple[float, str]]:
    return [(c.t, c.new.value) for c in s.changes]


def test_a_session_starts_when_theta_first_reaches_10_with_hysteresis_down_to_5() -> None:
    s = SessionTracker(600)
    for t, theta in [(0, 0.0), (1, 9.9), (2, 10.0), (3, 6.0), (4, 5.0), (5, 7.0), (6, 10.0)]:
        s.update(t, theta)
    assert phases(s) == [(2, "inverted"), (4, "upright"), (6, "inverted")]
    assert s.rest_before_s == 2
    assert s.inversions == 2


def test_inverted_time_accumulates_per_session() -> None:
    s = SessionTracker(600)
    s.update(0, 20.0)
    s.update(30, 0.0)
    s.update(100, 20.0)
    assert s.hold_s(110) == 10
    assert s.session_inverted_s(110) == 40
    assert s.day_inverted_s(110) == 40


def test_the_session_ends_after_10_minutes_upright() -> None:
    s = SessionTracker(600)
    s.start(0)
    s.update(599.9, 0.0)
    assert s.in_session
    s.update(600, 0.0)
    assert s.phase is Phase.IDLE


def test_ending_while_inverted_waits_until_upright() -> None:
    s = SessionTracker(600)
    s.update(0, 20.0)
    s.request_end(5)
    s.update(6, 20.0)
    assert s.phase is Phase.INVERTED
    s.update(7, 2.0)
    assert phases(s) == [(0, "inverted"), (7, "upright"), (7, "idle")]


def test_unknown_theta_changes_nothing_and_start_is_idempotent() -> None:
    s = SessionTracker(600)
    assert s.start(0)
    assert not s.start(1)
    s.update(2, None)
    assert s.phase is Phase.UPRIGHT


def test_forbidden_transitions_raise() -> None:
    assert Phase.IDLE not in ALLOWED[Phase.INVERTED]
    s = SessionTracker(600)
    s.update(0, 20.0)
    with pytest.raises(TransitionError):
        s._go(1, Phase.IDLE)
