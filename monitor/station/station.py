"""The station: sensors -> pure core -> sinks, as asyncio tasks. The imperative shell.

Every notification is stamped with the station clock on arrival, written to the flight
recorder and fed to the core at once; a ticker advances the core between readings so
time-based alarms fire even when every sensor is silent.

The publish order (SPEC 7): the station's own sinks (:attr:`Sink.at_once`: sound, terminal
view, JSON lines, sd_notify) get an alarm event in the same step the core produced it; the
event is queued for the store's writer thread, and everything that carries it beyond the
station (dashboard, MQTT, push: every other sink) gets it only once it is committed. The
safety loop never waits on the disk: a store that fails or falls behind is a station problem.

Every sink implements the whole :class:`~monitor.core.sink.Sink` interface (``at_once``,
``alarm_events``, ``tick``, ``close``) and reads the station through :meth:`Station.view`,
the read model (:class:`~monitor.core.station_view.StationView`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from monitor.ble.link import SensorLink
from monitor.core.alarms import AlarmEvent, Want
from monitor.core.engine import SafetyCore
from monitor.core.ratewatch import RateWatch
from monitor.core.replay import TICK_S, TICKS_PER_S, catch_up
from monitor.core.sink import Sink
from monitor.core.station_view import LinkView, StationView, view_of
from monitor.core.trace import InputKind
from monitor.station.journal import Journal
from monitor.station.recorder import TraceRecorder
from monitor.store.database import StoreError
from monitor.store.writer import BEHIND_AFTER_S, STORE_LAG, WRITER_PARTS
from monitor.supervise import cancel_and_wait, close_all

__all__ = ["LockstepClock", "Sink", "Station", "StationClock"]

log = logging.getLogger(__name__)
FLUSH_EVERY_S = 1.0
RESTART_AFTER_S = 1.0


class StationClock:
    """Seconds since the station started, on the event loop's monotonic clock.

    ``speed`` > 1 runs the station's notion of time faster than real time: only simulations
    use it (to play a long scenario in a short test); the BLE layer's timeouts stay real.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self._loop = asyncio.get_running_loop()
        self.origin = self._loop.time()
        self.speed = speed

    def __call__(self) -> float:
        return (self._loop.time() - self.origin) * self.speed

    def real_s(self, station_s: float) -> float:
        """Real seconds for a span of station seconds."""
        return station_s / self.speed


class LockstepClock:
    """Station seconds as a simulation's player sets them (virtual time), for in-process runs.

    Time moves only when the player calls :meth:`advance_to`: the player paces itself on the
    wall clock at ``speed``, but when the machine stalls it falls behind real time instead of
    station time jumping ahead of the data, so a loaded machine cannot make a sensor look
    silent or hold an angle past a limit. ``speed`` only tells real-time helpers (the ticker's
    period) how fast station time is meant to pass.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._t = 0.0
        self._moved = asyncio.Event()

    def __call__(self) -> float:
        return self._t

    def real_s(self, station_s: float) -> float:
        """Real seconds a span of station seconds is meant to take."""
        return station_s / self.speed

    def advance_to(self, t: float) -> None:
        """Let station time reach ``t``; time never goes back."""
        if t < self._t:
            raise ValueError(f"station time cannot go back from {self._t} to {t}")
        if t > self._t:
            self._t = t
            self._moved.set()
            self._moved = asyncio.Event()

    async def reached(self, t: float) -> None:
        """Return once station time is at least ``t``."""
        while self._t < t:
            await self._moved.wait()


class Station:
    """One table's daemon: the core, its inputs and its outputs."""

    def __init__(
        self,
        core: SafetyCore,
        clock: Callable[[], float],
        sinks: Sequence[Sink] = (),
        recorder: TraceRecorder | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.core = core
        self.clock = clock
        self.sinks = list(sinks)
        self.recorder = recorder
        self.journal = journal
        self.problems: dict[str, str] = {}
        """Station problems for status views (e.g. a failing store), by part."""
        self.links: list[SensorLink] = []
        self.last_tick = 0.0
        self.tilt_rate = RateWatch()
        """The tilt sensor's measured sample rate: too low for impact detection is a problem."""
        self._in_flight = 0
        """Alarm-event commits queued and not yet decided."""
        self._deferred_tick: float | None = None
        """A tick for the sinks beyond the station, held while events are in flight."""

    # -- the read model --------------------------------------------------------------------

    def view(self) -> StationView:
        """The station's state now, for the sinks and status views (the read model): the
        core's, with the sensors' links, the station's problems and the session's user."""
        journal = self.journal
        links = [
            LinkView(link.name, link.state.status.value, link.state.rssi, link.state.last_error)
            for link in self.links
        ]
        return view_of(
            self.core,
            links=links,
            problems=self.problems,
            tilt_rate_hz=self.tilt_rate.rate_hz,
            user=None if journal is None else journal.session_user,
            session_started=None if journal is None else journal.session_started_at,
            last_tick=self.last_tick,
        )

    # -- inputs (LinkListener and the user) -------------------------------------------------

    def _now(self) -> float:
        """The time of an input: with the trace's precision (0.1 ms), so the core sees exactly
        the times the flight recorder writes; never going back, even if two callbacks race.
        If the loop was held up, time is first let pass on the replay's grid, so an alarm the
        gap calls for is raised (late, but raised), exactly as replaying the trace would."""
        t = round(self.clock(), 4)
        if t <= self.core.t:
            return self.core.t
        self._catch_up(t)
        return t

    def _catch_up(self, t: float) -> None:
        for events in catch_up(self.core, self.core.t, t):
            self._publish(events)

    def on_data(self, sensor: str, char: str, data: bytes) -> None:
        """A sensor's bytes: record, then feed the core, then publish."""
        t = self._now()
        if self.recorder is not None:
            self.recorder.notification(t, sensor, char, data)
        self._publish(self.core.notification(t, sensor, char, data))

    def on_link(self, sensor: str, connected: bool) -> None:
        """A sensor's link changed."""
        t = self._now()
        if self.recorder is not None:
            self.recorder.link(t, sensor, connected)
        self._publish(self.core.link(t, sensor, connected))
        if sensor == self.core.tilt_name:
            self.tilt_rate.link(connected, self.core.stats.sensors[sensor].samples)

    def user_input(self, kind: InputKind, alarm: str | None = None, by: str | None = None) -> None:
        """The user or a watcher did something."""
        t = self._now()
        if self.recorder is not None:
            self.recorder.user_input(t, kind, alarm, by)
        journal = self.journal
        if journal is not None:
            self._guard(lambda _: journal.user_input(kind, alarm, by), None)
        self._publish(self.core.user_input(t, kind, alarm, by))

    def condition(self, alarm_id: str, want: Want | None) -> None:
        """A condition the shell sees (``link.lost``): into the core, then published."""
        self._publish(self.core.external_condition(self._now(), alarm_id, want))

    def tick(self) -> None:
        """Let time pass in the core, then give the ticking sinks the heartbeat.

        The core is advanced to the latest 0.1 s mark of the clock, the grid replay steps on,
        so a live run and the replay of its trace judge time-based alarms at the same moments.
        """
        mark = math.floor(self.clock() * TICKS_PER_S) / TICKS_PER_S
        if mark > self.core.t:
            self._catch_up(mark)
        t = mark if mark > self.core.t else self.core.t
        self.last_tick = t
        self._publish(self.core.advance(t))
        self._watch_rate(t)
        if self.journal is not None:
            self._guard(self.journal.tick, t)
        if self.recorder is not None:
            self.recorder.tick(t)
        self._store_problems()
        for sink in self.sinks:
            if sink.at_once:
                self._deliver(sink, sink.tick, t)
        if self._in_flight:
            self._deferred_tick = t  # an alarm's commit is pending: it goes out first
        else:
            self._beat_beyond(t)

    def _beat_beyond(self, t: float) -> None:
        for sink in self.sinks:
            if not sink.at_once:
                self._deliver(sink, sink.tick, t)

    def _watch_rate(self, t: float) -> None:
        """Measure the tilt rate; a rate too low for impact detection is a station problem
        (status, dashboard, service STATUS), logged once when it appears."""
        tilt = self.core.tilt_name
        if tilt is None:
            return
        self.tilt_rate.update(t, self.core.stats.sensors[tilt].samples)
        problem = self.tilt_rate.problem()
        if problem is None:
            self.problems.pop("impact detection", None)
        elif self.problems.get("impact detection") != problem:
            if "impact detection" not in self.problems:
                log.warning("sensor %s: %s", tilt, problem)
            self.problems["impact detection"] = problem

    def _publish(self, events: list[AlarmEvent]) -> None:
        """After every core call: sessions that began are opened in the store; the station's
        own sinks get the events now; the events are queued for commit, and the sinks beyond
        the station get them once committed; sessions that ended are closed."""
        core = self.core
        changes = core.drain_phase_changes() if core.session.changes else []
        journal = self.journal
        if changes and journal is not None:
            self._guard(journal.opened, changes)
        if events:
            for sink in self.sinks:
                if sink.at_once or journal is None:
                    self._deliver(sink, sink.alarm_events, events)
            if journal is not None:
                self._in_flight += 1
                journal.commit(
                    events,
                    lambda _seqs: self._committed(events),
                    lambda _error: self._committed(events),
                )
        if changes and journal is not None:
            self._guard(journal.closed, changes)

    def _committed(self, events: list[AlarmEvent]) -> None:
        """Events are decided (on disk; or failed, which the store's problem shows): the sinks
        beyond the station get them. The dashboard and MQTT send from the store, so a failed
        commit sends nothing there; push still gets its call, so a full disk does not keep a
        high alarm from the spotter's phone. Then a tick held back meanwhile goes out."""
        self._in_flight -= 1
        for sink in self.sinks:
            if not sink.at_once:
                self._deliver(sink, sink.alarm_events, events)
        if not self._in_flight and self._deferred_tick is not None:
            t, self._deferred_tick = self._deferred_tick, None
            self._beat_beyond(t)
        self._store_problems()

    def _deliver(self, sink: Sink, call: Callable[[Any], object], arg: Any) -> None:
        """One broken sink must not keep the alarm from the others (a failing terminal view
        must not silence the sound or the push): its failure is logged with the traceback and
        reported as a station problem, and the other sinks still get the events."""
        part = f"sink {type(sink).__name__}"
        try:
            call(arg)
        except Exception as exc:
            if part not in self.problems:
                log.exception("%s failed; the other sinks go on", part)
            self.problems[part] = f"{type(exc).__name__}: {exc}"
        else:
            self.problems.pop(part, None)

    def _guard(self, write: Callable[[Any], object], arg: Any) -> None:
        """A store that fails must not silence the station: the alarm still sounds and shows
        (the station is the primary alarm source), and the failure is logged and reported.
        (Only an inline writer raises here, having logged it and kept it in its ``failures``;
        the writer thread reports on the loop instead.)"""
        with contextlib.suppress(StoreError):  # logged and shown: see _store_problems
            write(arg)
        self._store_problems()

    def _store_problems(self) -> None:
        """The store's and the trace's failures, and a writer falling behind, as problems."""
        if self.journal is None:
            return
        writer = self.journal.writer
        for part in WRITER_PARTS:
            failure = writer.failures.get(part)
            if failure is None:
                self.problems.pop(part, None)
            else:
                self.problems[part] = failure
        lag_s = writer.lag_s()
        if lag_s > BEHIND_AFTER_S:
            if STORE_LAG not in self.problems:
                log.error("store falling behind: %.1f s (the station alarms on regardless)", lag_s)
            self.problems[STORE_LAG] = f"store falling behind: {lag_s:.1f} s"
        elif lag_s > BEHIND_AFTER_S / 2 and STORE_LAG in self.problems:
            self.problems[STORE_LAG] = f"store falling behind: {lag_s:.1f} s"  # not caught up yet
        elif self.problems.pop(STORE_LAG, None) is not None:
            log.warning("store caught up")

    # -- tasks -----------------------------------------------------------------------------

    async def _ticker(self, real_tick_s: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        next_flush = next_at + FLUSH_EVERY_S
        while True:
            next_at += real_tick_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self.tick()
            if self.recorder is not None and loop.time() >= next_flush:
                self.recorder.flush()
                next_flush += FLUSH_EVERY_S

    @staticmethod
    async def _supervise(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a task forever; a crash is logged loudly with its traceback and restarted."""
        while True:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s crashed; restarting in %.0f s", name, RESTART_AFTER_S)
            await asyncio.sleep(RESTART_AFTER_S)

    async def run(
        self, links: Sequence[SensorLink], stop: asyncio.Event, real_tick_s: float = TICK_S
    ) -> None:
        """Stream every sensor into the core until ``stop`` is set."""
        self.links = list(links)
        tasks = [asyncio.create_task(self._ticker(real_tick_s), name="ticker")]
        tasks += [
            asyncio.create_task(self._supervise(f"sensor {link.name}", link.run), name=link.name)
            for link in links
        ]
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopping, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            if tasks[0] in done:
                tasks[0].result()  # the safety loop itself failed: let it propagate
        finally:
            try:  # the safety loop's own failure is raised again, once every task has ended
                await cancel_and_wait(*tasks, stopping, errors="raise")
            finally:
                await self._wind_down()

    async def _wind_down(self) -> None:
        """After the tasks ended: a last tick, close the recording, let the last events reach
        every sink, then close the sinks."""
        self.tick()
        if self.recorder is not None:
            self.recorder.close(self._now())
        if self.journal is not None:  # the last events reach every sink before it closes
            await self.journal.writer.flush()
        self._store_problems()
        # Every sink closes even when one fails (the push worker must stop even if the sound
        # device will not close); each failure is logged, the first raised after.
        await close_all(
            ((f"sink {type(sink).__name__}", sink.close) for sink in list(self.sinks)),
            log_as="%s failed to close",
        )
