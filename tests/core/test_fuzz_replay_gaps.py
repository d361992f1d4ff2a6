"""A gap in ``t`` is passed in one jump with the result of stepping through every 0.1 s mark.

Random sessions (tilt and heart rate at random angles and rates, silences of a fraction of a
second to half an hour, link changes, battery, every user input) are replayed twice: with
:func:`monitor.core.replay.replay` (which jumps to the core's next deadline) and with a reference
that advances the core to every grid mark of every gap, as replay did before. The alarm events
must be identical, to the last digit of every value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.alarms import AlarmEvent
from monitor.core.codecs.heart_rate import Contact
from monitor.core.engine import SafetyCore
from monitor.core.replay import TICKS_PER_S, catch_up, grid_between, replay
from monitor.core.rules import RULE_IDS
from monitor.core.trace import End, InputKind, Record
from tests.core.rig import (
    Notification,
    UserInput,
    battery_read,
    gatt,
    hr_payload,
    link,
    make_core,
    tilt_payload,
    tilt_stream,
)


def stepped(records: Iterable[Record], core: SafetyCore) -> Iterator[AlarmEvent]:
    """The reference: the core advanced to every grid mark of every gap, one by one."""
    last = 0.0
    for record in records:
        for k in grid_between(last, record.t):
            yield from core.advance(k / TICKS_PER_S)
        last = record.t
        yield from core.apply(record)


durations = st.one_of(
    st.floats(0.02, 2.0), st.floats(2.0, 80.0), st.floats(80.0, 1800.0), st.just(0.0)
)
inputs = st.one_of(
    st.sampled_from(
        [
            (InputKind.SESSION_START, None),
            (InputKind.SESSION_END, None),
            (InputKind.SYMPTOM, None),
            (InputKind.SILENCE, None),
        ]
    ),
    st.tuples(
        st.sampled_from([InputKind.ACKNOWLEDGE, InputKind.SILENCE]), st.sampled_from(RULE_IDS)
    ),
)
segment = st.fixed_dictionaries(
    {
        "gap": durations,
        "length": durations,
        "theta": st.one_of(st.none(), st.floats(-15.0, 100.0)),
        "tilt_hz": st.sampled_from([1.0, 4.0, 20.0]),
        "accel": st.sampled_from([None, 1.0, 0.2, 3.5]),
        "hr": st.one_of(st.none(), st.integers(0, 240)),
        "inputs": st.lists(inputs, max_size=2),
        "links": st.lists(st.tuples(st.sampled_from(["tilt", "hr"]), st.booleans()), max_size=1),
        "battery": st.one_of(st.none(), st.integers(0, 100)),
    }
)


def records_of(segments: list[dict[str, object]]) -> list[Record]:
    """The trace of the segments: each a silence, inputs, then readings for its length."""
    out: list[Record] = []
    t = 0.0
    seq = 0
    for seg in segments:
        t = round(t + float(seg["gap"]), 4)  # type: ignore[arg-type]
        for kind, alarm in seg["inputs"]:  # type: ignore[attr-defined]
            out.append(UserInput(t, kind, alarm, "fuzz"))
        for sensor, up in seg["links"]:  # type: ignore[attr-defined]
            out.append(link(t, sensor, up))
        if seg["battery"] is not None:
            out.append(battery_read(t, "tilt", int(seg["battery"])))  # type: ignore[call-overload]
        end = t + float(seg["length"])  # type: ignore[arg-type]
        theta, hz, hr = seg["theta"], float(seg["tilt_hz"]), seg["hr"]  # type: ignore[arg-type]
        accel = seg["accel"]
        tilt_t = hr_t = t
        while min(tilt_t, hr_t) <= end:
            if theta is not None and tilt_t <= hr_t:
                seq += 1
                a = None if accel is None else (0.0, 0.0, float(accel))  # type: ignore[arg-type]
                data = tilt_payload(seq, float(theta), a)  # type: ignore[arg-type]
                out.append(Notification(round(tilt_t, 4), "tilt", gatt.TILT_MEASUREMENT, data))
                tilt_t += 1 / hz
            elif hr is not None:
                bpm = int(hr)  # type: ignore[call-overload]
                contact = Contact.DETECTED if bpm else Contact.NOT_DETECTED
                data = hr_payload(bpm, contact)
                out.append(Notification(round(hr_t, 4), "hr", gatt.HEART_RATE_MEASUREMENT, data))
                hr_t += 1.0
            else:
                break
            if theta is None:
                tilt_t = end + 1
        t = end
    out.sort(key=lambda r: r.t)
    out.append(End(round(t + 30.0, 4)))
    return out


@pytest.mark.timeout(600)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    segments=st.lists(segment, min_size=1, max_size=8),
    profile=st.sampled_from(["beginner", "standard"]),
    near_midnight=st.booleans(),
)
def test_jumping_a_gap_gives_the_events_of_stepping_through_it(
    segments: list[dict[str, object]], profile: str, near_midnight: bool
) -> None:
    started = datetime(2026, 11, 22, 23, 50, tzinfo=UTC) if near_midnight else None
    records = records_of(segments)
    jumped = list(replay(records, make_core(profile, started_at=started)))
    reference = list(stepped(records, make_core(profile, started_at=started)))
    assert jumped == reference


def test_a_week_long_gap_costs_its_deadlines_not_its_length() -> None:
    """Six million grid marks, a few dozen evaluated; the events are stepping's."""
    readings = list(tilt_stream(lambda t: 30.0, until=1.0, hz=10))
    core = make_core("beginner")
    events = [e for r in readings for e in core.apply(r)]
    evaluated = 0
    for step in catch_up(core, core.t, 600_000.0):
        evaluated += 1
        events += step
    assert evaluated < 200
    assert events == list(stepped([*readings, End(1500.0)], make_core("beginner")))
    assert [(e.t, e.id, e.event.value) for e in events][:3] == [
        (3.0, "tilt.signal_lost", "raised"),
        (5.0, "hr.signal_lost", "raised"),
        (11.0, "tilt.signal_lost", "escalated"),
    ]
