"""The flight recorder: every notification, link change and input of a run, as a trace.

Lines are written as they happen and flushed to disk every second (and at exit), so a crash
or a power cut loses at most the last second.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TextIO

from monitor.sensors import SensorSpec
from monitor.trace import InputKind, TraceHeader, TraceWriter


class TraceRecorder:
    """Appends one run's records to a trace file."""

    def __init__(
        self, path: Path, station: str, sensors: dict[str, SensorSpec], started_at: datetime
    ) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = open(path, "x", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._writer = TraceWriter(self._file, TraceHeader(dict(sensors), station, started_at))
        self.last_t = 0.0

    @classmethod
    def in_folder(
        cls, folder: Path, station: str, sensors: dict[str, SensorSpec], started_at: datetime
    ) -> TraceRecorder:
        """A new trace file in ``folder``, named after the station and the start time."""
        stamp = started_at.strftime("%Y%m%dT%H%M%S")
        path = folder / f"{station}-{stamp}.jsonl"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{station}-{stamp}-{n}.jsonl"
        return cls(path, station, sensors, started_at)

    def notification(self, t: float, sensor: str, char: str, data: bytes) -> None:
        """Record bytes from a sensor."""
        self.last_t = t
        self._writer.notification(t, sensor, char, data)

    def link(self, t: float, sensor: str, connected: bool) -> None:
        """Record a link change."""
        self.last_t = t
        self._writer.link(t, sensor, connected)

    def user_input(
        self, t: float, kind: InputKind, alarm: str | None = None, by: str | None = None
    ) -> None:
        """Record a user input."""
        self.last_t = t
        self._writer.user_input(t, kind, alarm, by)

    def flush(self) -> None:
        """Push what was written to the disk."""
        self._file.flush()

    def close(self, t: float | None = None) -> None:
        """Write the end marker and close the file."""
        if self._file.closed:
            return
        self._writer.end(self.last_t if t is None else max(t, self.last_t))
        self._file.close()
