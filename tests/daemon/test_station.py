"""The station shell keeps the live core in step with the replay of its trace."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest

from monitor.core import gatt
from monitor.core.replay import replay
from monitor.core.sink import SinkBase
from monitor.core.trace import InputKind, TraceReader
from monitor.station.recorder import TraceRecorder
from monitor.station.station import LockstepClock, Station
from tests.core.rig import make_core, tilt_payload


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_held_up_loop_still_raises_what_the_gap_calls_for(tmp_path: Path) -> None:
    clock = FakeClock()
    core = make_core(hr=False)
    recorder = TraceRecorder(
        tmp_path, "home", dict(core.sensors), datetime.datetime.now().astimezone()
    )
    events = []

    class Collect(SinkBase):
        def alarm_events(self, batch: list) -> None:
            events.extend(batch)

    station = Station(core, clock, [Collect()], recorder)
    recorder.session_started(0.0)
    clock.t = 0.5
    station.user_input(InputKind.SESSION_START)
    for k in range(10):  # tilt at 50 Hz up to 1.0 s
        clock.t = 0.82 + k * 0.02
        station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, 0.0))
    # the event loop was held up for 2.5 s: no tick ran; then the next sample arrives
    clock.t = 3.6
    station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(10, 0.0))
    live = [(e.t, e.id, e.event.value) for e in events]
    assert live[:3] == [
        (3.0, "tilt.signal_lost", "raised"),  # on the 0.1 s grid, as replay would
        (3.6, "tilt.signal_lost", "cleared"),
        (3.6, "tilt.signal_lost", "resolved"),
    ]
    recorder.close(4.0)
    with open(recorder.paths[0], encoding="utf-8") as fh:
        reader = TraceReader(fh, "trace")
        replayed = [(e.t, e.id, e.event.value) for e in replay(reader, make_core(hr=False))]
    assert replayed == live


def test_a_broken_sink_does_not_keep_the_alarm_from_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    got: list = []

    class Broken(SinkBase):
        def alarm_events(self, batch: list) -> None:
            raise BrokenPipeError("the terminal went away")

    class Collect(SinkBase):
        def alarm_events(self, batch: list) -> None:
            got.extend(batch)

    station = Station(make_core(tilt=False, hr=False), clock, [Broken(), Collect()])
    clock.t = 1.0
    with caplog.at_level("ERROR"):
        station.user_input(InputKind.SYMPTOM)
    assert [(e.id, e.event.value) for e in got] == [("user.symptom", "raised")]
    assert station.problems["sink Broken"] == "BrokenPipeError: the terminal went away"
    assert "sink Broken failed" in caplog.text


@pytest.mark.timeout(5)
@pytest.mark.asyncio
async def test_a_lockstep_clock_moves_only_when_told_and_never_back() -> None:
    clock = LockstepClock(speed=25)
    assert clock() == 0.0
    assert clock.real_s(1.0) == 0.04
    waiting = asyncio.create_task(clock.reached(0.3))
    await asyncio.sleep(0)  # let the waiter start; a loop that turns does not move the clock
    assert clock() == 0.0
    assert not waiting.done()
    clock.advance_to(0.2)
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.advance_to(0.3)
    await asyncio.wait_for(waiting, 1)
    assert clock() == 0.3
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(0.25)
    with pytest.raises(ValueError, match="positive"):
        LockstepClock(speed=0)
