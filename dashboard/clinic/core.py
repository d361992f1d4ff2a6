"""The clinic hub's pure core: what each station last said, the hub's own ``link.lost``
alarm per station, and escalation of alarms to the supervising therapists.

Time comes in with every call. The MQTT client, the web page and the store live around it
(``dashboard/clinic/service.py``, ``dashboard/clinic/app.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.core.alarms import AlarmEvent, AlarmManager, Latch, Priority

LINK_TIMEOUT_S = 5.0
"""A station silent this long (no state heartbeat) raises ``link.lost`` at the hub."""
ACCEPT_WITHIN_S = 30.0
"""An escalation not accepted within this goes to the next person on the list."""
REPEAT_S = 60.0
"""An escalation is repeated this often to whoever has it, until accepted."""
MEDIUM_AFTER_S = 30.0
"""A medium alarm unacknowledged this long is escalated."""
LINK_LOST = "link.lost"


@dataclass
class StationView:
    """What the hub knows of one station."""

    name: str
    status: str = "unknown"
    last_heard: float = -math.inf
    state: dict[str, Any] | None = None
    site_down: bool = False
    """A clinic group's central hub: the bridge of the station's site is down, so nothing the
    station says reaches the hub."""
    alarms: AlarmManager = field(init=False)

    def __post_init__(self) -> None:
        station = self.name

        def describe(alarm_id: str, p: Priority, v: float | None, lim: float | None) -> str:
            if v is None and self.site_down:
                return f"{station}: not seen, its site's bridge to the hub is down"
            if v is None:
                return f"{station}: the station is offline"
            return f"{station}: no word from the station for {v:.0f} s"

        self.alarms = AlarmManager({LINK_LOST: Latch.HIGH_ONLY}, describe, (LINK_LOST,))

    @property
    def inverted_or_alarming(self) -> bool:
        """Whether the last state showed the user inverted or any alarm listed."""
        state = self.state or {}
        return state.get("phase") == "inverted" or bool(state.get("alarms"))


class HubCore:
    """Every station's latest word and the hub's own alarms about them."""

    def __init__(self, link_timeout_s: float = LINK_TIMEOUT_S) -> None:
        self.link_timeout_s = link_timeout_s
        self.stations: dict[str, StationView] = {}

    def _view(self, station: str) -> StationView:
        view = self.stations.get(station)
        if view is None:
            view = self.stations[station] = StationView(station)
        return view

    def status(self, t: float, station: str, payload: str) -> list[tuple[str, AlarmEvent]]:
        """``online`` / ``offline`` (the last will) on the status topic."""
        view = self._view(station)
        view.status = payload
        if payload == "online":
            view.last_heard = t
        return self._check(t, view)

    def state(self, t: float, station: str, state: dict[str, Any]) -> list[tuple[str, AlarmEvent]]:
        """A state message: the station's heartbeat."""
        view = self._view(station)
        view.state = state
        view.last_heard = t
        if view.status != "online":
            view.status = "online"
        return self._check(t, view)

    def site(
        self, t: float, stations: Sequence[str], bridge_up: bool
    ) -> list[tuple[str, AlarmEvent]]:
        """The bridge of these stations' site went down (their ``link.lost`` at once: the
        hub cannot hear them) or came back (it clears with their next heartbeat)."""
        events: list[tuple[str, AlarmEvent]] = []
        for station in stations:
            view = self._view(station)
            view.site_down = not bridge_up
            events += self._check(t, view)
        return events

    def tick(self, t: float) -> list[tuple[str, AlarmEvent]]:
        """Let time pass: silent stations raise ``link.lost``."""
        events: list[tuple[str, AlarmEvent]] = []
        for view in self.stations.values():
            events += self._check(t, view)
        return events

    def _check(self, t: float, view: StationView) -> list[tuple[str, AlarmEvent]]:
        silent = t - view.last_heard
        wants = {}
        if view.status == "offline" or view.site_down or silent >= self.link_timeout_s:
            priority = Priority.HIGH if view.inverted_or_alarming else Priority.MEDIUM
            unseen = view.status == "offline" or view.site_down
            value = None if unseen else (silent if math.isfinite(silent) else None)
            wants[LINK_LOST] = (priority, value, self.link_timeout_s)
        events = view.alarms.update(t, wants, inverted=view.inverted_or_alarming)
        return [(view.name, e) for e in events]

    def acknowledge(self, t: float, station: str, by: str) -> list[tuple[str, AlarmEvent]]:
        """Someone at the hub acknowledged the hub's own ``link.lost`` of a station."""
        view = self.stations.get(station)
        if view is None:
            return []
        return [(station, e) for e in view.alarms.acknowledge(t, LINK_LOST, by)]

    def alarm_list(self) -> list[dict[str, Any]]:
        """Every listed alarm of every station (its own, and the hub's link.lost), most urgent
        first: what the central screen's merged list shows."""
        rows: list[dict[str, Any]] = []
        for view in self.stations.values():
            for alarm in (view.state or {}).get("alarms", []):
                rows.append({**alarm, "station": view.name, "source": "station"})
            for alarm in view.alarms.alarms.values():
                rows.append(
                    {
                        "station": view.name,
                        "source": "hub",
                        "id": alarm.id,
                        "priority": alarm.priority.label,
                        "state": alarm.state.value,
                        "acknowledged": alarm.state.value == "acknowledged",
                        "value": alarm.value,
                        "limit": alarm.limit,
                        "message": view.alarms.describe(alarm),
                    }
                )
        rank = {"high": 0, "medium": 1, "low": 2}
        return sorted(rows, key=lambda r: (rank.get(r["priority"], 3), r["station"], r["id"]))


# -- escalation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """Send this alarm to this person now."""

    station: str
    alarm: str
    priority: str
    person: str
    repeat: bool
    message: str
    step: str = ""
    """Which step of the escalation this is (``pat:sent``, ``pat:repeated#2``): the same on
    every replica that follows the same alarm, so the database lets one of them send it."""


@dataclass
class _Chase:
    station: str
    alarm: str
    priority: str
    message: str
    index: int = 0
    handed_at: float = 0.0
    sent_at: float = 0.0
    accepted_by: str | None = None
    repeats: int = 0


@dataclass
class Escalation:
    """High alarms and medium ones unacknowledged for 30 s go to the first therapist on the
    list; not accepted within 30 s, to the next; repeated every 60 s to whoever has it until
    someone accepts. A rejection hands it on at once. Pure: the caller sends and records."""

    accept_within_s: float = ACCEPT_WITHIN_S
    repeat_s: float = REPEAT_S
    medium_after_s: float = MEDIUM_AFTER_S
    chases: dict[tuple[str, str], _Chase] = field(default_factory=dict)

    def due(
        self, t: float, alarms: Sequence[Mapping[str, Any]], people: Sequence[str]
    ) -> tuple[list[Notice], list[tuple[str, str, str]]]:
        """What to send now, and the steps to record ((station, alarm), person, step).

        ``alarms`` is the merged list (station, id, priority, acknowledged, raised_s_ago).
        """
        notices: list[Notice] = []
        steps: list[tuple[str, str, str]] = []
        live: set[tuple[str, str]] = set()
        for a in alarms:
            key = (a["station"], a["id"])
            unacked_for = a.get("raised_s_ago") or 0.0
            wanted = a["priority"] == "high" or (
                a["priority"] == "medium" and unacked_for >= self.medium_after_s
            )
            if not wanted or a.get("acknowledged"):
                continue
            live.add(key)
            chase = self.chases.get(key)
            if chase is None:
                if not people:
                    continue
                chase = _Chase(a["station"], a["id"], a["priority"], a.get("message", ""), 0, t, t)
                self.chases[key] = chase
                notices.append(self._notice(chase, people, repeat=False))
                steps.append((*key, f"{people[0]}:sent"))
                continue
            chase.priority, chase.message = a["priority"], a.get("message", chase.message)
            if chase.accepted_by is not None or not people:
                continue
            if t - chase.handed_at >= self.accept_within_s and chase.index + 1 < len(people):
                steps.append((*key, f"{people[chase.index]}:not accepted"))
                chase.index += 1
                chase.handed_at = chase.sent_at = t
                notices.append(self._notice(chase, people, repeat=False))
                steps.append((*key, f"{people[chase.index]}:sent"))
            elif t - chase.sent_at >= self.repeat_s:
                chase.sent_at = t
                chase.repeats += 1
                notices.append(self._notice(chase, people, repeat=True))
                steps.append((*key, f"{people[chase.index]}:repeated"))
        for key in list(self.chases):
            if key not in live:
                chase = self.chases.pop(key)
                if chase.accepted_by is None:
                    steps.append((*key, "-:ended (acknowledged or resolved)"))
        return notices, steps

    def _notice(self, chase: _Chase, people: Sequence[str], repeat: bool) -> Notice:
        person = people[chase.index]
        step = f"{person}:repeated#{chase.repeats}" if repeat else f"{person}:sent"
        return Notice(
            chase.station, chase.alarm, chase.priority, person, repeat, chase.message, step
        )

    def adopt(
        self,
        t: float,
        station: str,
        alarm: str,
        handed_to: str | None,
        accepted_by: str | None,
        people: Sequence[str],
    ) -> None:
        """What another replica did (from the shared store): someone accepted the alarm, or
        it was handed on further down the list (a rejection, a timeout seen first there)."""
        chase = self.chases.get((station, alarm))
        if chase is None:
            return
        if accepted_by is not None and chase.accepted_by is None:
            chase.accepted_by = accepted_by
        if handed_to is not None and handed_to in people:
            index = list(people).index(handed_to)
            if index > chase.index:
                chase.index = index
                chase.handed_at = chase.sent_at = t

    def accept(self, station: str, alarm: str, person: str) -> bool:
        """``person`` takes it: no more escalation. False if there is nothing to accept."""
        chase = self.chases.get((station, alarm))
        if chase is None or chase.accepted_by is not None:
            return False
        chase.accepted_by = person
        return True

    def reject(
        self, t: float, station: str, alarm: str, person: str, people: Sequence[str]
    ) -> Notice | None:
        """``person`` cannot take it: hand it to the next person at once."""
        chase = self.chases.get((station, alarm))
        if chase is None or chase.accepted_by is not None:
            return None
        if people and people[chase.index] == person and chase.index + 1 < len(people):
            chase.index += 1
            chase.handed_at = chase.sent_at = t
            return self._notice(chase, people, repeat=False)
        return None
