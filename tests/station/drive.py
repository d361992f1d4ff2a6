"""Drive a real core and station sinks the way the station does, on explicit times."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence

from monitor.core.alarms import AlarmEvent, Want
from monitor.core.engine import SafetyCore
from monitor.core.sink import Sink
from monitor.core.trace import Record

TICK_S = 0.1


def drive(
    core: SafetyCore,
    sinks: Sequence[Sink],
    *streams: Iterator[Record] | list[Record],
    until: float,
) -> list[AlarmEvent]:
    """Records into the core as they come; every 0.1 s a tick: advance, publish, heartbeat."""
    records = list(heapq.merge(*(iter(s) for s in streams), key=lambda r: r.t))
    every: list[AlarmEvent] = []

    def publish(events: list[AlarmEvent]) -> None:
        every.extend(events)
        if events:
            for sink in sinks:
                sink.alarm_events(events)

    i = 0
    k = round(core.t / TICK_S) + 1
    while (t := round(k * TICK_S, 6)) <= until:
        while i < len(records) and records[i].t <= t:
            publish(core.apply(records[i]))
            i += 1
        publish(core.advance(t))
        for sink in sinks:
            sink.tick(t)
        k += 1
    return every


def hold(
    core: SafetyCore,
    sinks: Sequence[Sink],
    wants: Mapping[str, Want],
    start: float,
    until: float,
    inverted: bool = False,
) -> None:
    """Drive the alarm manager alone: these conditions present from ``start`` until before
    ``until``, a tick every 0.1 s."""
    k = round(start / TICK_S)
    while (t := round(k * TICK_S, 6)) < until - 1e-9:
        events = core.alarms.update(t, wants, inverted)
        if events:
            for sink in sinks:
                sink.alarm_events(events)
        for sink in sinks:
            sink.tick(t)
        k += 1


def publish(sinks: Sequence[Sink], events: list[AlarmEvent]) -> None:
    """Hand events (an acknowledge, a silence) to every sink."""
    for sink in sinks:
        sink.alarm_events(events)
