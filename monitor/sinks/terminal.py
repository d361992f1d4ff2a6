"""The live terminal view (rich): theta, heart rate, timers, sensors and alarms.

On a terminal the view redraws in place and log records are printed by rich on the same
console, above the view (:func:`log_handler`), so a log line never tears the view apart.
When stdout is not a terminal (``| tee run.log``, a file) it prints plain lines instead,
flushed as they come: every alarm event, and a status line when the phase changes and every
``STATUS_EVERY_S`` station seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from monitor.core.alarms import AlarmEvent, Priority
from monitor.core.sink import SinkBase
from monitor.core.station_view import StationView, ViewSource

STYLE = {
    Priority.HIGH: "bold white on red",
    Priority.MEDIUM: "black on yellow",
    Priority.LOW: "black on cyan",
}
ICON = {Priority.HIGH: "!!!", Priority.MEDIUM: "!!", Priority.LOW: "i"}


STATUS_EVERY_S = 10.0
"""Plain output: a status line at least this often, in station seconds."""


def log_handler(console: Console) -> logging.Handler:
    """Log records printed by rich on ``console``: above a live view on it, never through it."""
    from rich.logging import RichHandler

    return RichHandler(console=console, show_path=False, markup=False, log_time_format="[%X]")


def _mmss(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _head(v: StationView) -> Table:
    """Angle, phase, heart rate and profile on one line."""
    p = v.profile
    theta = "--.-" if v.theta_deg is None else f"{v.theta_deg:5.1f}"
    head = Table.grid(padding=(0, 3))
    head.add_row(
        Text(f"θ {theta}°", style="bold"),
        Text(f"phase {v.phase.value}"),
        Text("HR --" if v.hr_bpm is None else f"HR {v.hr_bpm:.0f} bpm"),
        Text(f"profile {p.name}"),
    )
    return head


def _timers(v: StationView) -> Table:
    """The hold (or rest) and the session's inverted time against their limits."""
    p = v.profile
    timers = Table.grid(padding=(0, 3))
    if v.hold_s is not None:
        left = p.max_hold_s - v.hold_s
        timers.add_row(
            Text(f"hold {_mmss(v.hold_s)} / {_mmss(p.max_hold_s)}"),
            Text(f"left {_mmss(left)}", style="bold red" if left <= 15 else "bold green"),
        )
    elif v.rest_s is not None:
        timers.add_row(Text(f"rest {_mmss(v.rest_s)} (≥ {_mmss(p.min_rest_s)})"))
    if v.session_inverted_s is not None:
        timers.add_row(
            Text(
                f"session inverted {_mmss(v.session_inverted_s)} / "
                f"{_mmss(p.max_session_inverted_s)}"
            )
        )
    return timers


def _sensors(v: StationView) -> Table:
    """Each link with its sensor's battery, RSSI and malformed count."""
    sensors = Table("sensor", "link", "battery", "RSSI", "malformed", box=None)
    for link in v.links:
        sensor = v.sensor(link.name)
        battery = (
            ""
            if sensor is None or sensor.battery_percent is None
            else f"{sensor.battery_percent} %"
        )
        malformed = "" if sensor is None else str(sensor.malformed)
        rssi = "" if link.rssi is None else f"{link.rssi} dBm"
        sensors.add_row(link.name, link.status, battery, rssi, malformed)
    return sensors


def _alarms(v: StationView) -> Table:
    """The active alarms, highest priority first."""
    alarms = Table("priority", "alarm", "message", "state", box=None)
    for alarm in sorted(v.alarms, key=lambda a: -a.priority):
        state = "acknowledged" if alarm.acknowledged else alarm.state.value
        alarms.add_row(
            Text(
                f" {ICON[alarm.priority]} {alarm.priority.label.upper()} ",
                style=STYLE[alarm.priority],
            ),
            alarm.id,
            alarm.message,
            state,
        )
    return alarms


class TerminalView(SinkBase):
    """Renders the station four times a second from its read model; keeps the last events
    for a log."""

    at_once = True
    """The station's own display: shows an alarm at once, never waits for the disk."""

    def __init__(
        self, station: ViewSource, console: Console | None = None, plain: bool | None = None
    ) -> None:
        self.station = station
        self.console = console or Console()
        self.plain = not self.console.is_terminal if plain is None else plain
        """Plain lines instead of the live view (default: when the console is no terminal)."""
        self.recent: deque[AlarmEvent] = deque(maxlen=8)
        self._pending: deque[AlarmEvent] = deque()

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Remember events for the log panel; in plain mode, print each as a line."""
        self.recent.extend(events)
        if self.plain:  # printed by the view's task, never in the safety loop's step
            self._pending.extend(events)

    def status_line(self, view: StationView | None = None) -> str:
        """The state in one line: time, phase, θ, heart rate, timers, listed alarms."""
        v = self.station.view() if view is None else view
        p = v.profile
        parts = [
            f"t {v.t:7.1f} s",
            f"phase {v.phase.value}",
            "θ --" if v.theta_deg is None else f"θ {round(v.theta_deg, 1) + 0.0:.1f}°",
            "HR --" if v.hr_bpm is None else f"HR {v.hr_bpm:.0f} bpm",
        ]
        if v.hold_s is not None:
            parts.append(f"hold {_mmss(v.hold_s)} / {_mmss(p.max_hold_s)}")
        if v.session_inverted_s is not None:
            parts.append(f"session inverted {_mmss(v.session_inverted_s)}")
        links = ", ".join(f"{link.name} {link.status}" for link in v.links)
        if links:
            parts.append(f"sensors: {links}")
        listed = [a.id for a in v.alarms]
        parts.append(f"alarms: {', '.join(sorted(listed))}" if listed else "no active alarms")
        return " · ".join(parts)

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()

    def render(self) -> RenderableType:
        """The whole view."""
        v = self.station.view()
        log = Table("t (s)", "event", "alarm", box=None)
        for e in self.recent:
            log.add_row(f"{e.t:7.1f}", e.event.value, f"{e.id} ({e.priority.label})")
        return Group(
            Panel(Group(_head(v), _timers(v)), title=f"Spotter · t {v.t:6.1f} s"),
            Panel(
                _alarms(v) if v.alarms else Text("No active alarms", style="green"),
                title="Alarms",
            ),
            Panel(_sensors(v), title="Sensors"),
            Panel(log, title="Recent events"),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh the view (or print plain status lines) until ``stop`` is set."""
        if self.plain:
            await self._run_plain(stop)
            return
        with Live(
            self.render(), console=self.console, refresh_per_second=4, transient=False
        ) as live:
            while not stop.is_set():
                live.update(self.render())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.25)
            live.update(self.render())

    async def _run_plain(self, stop: asyncio.Event) -> None:
        due = float("-inf")
        phase = None
        while not stop.is_set():
            self._print_pending()
            view = self.station.view()
            if view.t >= due or view.phase is not phase:
                self._line(self.status_line(view))
                due = view.t + STATUS_EVERY_S
                phase = view.phase
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)
        self._print_pending()
        self._line(self.status_line())

    def _print_pending(self) -> None:
        while self._pending:
            e = self._pending.popleft()
            self._line(
                f"t {e.t:7.1f} s  {e.priority.label.upper():<6} {e.event.value:<12} "
                f"{e.id}: {e.message}"
            )
