"""Replay (SPEC section 8): a trace through the same pure core, on the trace's own clock."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from monitor.alarms import AlarmEvent
from monitor.core import SafetyCore
from monitor.profiles import Profile
from monitor.trace import Record, TraceReader

TICK_S = 0.1
"""Time advances between records in steps of at most this, so time-based alarms are on time."""


def core_for(reader: TraceReader, profile: Profile, age_years: float | None) -> SafetyCore:
    """A fresh core for the station a trace describes."""
    header = reader.header
    return SafetyCore(header.sensors, profile, age_years=age_years, started_at=header.started_at)


def grid_between(last: float, t: float) -> range:
    """The 0.1 s grid marks (in tenths) strictly between ``last`` and ``t`` when the gap is
    longer than a step: where time must be let pass so time-based alarms are on time."""
    if t - last <= TICK_S:
        return range(0)
    ticks = 1 / TICK_S
    return range(math.floor(last * ticks) + 1, math.ceil(t * ticks))


def replay(records: Iterable[Record], core: SafetyCore) -> Iterator[AlarmEvent]:
    """Every alarm event of the records (a trace), in time order.

    Reading a :class:`TraceReader` raises TraceError on a bad line.
    """
    ticks = 1 / TICK_S
    last = 0.0
    for record in records:
        t = record.t
        for k in grid_between(last, t):
            yield from core.advance(k / ticks)
        last = t
        yield from core.apply(record)
