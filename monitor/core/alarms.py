"""The alarm manager (SPEC section 7, after IEC 60601-1-8), pure.

The rules say, at every step, which conditions are present and at what priority. The manager
turns that into the life of each alarm: raised, escalated, acknowledged, silenced, cleared,
resolved; latching; sounding again 120 s after an acknowledge while the condition persists;
silence for 120 s that a new alarm breaks through; escalation of an unacknowledged medium alarm
to high after 30 s while the user is inverted.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.deadline import earliest

RESOUND_AFTER_S = 120.0
SILENCE_S = 120.0
MAX_SILENCE_S = 300.0
ESCALATE_AFTER_S = 30.0


class Priority(enum.IntEnum):
    """Alarm priorities; higher is more urgent."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        """``low``, ``medium`` or ``high``, as events spell it."""
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Priority:
        """The priority spelled ``label``."""
        try:
            return cls[label.upper()]
        except KeyError:
            raise ValueError(f"unknown priority {label!r} (low, medium, high)") from None


class EventKind(enum.StrEnum):
    """What happened to an alarm."""

    RAISED = "raised"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    CLEARED = "cleared"
    RESOLVED = "resolved"


class Latch(enum.Enum):
    """Whether an alarm stays listed after its condition ends, until acknowledged."""

    NO = "no"
    HIGH_ONLY = "high only"
    YES = "yes"


class AlarmState(enum.Enum):
    """An alarm on the list. Resolved alarms leave the list."""

    ACTIVE = "active"
    """Condition present, not acknowledged: sounding (unless silenced)."""
    ACKNOWLEDGED = "acknowledged"
    """Condition present, acknowledged: quiet until it sounds again."""
    LATCHED = "latched"
    """Condition gone, not acknowledged: stays listed and sounding until acknowledged."""


ALLOWED_EVENTS: dict[AlarmState | None, frozenset[EventKind]] = {
    None: frozenset({EventKind.RAISED}),
    AlarmState.ACTIVE: frozenset(
        {EventKind.ESCALATED, EventKind.ACKNOWLEDGED, EventKind.SILENCED, EventKind.CLEARED}
    ),
    AlarmState.ACKNOWLEDGED: frozenset(
        {EventKind.ESCALATED, EventKind.SILENCED, EventKind.CLEARED}
    ),
    AlarmState.LATCHED: frozenset(
        {EventKind.RAISED, EventKind.ESCALATED, EventKind.ACKNOWLEDGED, EventKind.SILENCED}
    ),
}
"""Which event may come next for an alarm in each state (None: not listed). ``resolved``
follows ``cleared`` or ``acknowledged`` in the same step and ends the alarm.

The table drives :class:`AlarmManager`: a transition it does not list is refused (no event,
no change of state), whether a rule, a timer or a person asked for it."""

_LATCHED, _ACKNOWLEDGED, _MEDIUM = AlarmState.LATCHED, AlarmState.ACKNOWLEDGED, Priority.MEDIUM
"""For :meth:`AlarmManager.update`, asked every sample while an alarm is listed: an enum
member read through its class costs ~60 ns on Python 3.11, a module global ~7 ns."""


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One event of one alarm: what replay prints, the store keeps, MQTT and SSE carry."""

    t: float
    id: str
    priority: Priority
    event: EventKind
    value: float | None
    limit: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The SPEC section 7 object."""
        return {
            "t": self.t,
            "id": self.id,
            "priority": self.priority.label,
            "event": self.event.value,
            "value": self.value,
            "limit": self.limit,
            "message": self.message,
        }

    def to_json_line(self) -> str:
        """One line of ``spotter replay --json``."""
        return json.dumps(self.to_json(), ensure_ascii=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AlarmEvent:
        """Parse the SPEC section 7 object; raise ValueError naming what is wrong."""
        try:
            return cls(
                t=float(obj["t"]),
                id=str(obj["id"]),
                priority=Priority.parse(str(obj["priority"])),
                event=EventKind(obj["event"]),
                value=None if obj.get("value") is None else float(obj["value"]),
                limit=None if obj.get("limit") is None else float(obj["limit"]),
                message=str(obj.get("message", "")),
            )
        except KeyError as exc:
            raise ValueError(f"alarm event lacks {exc.args[0]!r}") from None


Want = tuple[Priority, float | None, float | None]
"""What a rule reports for a present condition: priority, value, limit."""


class Alarm:
    """One listed alarm and its history-relevant times."""

    __slots__ = (
        "acked_at",
        "condition",
        "id",
        "latch",
        "limit",
        "priority",
        "raised_at",
        "silenced_until",
        "state",
        "unacked_since",
        "value",
    )

    def __init__(self, id: str, want: Want, latch: Latch, t: float) -> None:
        self.id = id
        self.priority, self.value, self.limit = want
        self.latch = latch
        self.state = AlarmState.ACTIVE
        self.condition = True
        self.raised_at = t
        self.unacked_since = t
        self.acked_at: float | None = None
        self.silenced_until = float("-inf")

    @property
    def latches(self) -> bool:
        """Whether this alarm, at its current priority, stays listed once its condition ends."""
        return self.latch is Latch.YES or (
            self.latch is Latch.HIGH_ONLY and self.priority is Priority.HIGH
        )

    def sounding(self, t: float) -> bool:
        """Whether the station should be sounding this alarm at ``t``."""
        return self.state is not AlarmState.ACKNOWLEDGED and t >= self.silenced_until


Describe = Callable[[str, Priority, float | None, float | None], str]


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


class AlarmManager:
    """Every listed alarm of a station, and the events that change them.

    ``latch_of`` gives each alarm id's latching policy; ``describe`` writes the message of a
    raised or escalated event; ``allowed`` is the transition table (``ALLOWED_EVENTS``).
    Time arrives with every call.
    """

    def __init__(
        self,
        latch_of: Mapping[str, Latch],
        describe: Describe,
        order: Iterable[str] = (),
        silence_s: float = SILENCE_S,
        allowed: Mapping[AlarmState | None, frozenset[EventKind]] = ALLOWED_EVENTS,
    ) -> None:
        if not 0 < silence_s <= MAX_SILENCE_S:
            raise ValueError(f"silence of {silence_s} s outside 0-{MAX_SILENCE_S} s")
        self._latch_of = latch_of
        self._describe = describe
        self._rank = {alarm_id: i for i, alarm_id in enumerate(order)}
        self.silence_s = silence_s
        self._allowed = allowed
        self.alarms: dict[str, Alarm] = {}

    def _may(self, state: AlarmState | None, kind: EventKind) -> bool:
        """Whether the table lets an alarm in ``state`` (None: not listed) take ``kind``."""
        return kind in self._allowed.get(state, frozenset())

    # -- events --------------------------------------------------------------------------

    def _event(self, t: float, alarm: Alarm, kind: EventKind, message: str) -> AlarmEvent:
        return AlarmEvent(
            round(t, 3),
            alarm.id,
            alarm.priority,
            kind,
            _round(alarm.value),
            _round(alarm.limit),
            message,
        )

    def _sort_key(self, alarm_id: str) -> tuple[int, str]:
        return (self._rank.get(alarm_id, len(self._rank)), alarm_id)

    # -- the rules' view -----------------------------------------------------------------

    def update(self, t: float, wants: Mapping[str, Want], inverted: bool) -> list[AlarmEvent]:
        """Bring every alarm in line with the conditions present at ``t``."""
        alarms = self.alarms
        if not alarms and not wants:
            return []
        events: list[AlarmEvent] = []
        ids = set(wants) | set(alarms)
        for alarm_id in sorted(ids, key=self._sort_key) if len(ids) > 1 else ids:
            want = wants.get(alarm_id)
            alarm = alarms.get(alarm_id)
            if alarm is None:
                assert want is not None
                if not self._may(None, EventKind.RAISED):
                    continue
                alarm = Alarm(alarm_id, want, self._latch_of.get(alarm_id, Latch.NO), t)
                alarms[alarm_id] = alarm
                events.append(self._event(t, alarm, EventKind.RAISED, self._text(alarm)))
            elif want is not None:
                self._present(t, alarm, want, events)
            elif alarm.condition:
                self._gone(t, alarm, events)
            self._timers(t, alarm, inverted, events)
        return events

    def describe(self, alarm: Alarm) -> str:
        """The sentence of a listed alarm: value against limit."""
        return self._describe(alarm.id, alarm.priority, alarm.value, alarm.limit)

    _text = describe

    def _present(self, t: float, alarm: Alarm, want: Want, events: list[AlarmEvent]) -> None:
        priority, alarm.value, alarm.limit = want
        if alarm.state is _LATCHED:
            if not self._may(alarm.state, EventKind.RAISED):
                return
            alarm.state = AlarmState.ACTIVE
            alarm.condition = True
            alarm.unacked_since = t
            alarm.silenced_until = float("-inf")
            alarm.priority = max(alarm.priority, priority)
            events.append(self._event(t, alarm, EventKind.RAISED, self._text(alarm)))
        elif priority > alarm.priority:
            self._escalate(t, alarm, priority, events)

    def _escalate(
        self, t: float, alarm: Alarm, priority: Priority, events: list[AlarmEvent]
    ) -> None:
        if not self._may(alarm.state, EventKind.ESCALATED):
            return
        alarm.priority = priority
        alarm.silenced_until = float("-inf")  # a more urgent alarm breaks through a silence
        if alarm.state is AlarmState.ACKNOWLEDGED:
            alarm.state = AlarmState.ACTIVE
            alarm.unacked_since = t
        events.append(self._event(t, alarm, EventKind.ESCALATED, self._text(alarm)))

    def _gone(self, t: float, alarm: Alarm, events: list[AlarmEvent]) -> None:
        if not self._may(alarm.state, EventKind.CLEARED):
            return
        alarm.condition = False
        events.append(self._event(t, alarm, EventKind.CLEARED, f"Cleared: {self._text(alarm)}"))
        if alarm.state is AlarmState.ACTIVE and alarm.latches:
            alarm.state = AlarmState.LATCHED
        else:
            del self.alarms[alarm.id]
            events.append(self._event(t, alarm, EventKind.RESOLVED, "Resolved"))

    def _timers(self, t: float, alarm: Alarm, inverted: bool, events: list[AlarmEvent]) -> None:
        if alarm.id not in self.alarms:
            return
        if (
            alarm.state is _ACKNOWLEDGED
            and alarm.acked_at is not None
            and t - alarm.acked_at >= RESOUND_AFTER_S
        ):
            alarm.state = AlarmState.ACTIVE  # sounds again: the condition outlived the ack
            alarm.unacked_since = t
        if (
            alarm.state is not _ACKNOWLEDGED
            and alarm.priority is _MEDIUM
            and inverted
            and t - alarm.unacked_since >= ESCALATE_AFTER_S
        ):
            self._escalate(t, alarm, Priority.HIGH, events)

    def next_change(self, t: float) -> float:
        """The earliest time after ``t`` at which a timer may change an alarm with no change
        of condition: sounding again after an acknowledge, escalation, a silence's end."""
        times: list[float] = []
        for alarm in self.alarms.values():
            if alarm.acked_at is not None:
                times.append(alarm.acked_at + RESOUND_AFTER_S)
            times += (alarm.unacked_since + ESCALATE_AFTER_S, alarm.silenced_until)
        return earliest(t, times)

    # -- people --------------------------------------------------------------------------

    def acknowledge(self, t: float, alarm_id: str, by: str | None = None) -> list[AlarmEvent]:
        """Someone acknowledged an alarm; a latched one whose condition ended is resolved."""
        alarm = self.alarms.get(alarm_id)
        if alarm is None or not self._may(alarm.state, EventKind.ACKNOWLEDGED):
            return []
        who = f" by {by}" if by else ""
        events = [self._event(t, alarm, EventKind.ACKNOWLEDGED, f"Acknowledged{who}")]
        if alarm.condition:
            alarm.state = AlarmState.ACKNOWLEDGED
            alarm.acked_at = t
        else:
            del self.alarms[alarm_id]
            events.append(self._event(t, alarm, EventKind.RESOLVED, "Resolved"))
        return events

    def silence(
        self,
        t: float,
        alarm_id: str | None = None,
        by: str | None = None,
        duration_s: float | None = None,
    ) -> list[AlarmEvent]:
        """Pause the sound of one alarm, or of every listed alarm, for the silence period.

        Alarms raised later are not affected: a new alarm breaks through.
        """
        duration = self.silence_s if duration_s is None else duration_s
        if not 0 < duration <= MAX_SILENCE_S:
            raise ValueError(f"silence of {duration} s outside 0-{MAX_SILENCE_S} s")
        if alarm_id is None:
            targets = sorted(self.alarms.values(), key=lambda a: self._sort_key(a.id))
        else:
            alarm = self.alarms.get(alarm_id)
            targets = [] if alarm is None else [alarm]
        who = f" by {by}" if by else ""
        events = []
        for alarm in targets:
            if not self._may(alarm.state, EventKind.SILENCED):
                continue
            alarm.silenced_until = t + duration
            events.append(
                self._event(t, alarm, EventKind.SILENCED, f"Sound paused for {duration:.0f} s{who}")
            )
        return events

    # -- sinks' view ---------------------------------------------------------------------

    def sounding(self, t: float) -> list[Alarm]:
        """The alarms the station should be sounding at ``t``, most urgent first."""
        playing = [a for a in self.alarms.values() if a.sounding(t)]
        return sorted(playing, key=lambda a: (-a.priority, a.raised_at))
