"""Every sink implements the one sink interface (monitor/core/sink.py), and the station calls
it directly: ``alarm_events`` by ``at_once``, ``tick`` after every tick, ``close`` at the end."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from dashboard.live import LiveHub
from monitor.core.alarms import AlarmEvent
from monitor.core.sink import Sink, SinkBase
from monitor.core.station_view import CoreViews
from monitor.core.trace import InputKind
from monitor.mqtt.bridge import MqttBridge
from monitor.settings import MqttConfig, PushConfig, SoundConfig
from monitor.sinks.jsonl import JsonLinesSink
from monitor.sinks.push import PushSink
from monitor.sinks.sound import SoundSink
from monitor.sinks.terminal import TerminalView
from monitor.station.service import ServiceNotifier
from monitor.station.simrun import SimRun, _Collect
from monitor.station.station import Station
from monitor.store.station_store import Store
from tests.core.rig import make_core


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Recording(SinkBase):
    """A sink that notes every call the station makes on it."""

    def __init__(self, name: str, at_once: bool, calls: list[str]) -> None:
        self.name = name
        self.at_once = at_once
        self.calls = calls

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        self.calls.append(f"{self.name} events {[e.id for e in events]}")

    def tick(self, t: float) -> None:
        self.calls.append(f"{self.name} tick {t}")

    def close(self) -> None:
        self.calls.append(f"{self.name} close")


def test_every_sink_of_the_station_implements_the_whole_interface(tmp_path: Path) -> None:
    core = make_core()
    views = CoreViews(core)
    store = Store.open(tmp_path / "spotter.db")
    try:
        sinks = [
            JsonLinesSink(io.StringIO()),
            TerminalView(views, Console(file=io.StringIO()), plain=True),
            SoundSink(views, SoundConfig(voice=False, file=tmp_path / "sound.wav"), "home"),
            PushSink(views, PushConfig(), "home"),
            ServiceNotifier({}),
            MqttBridge(MqttConfig(), "home", store),
            LiveHub(views, store, "home"),
            _Collect(SimRun()),
        ]
        for sink in sinks:
            assert isinstance(sink, Sink), type(sink).__name__
            assert isinstance(sink.at_once, bool)
        local = {type(s).__name__ for s in sinks if s.at_once}
        assert local == {
            "JsonLinesSink",
            "TerminalView",
            "SoundSink",
            "ServiceNotifier",
            "_Collect",
        }
        sinks[2].close()
    finally:
        store.close()


def test_a_class_without_tick_or_close_is_not_a_sink() -> None:
    class EventsOnly:
        at_once = True

        def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
            pass

    assert not isinstance(EventsOnly(), Sink)


def test_a_sink_cannot_forget_alarm_events() -> None:
    class Forgetful(SinkBase):
        pass

    with pytest.raises(TypeError, match="alarm_events"):
        Forgetful()  # type: ignore[abstract]


def test_the_station_ticks_every_sink_and_hands_events_by_at_once() -> None:
    clock, calls = FakeClock(), []
    own = Recording("own", True, calls)
    beyond = Recording("beyond", False, calls)
    station = Station(make_core(tilt=False, hr=False), clock, [own, beyond])
    clock.t = 0.5
    station.tick()
    assert calls == ["own tick 0.5", "beyond tick 0.5"]
    calls.clear()
    station.user_input(InputKind.SYMPTOM)  # no journal: every sink gets events at once
    assert calls == ["own events ['user.symptom']", "beyond events ['user.symptom']"]


@pytest.mark.timeout(10)
@pytest.mark.asyncio
async def test_the_station_closes_every_sink_once_even_past_a_failing_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    class Stuck(Recording):
        def close(self) -> None:
            super().close()
            raise OSError("the audio device will not close")

    clock = FakeClock()
    first, last = Stuck("first", True, calls), Recording("last", False, calls)
    station = Station(make_core(tilt=False, hr=False), clock, [first, last])
    stop = asyncio.Event()
    stop.set()
    with caplog.at_level("ERROR"), pytest.raises(OSError, match="will not close"):
        await station.run([], stop)
    assert [c for c in calls if c.endswith("close")] == ["first close", "last close"]
    assert "sink Stuck failed to close" in caplog.text
    # the last tick reached both before they closed
    assert calls.index("first tick 0.0") < calls.index("first close")
    assert calls.index("last tick 0.0") < calls.index("last close")
