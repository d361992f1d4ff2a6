"""The alarm manager (SPEC section 7): examples and a hypothesis state machine."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from monitor.core.alarms import (
    ALLOWED_EVENTS,
    ESCALATE_AFTER_S,
    RESOUND_AFTER_S,
    SILENCE_S,
    AlarmEvent,
    AlarmManager,
    AlarmState,
    EventKind,
    Latch,
    Priority,
)

LATCH = {"a.never": Latch.NO, "b.high": Latch.HIGH_ONLY, "c.always": Latch.YES}
IDS = tuple(LATCH)
LOW, MEDIUM, HIGH = Priority.LOW, Priority.MEDIUM, Priority.HIGH


def manager() -> AlarmManager:
    return AlarmManager(LATCH, lambda i, p, v, lim: f"{i} {p.label}", IDS)


def kinds(events: list[AlarmEvent]) -> list[tuple[str, str]]:
    return [(e.id, e.event.value) for e in events]


def test_non_latching_alarm_resolves_when_its_condition_clears() -> None:
    m = manager()
    assert kinds(m.update(0, {"a.never": (MEDIUM, 1, 2)}, False)) == [("a.never", "raised")]
    assert m.update(1, {"a.never": (MEDIUM, 1, 2)}, False) == []
    assert kinds(m.update(2, {}, False)) == [("a.never", "cleared"), ("a.never", "resolved")]
    assert m.alarms == {}


def test_latching_alarm_stays_listed_until_acknowledged() -> None:
    m = manager()
    m.update(0, {"c.always": (MEDIUM, 1, 2)}, False)
    assert kinds(m.update(1, {}, False)) == [("c.always", "cleared")]
    assert m.alarms["c.always"].state is AlarmState.LATCHED
    assert [a.id for a in m.sounding(1)] == ["c.always"]  # still sounding
    assert kinds(m.acknowledge(5, "c.always", "anna")) == [
        ("c.always", "acknowledged"),
        ("c.always", "resolved"),
    ]


def test_high_only_latches_once_high() -> None:
    m = manager()
    m.update(0, {"b.high": (MEDIUM, 1, 2)}, False)
    assert kinds(m.update(1, {}, False))[-1] == ("b.high", "resolved")
    m.update(2, {"b.high": (MEDIUM, 1, 2)}, False)
    assert kinds(m.update(3, {"b.high": (HIGH, 1, 2)}, False)) == [("b.high", "escalated")]
    assert kinds(m.update(4, {}, False)) == [("b.high", "cleared")]
    assert "b.high" in m.alarms


def test_acknowledge_quiets_then_sounds_again_after_120_s_if_still_present() -> None:
    m = manager()
    m.update(0, {"a.never": (LOW, 1, 2)}, False)
    m.acknowledge(1, "a.never")
    assert m.sounding(1 + RESOUND_AFTER_S - 0.1) == []
    m.update(1 + RESOUND_AFTER_S - 0.1, {"a.never": (LOW, 1, 2)}, False)
    assert m.alarms["a.never"].state is AlarmState.ACKNOWLEDGED
    m.update(1 + RESOUND_AFTER_S, {"a.never": (LOW, 1, 2)}, False)
    assert [a.id for a in m.sounding(1 + RESOUND_AFTER_S)] == ["a.never"]
    # ...and it can be acknowledged again
    assert kinds(m.acknowledge(200, "a.never")) == [("a.never", "acknowledged")]


def test_silence_pauses_sound_for_120_s_and_a_new_alarm_breaks_through() -> None:
    m = manager()
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, False)
    assert kinds(m.silence(1, None, "anna")) == [("a.never", "silenced")]
    assert m.sounding(2) == []
    m.update(2, {"a.never": (MEDIUM, 1, 2), "c.always": (LOW, 1, 2)}, False)
    assert [a.id for a in m.sounding(2)] == ["c.always"]
    assert {a.id for a in m.sounding(1 + SILENCE_S)} == {"a.never", "c.always"}


def test_silence_longer_than_the_clinic_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="silence"):
        manager().silence(0, None, None, 301)


def test_unacknowledged_medium_escalates_after_30_s_only_while_inverted() -> None:
    m = manager()
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, False)
    assert m.update(ESCALATE_AFTER_S + 5, {"a.never": (MEDIUM, 1, 2)}, False) == []
    events = m.update(ESCALATE_AFTER_S + 6, {"a.never": (MEDIUM, 1, 2)}, True)
    assert kinds(events) == [("a.never", "escalated")]
    assert events[0].priority is HIGH


def test_acknowledged_medium_does_not_escalate() -> None:
    m = manager()
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, True)
    m.acknowledge(10, "a.never")
    assert m.update(60, {"a.never": (MEDIUM, 1, 2)}, True) == []


def test_event_json_has_the_spec_schema() -> None:
    m = manager()
    (event,) = m.update(62.0, {"a.never": (MEDIUM, 60, 60)}, True)
    assert event.to_json() == {
        "t": 62.0,
        "id": "a.never",
        "priority": "medium",
        "event": "raised",
        "value": 60.0,
        "limit": 60.0,
        "message": "a.never medium",
    }
    assert AlarmEvent.from_json(event.to_json()) == event


class AlarmMachine(RuleBasedStateMachine):
    """Random conditions, acknowledges, silences and time; the SPEC's promises must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.m = manager()
        self.t = 0.0
        self.inverted = False
        self.wants: dict[str, tuple[Priority, float, float]] = {}
        self.state: dict[str, AlarmState | None] = dict.fromkeys(IDS)
        self.acked_since_raise: dict[str, bool] = dict.fromkeys(IDS, False)
        self.last_t = 0.0

    def _take(self, events: list[AlarmEvent]) -> None:
        for e in events:
            assert e.t >= self.last_t, "events in time order"
            self.last_t = e.t
            state = self.state[e.id]
            if e.event is EventKind.RESOLVED:
                assert e.id not in self.m.alarms
                if LATCH[e.id] is Latch.YES or (
                    LATCH[e.id] is Latch.HIGH_ONLY and e.priority is HIGH
                ):
                    assert self.acked_since_raise[e.id], f"latching {e.id} resolved without ack"
                self.state[e.id] = None
                continue
            assert e.event in ALLOWED_EVENTS[state], f"{e.id}: {e.event} after {state}"
            if e.event is EventKind.RAISED:
                self.acked_since_raise[e.id] = False
                # a silence never hides a new alarm
                assert self.m.alarms[e.id].sounding(e.t)
            if e.event is EventKind.ACKNOWLEDGED:
                self.acked_since_raise[e.id] = True
            listed = self.m.alarms.get(e.id)
            self.state[e.id] = listed.state if listed is not None else None

    @rule(
        alarm=st.sampled_from(IDS),
        priority=st.none() | st.sampled_from(Priority),
    )
    def condition(self, alarm: str, priority: Priority | None) -> None:
        if priority is None:
            self.wants.pop(alarm, None)
        else:
            self.wants[alarm] = (priority, 1.0, 2.0)
        self._take(self.m.update(self.t, self.wants, self.inverted))

    @rule(dt=st.sampled_from([0.1, 1.0, 10.0, 31.0, 121.0]))
    def time_passes(self, dt: float) -> None:
        self.t += dt
        self._take(self.m.update(self.t, self.wants, self.inverted))

    @rule()
    def flip_posture(self) -> None:
        self.inverted = not self.inverted
        self._take(self.m.update(self.t, self.wants, self.inverted))

    @rule(alarm=st.sampled_from(IDS))
    def acknowledge(self, alarm: str) -> None:
        self._take(self.m.acknowledge(self.t, alarm, "tester"))

    @precondition(lambda self: bool(self.m.alarms))
    @rule(alarm=st.none() | st.sampled_from(IDS))
    def silence(self, alarm: str | None) -> None:
        self._take(self.m.silence(self.t, alarm, "tester"))

    @invariant()
    def model_matches_the_manager(self) -> None:
        for alarm_id in IDS:
            listed = self.m.alarms.get(alarm_id)
            if listed is None:
                assert self.state[alarm_id] is None
            else:
                # resounding moves ACKNOWLEDGED back to ACTIVE without an event
                assert self.state[alarm_id] is not None
                self.state[alarm_id] = listed.state

    @invariant()
    def present_conditions_are_listed(self) -> None:
        for alarm_id in self.wants:
            assert alarm_id in self.m.alarms

    @invariant()
    def no_unacknowledged_medium_lingers_inverted(self) -> None:
        for alarm in self.m.alarms.values():
            if (
                self.inverted
                and alarm.priority is MEDIUM
                and alarm.state is not AlarmState.ACKNOWLEDGED
            ):
                assert self.t - alarm.unacked_since < ESCALATE_AFTER_S


TestAlarmMachine = AlarmMachine.TestCase
TestAlarmMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def without(
    state: AlarmState | None, kind: EventKind
) -> dict[AlarmState | None, frozenset[EventKind]]:
    """ALLOWED_EVENTS with one transition taken out."""
    return {s: kinds - {kind} if s is state else kinds for s, kinds in ALLOWED_EVENTS.items()}


def manager_with(table: dict[AlarmState | None, frozenset[EventKind]]) -> AlarmManager:
    return AlarmManager(LATCH, lambda i, p, v, lim: f"{i} {p.label}", IDS, allowed=table)


def test_the_table_drives_acknowledge_a_transition_it_lacks_is_refused() -> None:
    m = manager_with(without(AlarmState.ACTIVE, EventKind.ACKNOWLEDGED))
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, False)
    assert m.acknowledge(1, "a.never", "anna") == []
    assert m.alarms["a.never"].state is AlarmState.ACTIVE
    assert manager().acknowledge(1, "a.never") == []  # (nothing listed: nothing to refuse)


def test_the_table_drives_silence() -> None:
    m = manager_with(without(AlarmState.ACTIVE, EventKind.SILENCED))
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, False)
    assert m.silence(1) == []
    assert [a.id for a in m.sounding(2)] == ["a.never"]


def test_the_table_drives_what_rules_and_timers_ask_for() -> None:
    # no raise from "not listed": the condition is there, the alarm is not
    m = manager_with(without(None, EventKind.RAISED))
    assert m.update(0, {"a.never": (MEDIUM, 1, 2)}, False) == []
    assert m.alarms == {}
    # no escalation from "active": neither a worse condition nor the 30 s timer escalates
    m = manager_with(without(AlarmState.ACTIVE, EventKind.ESCALATED))
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, True)
    assert m.update(1, {"a.never": (HIGH, 1, 2)}, True) == []
    assert m.update(ESCALATE_AFTER_S + 1, {"a.never": (MEDIUM, 1, 2)}, True) == []
    assert m.alarms["a.never"].priority is MEDIUM
    # no re-raise of a latched alarm: it stays latched (listed, sounding) when it comes back
    m = manager_with(without(AlarmState.LATCHED, EventKind.RAISED))
    m.update(0, {"c.always": (MEDIUM, 1, 2)}, False)
    m.update(1, {}, False)
    assert m.update(2, {"c.always": (MEDIUM, 1, 2)}, False) == []
    assert m.alarms["c.always"].state is AlarmState.LATCHED
    # no clearing of an active alarm: it stays listed while its condition is gone
    m = manager_with(without(AlarmState.ACTIVE, EventKind.CLEARED))
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, False)
    assert m.update(1, {}, False) == []
    assert "a.never" in m.alarms


def test_the_shipped_table_is_the_default() -> None:
    m = manager()
    m.update(0, {"a.never": (MEDIUM, 1, 2)}, False)
    assert kinds(m.acknowledge(1, "a.never")) == [("a.never", "acknowledged")]
    assert m.acknowledge(2, "a.never") == []  # acknowledged -> acknowledged is not in the table
