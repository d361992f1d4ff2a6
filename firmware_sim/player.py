"""Plays a record stream through the simulated sensors, in real time (or scaled).

The stream is what ``firmware_sim.generate.records(scenario)`` produces, or what a
``monitor.core.trace.TraceReader`` reads back from a session trace:

- a :class:`~monitor.core.trace.Notification` is sent by the peripheral named by its ``sensor``
  at its ``t`` (a Battery Level payload also becomes the battery's value);
- ``LinkChange(connected=False)`` makes that sensor drop its link (0x13) and stop
  advertising; the matching ``LinkChange(connected=True)`` makes it advertise again;
- a :class:`~monitor.core.trace.UserInput` is no radio event: it goes to the caller's callback;
- :class:`~monitor.core.trace.End` stops the player.

Time starts when the central has subscribed (all sensors' ``subscribed``, or a start signal
the caller gives). Each record is due at an absolute deadline computed from that start, so
delays never accumulate; a record that is late goes out at once, in order. Notifications
sent while no central is subscribed are lost, as they would be over the air.

Lock-step (``lockstep=``, for a station in the same event loop): the player also drives the
station's clock. Station time moves only when the player moves it, in steps of at most 0.1 s
on the replay's grid, each at its wall-clock deadline; before each step the player waits
until the station has received every notification sent to a subscriber (a bounded wait: a
notification the link lost is written off, logged and counted). A stalled machine makes the
player fall behind real time; it never makes station time jump past data not yet received.

``python -m firmware_sim.player --hub PORT SCENARIO`` plays a scenario into a hub.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from firmware_sim.generate import records
from firmware_sim.peripherals import SimPeripheral, peripheral_for
from firmware_sim.radio import open_hub_device
from firmware_sim.scenario import TiltSensorSpec, load_scenario
from monitor.core.sensors import SensorKind
from monitor.core.trace import End, LinkChange, Notification, Record, UserInput

logger = logging.getLogger(__name__)

InputCallback = Callable[[UserInput], None]
STEP_PER_S = 10
"""Lock-step: station time moves on the replay's 0.1 s grid between records."""
BARRIER_TIMEOUT_S = 2.0
"""Lock-step: real seconds to wait for the station to receive what was sent before the
shortfall is written off as lost by the link."""


class Lockstep(Protocol):
    """The station side of a lock-step play: its clock, and what it has received."""

    def advance_to(self, t: float) -> None:
        """Let station time reach ``t`` (seconds since the play started)."""

    def received(self, sensor: str) -> int:
        """Notifications from ``sensor`` the station has taken in so far."""

    def heard(self) -> Awaitable[object]:
        """What completes at the station's next notification or link change (bound now, so
        one that comes before it is awaited is not missed)."""


class PlayerError(ValueError):
    """A record the player cannot play (e.g. from a sensor it has no peripheral for)."""


@dataclass(slots=True)
class PlayStats:
    """What a play sent and what reached a central."""

    delivered: int = 0
    """Notifications a subscribed central was there to receive."""
    lost: int = 0
    """Notifications sent while no central was subscribed."""
    link_changes: int = 0
    inputs: int = 0
    end_t: float | None = None
    """The end marker's ``t``, if the stream had one."""
    written_off: int = 0
    """Lock-step: notifications sent to a subscriber that never reached the station."""


class Player:
    """Plays records through peripherals keyed by the records' sensor names.

    ``speed`` scales time (2.0 plays twice as fast). ``jitter_s`` delays each record by a
    random amount in ``[0, jitter_s]`` wall-clock seconds, drawn from ``random.Random(seed)``;
    it never reorders records. ``on_input`` receives the user inputs. ``lockstep`` makes the
    player drive the station's clock (see the module's docstring).
    """

    def __init__(
        self,
        peripherals: Mapping[str, SimPeripheral],
        *,
        speed: float = 1.0,
        jitter_s: float = 0.0,
        seed: int = 0,
        on_input: InputCallback | None = None,
        lockstep: Lockstep | None = None,
        barrier_timeout_s: float = BARRIER_TIMEOUT_S,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed}")
        if not jitter_s >= 0:
            raise ValueError(f"jitter_s must not be negative, not {jitter_s}")
        self.peripherals = dict(peripherals)
        self.speed = speed
        self.jitter_s = jitter_s
        self._rng = random.Random(seed)
        self._on_input = on_input
        self._lockstep = lockstep
        self.barrier_timeout_s = barrier_timeout_s
        self.stats = PlayStats()
        self._t0: float | None = None
        """The loop time at which the play's time 0 began."""
        self._t = 0.0
        """Lock-step: the station time the player has let pass."""
        self._written_off = dict.fromkeys(self.peripherals, 0)
        self._drops: dict[str, int] = {}
        """Per sensor, the links it had lost when the station last had all it was sent."""

    async def wait_subscribed(self) -> None:
        """Wait until a central has subscribed to every peripheral's stream."""
        await asyncio.gather(*(p.subscribed.wait() for p in self.peripherals.values()))

    async def play(
        self, stream: Iterable[Record], start: Awaitable[object] | None = None
    ) -> PlayStats:
        """Play ``stream``; time 0 is when ``start`` completes (default: all subscribed)."""
        await (start if start is not None else self.wait_subscribed())
        loop = asyncio.get_running_loop()
        t0 = self._t0 = loop.time()
        if self._lockstep is not None:
            self._drops = self._links_lost()
        stats = self.stats
        for record in stream:
            deadline = t0 + record.t / self.speed
            if self.jitter_s:
                deadline += self._rng.uniform(0.0, self.jitter_s)
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._pass_to(record.t)
            if isinstance(record, End):
                stats.end_t = record.t
                break
            await self._apply(record, stats)
        return stats

    async def idle(self, span_s: float) -> None:
        """Let ``span_s`` station seconds pass after the play with nothing sent (forever for
        ``math.inf``): in lock-step the station's clock goes on in steps at ``speed``."""
        if self._lockstep is None:
            await asyncio.sleep(span_s / self.speed)
        else:
            await self._pass_to(self._t + span_s)

    async def _pass_to(self, t: float) -> None:
        """Lock-step: move station time to ``t`` through the grid points before it, each at its
        wall-clock deadline and only once the station has what was sent before it."""
        lockstep = self._lockstep
        if lockstep is None:
            return
        if self._t0 is None:
            raise RuntimeError("the player's clock starts with play()")
        loop = asyncio.get_running_loop()
        for step in _steps(self._t, t):
            delay = self._t0 + step / self.speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._barrier(lockstep)
            lockstep.advance_to(step)
            self._t = step

    async def _barrier(self, lockstep: Lockstep) -> None:
        """Wait until the station has received every notification sent to a subscriber. A
        link that dropped since, or a wait longer than ``barrier_timeout_s``, writes the
        shortfall off (logged, counted in ``stats.written_off``) so a lost one cannot hang
        the play."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.barrier_timeout_s
        while short := self._short(lockstep):
            lost = self._links_lost()
            dropped = [n for n in short if lost[n] > self._drops.get(n, 0)]
            remaining = give_up - loop.time()
            if dropped or remaining <= 0:
                for name in dropped if dropped else short:
                    logger.warning(
                        "t=%.2f: %d notification(s) from %s never reached the station (%s)",
                        self._t,
                        short[name],
                        name,
                        "the link dropped" if dropped else f"{self.barrier_timeout_s} s wait",
                    )
                    self._written_off[name] += short[name]
                    self.stats.written_off += short[name]
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lockstep.heard(), remaining)
        self._drops = self._links_lost()

    def _links_lost(self) -> dict[str, int]:
        return {name: len(p.disconnect_reasons) for name, p in self.peripherals.items()}

    def _short(self, lockstep: Lockstep) -> dict[str, int]:
        """Per sensor, how many notifications sent to a subscriber the station lacks."""
        short = {
            name: p.notified - self._written_off[name] - lockstep.received(name)
            for name, p in self.peripherals.items()
        }
        return {name: n for name, n in short.items() if n > 0}

    async def _apply(self, record: Notification | LinkChange | UserInput, stats: PlayStats) -> None:
        if isinstance(record, UserInput):
            stats.inputs += 1
            if self._on_input is not None:
                self._on_input(record)
            return
        peripheral = self.peripherals.get(record.sensor)
        if peripheral is None:
            known = ", ".join(sorted(self.peripherals)) or "none"
            raise PlayerError(f"t={record.t}: no peripheral for sensor {record.sensor!r} ({known})")
        if isinstance(record, LinkChange):
            stats.link_changes += 1
            logger.debug("t=%s: %s link %s", record.t, record.sensor, record.connected)
            if record.connected:
                await peripheral.go_online()
            else:
                await peripheral.go_offline()
            return
        if await peripheral.play(record.char, record.data):
            stats.delivered += 1
        else:
            stats.lost += 1


def _steps(now: float, t: float) -> Iterator[float]:
    """The grid points strictly between ``now`` and ``t``, then ``t`` (if it is later)."""
    k = math.floor(now * STEP_PER_S) + 1
    while k / STEP_PER_S < t:
        yield k / STEP_PER_S
        k += 1
    if t > now and not math.isinf(t):
        yield t


async def play_on_hub(
    port: int,
    sensors: Mapping[str, SensorKind],
    stream: Iterable[Record],
    *,
    battery_percent: Mapping[str, int] | None = None,
    rate_hz: Mapping[str, int] | None = None,
    speed: float = 1.0,
    on_input: InputCallback | None = None,
) -> PlayStats:
    """Put one simulated sensor per entry of ``sensors`` on the hub at ``port`` and play
    ``stream`` through them once a central has subscribed to all of them."""
    battery_percent = battery_percent or {}
    rate_hz = rate_hz or {}
    async with contextlib.AsyncExitStack() as stack:
        peripherals: dict[str, SimPeripheral] = {}
        for name, kind in sensors.items():
            hub_device = await open_hub_device(port, name)
            stack.push_async_callback(hub_device.close)
            peripheral = peripheral_for(
                kind,
                hub_device.device,
                battery_percent=battery_percent.get(name, 100),
                rate_hz=rate_hz.get(name, 100),
            )
            await peripheral.start()
            stack.push_async_callback(peripheral.go_offline)
            peripherals[name] = peripheral
        return await Player(peripherals, speed=speed, on_input=on_input).play(stream)


async def play_scenario_on_hub(port: int, scenario_name: str, speed: float = 1.0) -> PlayStats:
    """Put a scenario's sensors on the hub at ``port`` and play it once a central subscribed."""
    scenario = load_scenario(scenario_name)
    sensors = {name: SensorKind(spec.kind) for name, spec in scenario.model.sensors.items()}
    battery = {
        name: spec.battery_percent
        for name, spec in scenario.model.sensors.items()
        if spec.battery_percent is not None
    }
    rates = {
        name: max(1, round(spec.rate_hz))
        for name, spec in scenario.model.sensors.items()
        if isinstance(spec, TiltSensorSpec)
    }
    return await play_on_hub(
        port, sensors, records(scenario), battery_percent=battery, rate_hz=rates, speed=speed
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m firmware_sim.player --hub PORT SCENARIO [--speed S]``."""
    parser = argparse.ArgumentParser(prog="python -m firmware_sim.player")
    parser.add_argument("scenario", help="a shipped scenario's name or a scenario file")
    parser.add_argument("--hub", type=int, required=True, help="the hub's TCP port (loopback)")
    parser.add_argument("--speed", type=float, default=1.0, help="time scale (2 = twice as fast)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(play_scenario_on_hub(args.hub, args.scenario, args.speed))


if __name__ == "__main__":
    main()
