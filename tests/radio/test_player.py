"""The player: scenarios and traces played through peripherals, in order and on time."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from bleak import BleakGATTCharacteristic

from firmware_sim.generate import records, write_trace
from firmware_sim.player import Player, PlayerError
from firmware_sim.scenario import Scenario, parse_scenario
from monitor.core import gatt
from monitor.core.sensors import SensorKind
from monitor.core.trace import End, InputKind, LinkChange, Notification, TraceReader, UserInput

pytestmark = [pytest.mark.radio, pytest.mark.asyncio, pytest.mark.timeout(30)]

WAIT_S = 5.0
TOLERANCE_S = 0.2
"""Generous: the tests check behaviour, not the speed of a loaded CI machine."""


def scenario(**overrides: Any) -> Scenario:
    """A short scenario: a 10 Hz Spotter tilt sensor and a 4 Hz strap for 1.2 s."""
    data: dict[str, Any] = {
        "name": "radio-test",
        "duration_s": 1.2,
        "theta": [[0, 0], [1.2, 12]],
        "hr": [[0, 70], [1.2, 82]],
        "sensors": {
            "tilt": {"kind": "spotter_tilt", "rate_hz": 10, "battery_percent": 90},
            "hr": {"kind": "heart_rate", "interval_s": 0.25, "battery_percent": 80},
        },
        "inputs": [{"t": 0.3, "input": "symptom"}],
    }
    data.update(overrides)
    return parse_scenario(data, "radio-test")


def stream_of(played: Scenario, sensor: str) -> list[Notification]:
    kind = SensorKind(played.model.sensors[sensor].kind)
    return [
        r
        for r in records(played)
        if isinstance(r, Notification) and r.sensor == sensor and r.char == kind.stream_uuid
    ]


async def test_scenario_plays_byte_exact_in_order_and_on_time(make_sensor, find, connect):
    played = scenario()
    sensors = {
        "tilt": await make_sensor(SensorKind.SPOTTER_TILT),
        "hr": await make_sensor(SensorKind.HEART_RATE),
    }
    loop = asyncio.get_running_loop()
    received: dict[str, list[tuple[float, bytes]]] = {"tilt": [], "hr": []}
    for name, sensor in sensors.items():
        client = await connect(await find(sensor.kind))

        def on_notify(_c: BleakGATTCharacteristic, data: bytearray, name: str = name) -> None:
            received[name].append((loop.time(), bytes(data)))

        await client.start_notify(sensor.stream_uuid, on_notify)
    inputs: list[tuple[float, UserInput]] = []
    start = asyncio.Event()
    player = Player(sensors, on_input=lambda i: inputs.append((loop.time(), i)))
    playing = asyncio.create_task(player.play(records(played), start=start.wait()))
    await asyncio.wait_for(player.wait_subscribed(), WAIT_S)
    t0 = loop.time()
    start.set()
    stats = await asyncio.wait_for(playing, WAIT_S)

    for name in sensors:
        expected = stream_of(played, name)
        assert [data for _t, data in received[name]] == [r.data for r in expected]
        for (at, _data), record in zip(received[name], expected, strict=True):
            assert at - t0 == pytest.approx(record.t, abs=TOLERANCE_S)
    assert stats.delivered == len(stream_of(played, "tilt")) + len(stream_of(played, "hr"))
    assert stats.lost == 2  # the battery values at t=0: nobody subscribed to them
    assert stats.end_t == 1.2
    assert [i.input for _t, i in inputs] == [InputKind.SYMPTOM]
    assert inputs[0][0] - t0 == pytest.approx(0.3, abs=TOLERANCE_S)
    assert sensors["tilt"].battery_percent == 90
    assert sensors["hr"].battery_percent == 80


async def test_link_changes_drop_the_link_and_silence_advertising(make_sensor, find, connect):
    played = scenario(
        faults=[{"kind": "disconnect", "sensor": "tilt", "start": 0.35, "end": 0.65}],
        sensors={"tilt": {"kind": "spotter_tilt", "rate_hz": 10}},
        inputs=[],
    )
    tilt = await make_sensor(SensorKind.SPOTTER_TILT)
    loop = asyncio.get_running_loop()
    dropped = asyncio.Event()
    client = await connect(
        await find(SensorKind.SPOTTER_TILT), disconnected_callback=lambda _c: dropped.set()
    )
    before: list[bytes] = []
    await client.start_notify(gatt.TILT_MEASUREMENT, lambda _c, d: before.append(bytes(d)))
    start = asyncio.Event()
    playing = asyncio.create_task(Player({"tilt": tilt}).play(records(played), start.wait()))
    await asyncio.wait_for(tilt.subscribed.wait(), WAIT_S)
    t0 = loop.time()
    start.set()

    await asyncio.wait_for(dropped.wait(), WAIT_S)
    assert loop.time() - t0 == pytest.approx(0.35, abs=TOLERANCE_S)
    back = await find(SensorKind.SPOTTER_TILT)  # only once it advertises again
    assert loop.time() - t0 >= 0.65 - 0.05
    client = await connect(back)
    after: list[bytes] = []
    await client.start_notify(gatt.TILT_MEASUREMENT, lambda _c, d: after.append(bytes(d)))
    stats = await asyncio.wait_for(playing, WAIT_S)

    expected = [r.data for r in stream_of(played, "tilt")]
    assert before == expected[: len(before)]
    assert len(before) == 4  # t = 0.0 .. 0.3
    assert after
    assert after == expected[-len(after) :]
    assert stats.link_changes == 3


class FakePeripheral:
    """Stands in for a sensor: records when the player asked it to do what."""

    def __init__(self) -> None:
        self.subscribed = asyncio.Event()
        self.subscribed.set()
        self.log: list[tuple[float, str, bytes]] = []

    def _note(self, what: str, data: bytes = b"") -> None:
        self.log.append((asyncio.get_running_loop().time(), what, data))

    async def play(self, char: str, data: bytes) -> bool:
        self._note(char, data)
        return True

    async def go_online(self) -> None:
        self._note("online")

    async def go_offline(self) -> None:
        self._note("offline")


def trace_records(played: Scenario) -> list[Any]:
    text = io.StringIO()
    write_trace(played, text)
    text.seek(0)
    return list(TraceReader(text, "radio-test.jsonl"))


@pytest.mark.parametrize("source", ["generator", "trace"])
async def test_speed_scales_time_and_jitter_keeps_order(source):
    played = scenario()
    stream = list(records(played)) if source == "generator" else trace_records(played)
    fakes = {"tilt": FakePeripheral(), "hr": FakePeripheral()}
    player = Player(fakes, speed=4.0, jitter_s=0.02, seed=7)  # type: ignore[arg-type]
    t0 = asyncio.get_running_loop().time()
    stats = await asyncio.wait_for(player.play(stream), WAIT_S)

    for name, fake in fakes.items():
        mine = [r for r in stream if isinstance(r, Notification | LinkChange) and r.sensor == name]
        assert [what for _t, what, _d in fake.log] == [
            r.char if isinstance(r, Notification) else "online" for r in mine
        ]
        assert [d for _t, _w, d in fake.log] == [
            r.data if isinstance(r, Notification) else b"" for r in mine
        ]
        times = [t - t0 for t, _w, _d in fake.log]
        assert times == sorted(times)
        for at, record in zip(times, mine, strict=True):
            assert record.t / 4.0 - 0.01 <= at <= record.t / 4.0 + 0.02 + TOLERANCE_S
    assert stats.inputs == 1
    assert stats.end_t == 1.2


async def test_end_stops_the_player_and_unknown_sensors_are_refused():
    fake = FakePeripheral()
    stream = [
        Notification(0.0, "tilt", gatt.TILT_MEASUREMENT, b"\x01"),
        End(0.01),
        Notification(0.02, "tilt", gatt.TILT_MEASUREMENT, b"\x02"),
    ]
    stats = await Player({"tilt": fake}).play(stream)  # type: ignore[dict-item]
    assert [d for _t, _w, d in fake.log] == [b"\x01"]
    assert stats.end_t == 0.01

    with pytest.raises(PlayerError, match="'hr'"):
        await Player({"tilt": fake}).play(  # type: ignore[dict-item]
            [Notification(0.0, "hr", gatt.HEART_RATE_MEASUREMENT, b"\x00\x40")]
        )


async def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="speed"):
        Player({}, speed=0)
    with pytest.raises(ValueError, match="jitter"):
        Player({}, jitter_s=-1)


# -- lock-step: the player drives the station's clock ------------------------------------


class FakeStation:
    """The station side of a lock-step play (what ``monitor.station.simrun`` gives the player): a
    clock the player moves, and the notifications that reached the station."""

    def __init__(self, sensors: list[str]) -> None:
        self.t = 0.0
        self.steps: list[float] = []
        self.got = dict.fromkeys(sensors, 0)
        self.waiting = asyncio.Event()
        """Set when the player waits for the station."""
        self._heard = asyncio.Event()

    def advance_to(self, t: float) -> None:
        assert t >= self.t
        self.steps.append(t)
        self.t = t

    def received(self, sensor: str) -> int:
        return self.got[sensor]

    def heard(self) -> Any:
        self.waiting.set()
        return self._heard.wait()

    def wake(self, sensor: str | None = None) -> None:
        """A notification from ``sensor`` arrived (or, with none, a link changed)."""
        if sensor is not None:
            self.got[sensor] += 1
        self._heard.set()
        self._heard = asyncio.Event()


class CountingPeripheral(FakePeripheral):
    """Notes the station time of each send and counts them as sent to a subscriber; with
    ``deliver`` the station gets each one a moment later, as over the radio."""

    def __init__(self, name: str, station: FakeStation, *, deliver: bool) -> None:
        super().__init__()
        self.name = name
        self.station = station
        self.deliver = deliver
        self.notified = 0
        self.disconnect_reasons: list[int] = []
        self.at: list[float] = []

    async def play(self, char: str, data: bytes) -> bool:
        self.at.append(self.station.t)
        self.notified += 1
        if self.deliver:
            asyncio.get_running_loop().call_soon(self.station.wake, self.name)
        return True


async def test_lockstep_stamps_every_record_at_its_time_and_steps_the_grid_between() -> None:
    played = scenario()
    stream = list(records(played))
    station = FakeStation(["tilt", "hr"])
    fakes = {n: CountingPeripheral(n, station, deliver=True) for n in ("tilt", "hr")}
    inputs: list[float] = []
    player = Player(
        fakes,  # type: ignore[arg-type]
        speed=20.0,
        lockstep=station,
        on_input=lambda _i: inputs.append(station.t),
    )
    stats = await asyncio.wait_for(player.play(stream), WAIT_S)

    for name, fake in fakes.items():
        assert fake.at == [r.t for r in stream if isinstance(r, Notification) and r.sensor == name]
    assert inputs == [0.3]
    assert station.steps == sorted(set(station.steps))
    assert all(
        b - a <= 0.1 + 1e-9 for a, b in zip([0.0, *station.steps], station.steps, strict=False)
    )
    assert {r.t for r in stream} - {0.0} <= set(station.steps)
    assert station.steps[-1] == stats.end_t == 1.2
    assert stats.written_off == 0

    await asyncio.wait_for(player.idle(0.25), WAIT_S)  # the grace after a run: time goes on
    assert station.steps[-3:] == [1.3, 1.4, 1.45]


def two_notes() -> list[Any]:
    return [
        Notification(0.0, "tilt", gatt.TILT_MEASUREMENT, b"\x01"),
        Notification(0.25, "tilt", gatt.TILT_MEASUREMENT, b"\x02"),
        End(0.25),
    ]


async def test_lockstep_holds_station_time_until_the_station_has_what_was_sent() -> None:
    station = FakeStation(["tilt"])
    fake = CountingPeripheral("tilt", station, deliver=False)
    player = Player({"tilt": fake}, speed=50.0, lockstep=station, barrier_timeout_s=1e6)  # type: ignore[dict-item]
    playing = asyncio.create_task(player.play(two_notes()))
    await asyncio.wait_for(station.waiting.wait(), WAIT_S)
    assert station.steps == []  # the machine may stall for ever: station time waits
    assert not playing.done()
    station.wake("tilt")
    stats = await asyncio.wait_for(playing, WAIT_S)
    assert station.steps == [0.1, 0.2, 0.25]
    assert fake.at == [0.0, 0.25]
    assert stats.written_off == 0


async def test_lockstep_writes_off_what_a_dropped_link_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = FakeStation(["tilt"])
    fake = CountingPeripheral("tilt", station, deliver=False)
    player = Player({"tilt": fake}, speed=50.0, lockstep=station, barrier_timeout_s=1e6)  # type: ignore[dict-item]
    playing = asyncio.create_task(player.play(two_notes()))
    await asyncio.wait_for(station.waiting.wait(), WAIT_S)
    fake.disconnect_reasons.append(0x08)
    station.wake()  # the station saw the link go down
    stats = await asyncio.wait_for(playing, WAIT_S)
    assert stats.written_off == 1
    assert station.steps == [0.1, 0.2, 0.25]
    assert "notification(s) from tilt never reached the station (the link dropped)" in caplog.text


async def test_lockstep_bounds_the_wait_for_a_lost_notification(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = FakeStation(["tilt"])
    fake = CountingPeripheral("tilt", station, deliver=False)
    player = Player({"tilt": fake}, speed=50.0, lockstep=station, barrier_timeout_s=0.01)  # type: ignore[dict-item]
    stats = await asyncio.wait_for(player.play(two_notes()), WAIT_S)
    assert stats.written_off == 1
    assert station.steps == [0.1, 0.2, 0.25]
    assert "never reached the station (0.01 s wait)" in caplog.text
