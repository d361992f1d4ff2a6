"""The station's read model (monitor/core/station_view.py) reflects the station: alarms raised
and acknowledged, sensors lost, problems, the session; and it is a snapshot, read-only."""

from __future__ import annotations

import pytest

from monitor.ble.backend import BleBackend
from monitor.ble.link import LinkStatus, SensorLink
from monitor.core import gatt
from monitor.core.alarms import AlarmState, Priority
from monitor.core.session import Phase
from monitor.core.trace import InputKind
from monitor.settings import BleConfig, SensorConfig
from monitor.station.station import Station
from monitor.station.status import station_state
from tests.core.rig import make_core, tilt_payload


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def station_with_links() -> tuple[Station, FakeClock]:
    clock = FakeClock()
    station = Station(make_core(), clock)
    ble, backend = BleConfig(), BleBackend()
    station.links = [
        SensorLink("tilt", SensorConfig(kind="spotter_tilt"), ble, backend, station),
        SensorLink("hr", SensorConfig(kind="heart_rate"), ble, backend, station),
    ]
    return station, clock


def test_an_alarm_raised_is_in_the_view_and_a_silence_and_acknowledge_show() -> None:
    station, clock = station_with_links()
    assert station.view().alarms == ()
    clock.t = 1.0
    station.user_input(InputKind.SYMPTOM)
    view = station.view()
    alarm = view.alarm("user.symptom")
    assert alarm is not None
    listed = station.core.alarms.alarms["user.symptom"]  # what the alarm manager holds
    assert (alarm.priority, alarm.value, alarm.raised_at) == (
        listed.priority,
        listed.value,
        listed.raised_at,
    )
    assert alarm.priority is Priority.MEDIUM  # upright: a call for help, not yet high
    assert alarm.state is AlarmState.ACTIVE
    assert alarm.sounding(view.t)
    assert view.sounding(view.t) == [alarm]
    assert alarm.message  # the rule's words, as the status JSON and push show them
    clock.t = 2.0
    station.user_input(InputKind.SILENCE, "user.symptom", "anna")
    silenced = station.view().alarm("user.symptom")
    assert silenced is not None
    assert silenced.silenced_until > 2.0
    assert station.view().sounding(2.0) == []
    clock.t = 3.0
    station.user_input(InputKind.ACKNOWLEDGE, "user.symptom", "anna")
    assert station.view().alarm("user.symptom") is None  # its condition had ended: resolved
    assert "user.symptom" not in station.core.alarms.alarms
    assert view.alarm("user.symptom") == alarm  # the earlier view did not change


def test_a_lost_sensor_shows_as_lost_in_the_view() -> None:
    station, clock = station_with_links()
    clock.t = 0.1
    station.on_link("tilt", True)
    for k in range(3):
        clock.t = 0.2 + 0.02 * k
        station.on_data("tilt", gatt.TILT_MEASUREMENT, tilt_payload(k, 0.0))
    station.links[0].state.status = LinkStatus.STREAMING
    view = station.view()
    tilt = view.sensor("tilt")
    assert tilt is not None
    assert tilt.connected is True
    assert tilt.fresh
    assert tilt.link is not None
    assert tilt.link.status == "streaming"
    assert view.theta_fresh_deg == 0.0

    station.links[0].state.status = LinkStatus.LOST
    clock.t = 1.0
    station.on_link("tilt", False)
    clock.t = 3.0  # past the beginner's tilt lost delay: silence is the truth
    station.tick()
    view = station.view()
    tilt = view.sensor("tilt")
    assert tilt is not None
    assert tilt.connected is False
    assert not tilt.fresh
    assert tilt.link is not None
    assert tilt.link.status == "lost"
    assert [link.status for link in view.links] == ["lost", "searching"]
    assert view.theta_fresh_deg is None
    assert view.theta_deg == 0.0  # the last θ is still known, only not shown as live
    state = station_state(station)
    assert state["sensors"][0]["link"] == "lost"
    assert state["theta_deg"] is None


def test_problems_session_and_tick_time_are_in_the_view_as_a_read_only_snapshot() -> None:
    station, clock = station_with_links()
    station.problems["store"] = "disk full"
    clock.t = 0.5
    station.user_input(InputKind.SESSION_START)
    clock.t = 0.7
    station.tick()
    view = station.view()
    assert dict(view.problems) == {"store": "disk full"}
    assert view.in_session
    assert view.phase is Phase.UPRIGHT
    assert view.last_tick == 0.7
    assert view.t == 0.7
    station.problems.clear()
    assert dict(view.problems) == {"store": "disk full"}  # a snapshot
    assert dict(station.view().problems) == {}
    with pytest.raises(TypeError):
        view.problems["sink"] = "x"  # type: ignore[index]
