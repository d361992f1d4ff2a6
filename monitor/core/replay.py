"""Replay (SPEC section 8): a trace through the same pure core, on the trace's own clock."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from monitor.core.alarms import AlarmEvent
from monitor.core.engine import SafetyCore
from monitor.core.trace import Notification, Record, TraceReader

if TYPE_CHECKING:
    from monitor.core.profiles import Profile

TICK_S = 0.1
"""Time advances between records in steps of at most this, so time-based alarms are on time."""
TICKS_PER_S = 10
GUARD_S = 2 * TICK_S
"""A jump over a gap lands this far before the next deadline at least, so float rounding of
the deadline can never move a change past the landing mark."""


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


def catch_up(core: SafetyCore, last: float, t: float) -> Iterator[list[AlarmEvent]]:
    """Let time pass from ``last`` to just before ``t`` on the 0.1 s grid, with the result of
    advancing the core to every mark of :func:`grid_between` in turn (SPEC 8), but in a number
    of steps that does not grow with the gap: marks before the core's next deadline
    (:meth:`SafetyCore.next_change`) change nothing, so they are passed in one step, and only
    the marks around each deadline and the first and last of the gap are evaluated. Yields
    the events of each evaluated mark (often empty), in order."""
    marks = grid_between(last, t)
    if not marks:
        return
    k, end = marks.start, marks.stop
    per_s = TICKS_PER_S
    yield core.advance(k / per_s)
    k += 1
    while k < end:
        deadline = core.next_change()
        land = end - 1 if math.isinf(deadline) else math.floor((deadline - GUARD_S) * per_s)
        land = min(land, end - 1)
        if land - 1 > k:
            core.pass_marks(k, land - 1, per_s)
            k = land - 1
        yield core.advance(k / per_s)
        k += 1


def replay(records: Iterable[Record], core: SafetyCore) -> Iterator[AlarmEvent]:
    """Every alarm event of the records (a trace), in time order.

    Reading a :class:`TraceReader` raises TraceError on a bad line.
    """
    last = 0.0
    notification = core.notification
    for record in records:
        t = record.t
        if t - last > TICK_S:  # (the test grid_between makes, here to keep dense traces fast)
            for events in catch_up(core, last, t):
                yield from events
        last = t
        if isinstance(record, Notification):  # (99 % of a trace: SafetyCore.apply's first case)
            events = notification(t, record.sensor, record.char, record.data)
        else:
            events = core.apply(record)
        if events:
            yield from events
