"""The flight recorder: every notification, link change and input, as session traces.

Each session gets its own trace file. It opens when the session starts and begins with a
pre-roll of the records of the preceding 75 s (so replaying it reproduces the heart-rate
history and the filters the live core had); it stays open after the session ends until the
next session starts or the station has been idle for 10 minutes. Lines are kept in memory
and handed to the disk every second (and at exit), so a crash or a power cut loses at most
the last second; on a running station the store's writer thread does the file work (open,
write, close) in order with the store's writes, so the safety loop never waits on the disk.
Files are created 0600 whatever the umask (they are health data). Times are
the station clock's throughout, so ``started_at + t`` is the wall time in every file. Files
older than the retention period are deleted when a new one opens.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import TextIO

from monitor.core.sensors import SensorSpec
from monitor.core.trace import (
    End,
    InputKind,
    LinkChange,
    Notification,
    Record,
    TraceHeader,
    TraceWriter,
    UserInput,
)
from monitor.store.writer import FileJob, Writer

log = logging.getLogger(__name__)
PREROLL_S = 75.0
IDLE_CLOSE_S = 600.0
TRACE_SUFFIX = ".jsonl"


class TraceRecorder:
    """Keeps a pre-roll ring and the current session's trace file."""

    def __init__(
        self,
        folder: Path,
        station: str,
        sensors: dict[str, SensorSpec],
        started_at: datetime,
        *,
        retention_days: float | None = None,
        preroll_s: float = PREROLL_S,
        idle_close_s: float = IDLE_CLOSE_S,
        writer: Writer | None = None,
    ) -> None:
        self.writer = writer
        """Where file work goes (the store's writer thread); None: done at once, here."""
        self.folder = folder
        self.station = station
        self.header = TraceHeader(dict(sensors), station, started_at)
        self.retention_days = retention_days
        self.preroll_s = preroll_s
        self.idle_close_s = idle_close_s
        self._ring: deque[Record] = deque()
        self._file: _TraceFile | None = None
        self._buffer: io.StringIO | None = None
        self._writer: TraceWriter | None = None
        self._idle_since: float | None = None
        self.path: Path | None = None
        """The trace file being written, if any."""
        self.paths: list[Path] = []
        """Every trace file this recorder opened."""
        self.last_t = 0.0

    # -- records ---------------------------------------------------------------------------

    def _add(self, record: Record) -> None:
        self.last_t = record.t
        ring = self._ring
        ring.append(record)
        horizon = record.t - self.preroll_s
        while ring and ring[0].t < horizon:
            ring.popleft()
        if self._writer is not None:
            self._writer.write(record)

    def notification(self, t: float, sensor: str, char: str, data: bytes) -> None:
        """Record bytes from a sensor."""
        self._add(Notification(t, sensor, char, data))

    def link(self, t: float, sensor: str, connected: bool) -> None:
        """Record a link change."""
        self._add(LinkChange(t, sensor, connected))

    def user_input(
        self, t: float, kind: InputKind, alarm: str | None = None, by: str | None = None
    ) -> None:
        """Record a user input."""
        self._add(UserInput(t, kind, alarm, by))

    # -- files -----------------------------------------------------------------------------

    def session_started(self, t: float) -> Path:
        """Open a new trace file for the session starting at ``t``, with the pre-roll."""
        self._close(t)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now().astimezone().strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{self.station}-{stamp}{TRACE_SUFFIX}"
        n = 1
        while path.exists() or path in self.paths:
            n += 1
            path = self.folder / f"{self.station}-{stamp}-{n}{TRACE_SUFFIX}"
        self._file = _TraceFile(path)
        self._run(self._expire)
        self._run(self._file.open)
        self._buffer = io.StringIO()
        self._writer = TraceWriter(self._buffer, self.header)
        for record in self._ring:
            self._writer.write(record)
        self._idle_since = None
        self.path = path
        self.paths.append(path)
        return path

    def session_ended(self, t: float) -> None:
        """The session ended at ``t``: the file closes after the idle period (or next session)."""
        self._idle_since = t

    def tick(self, t: float) -> None:
        """Close the file once the station has been idle long enough."""
        if self._idle_since is not None and t - self._idle_since >= self.idle_close_s:
            self._close(t)

    def flush(self) -> None:
        """Hand what was recorded since the last flush to the disk."""
        if self._file is not None:
            self._run(self._file.append(self._take()))

    def _take(self) -> str:
        buffer = self._buffer
        if buffer is None:
            return ""
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    def _close(self, t: float) -> None:
        if self._writer is not None and self._file is not None:
            self._writer.write(End(max(t, self.last_t)))
            self._run(self._file.append(self._take(), close=True))
        self._file = None
        self._buffer = None
        self._writer = None
        self._idle_since = None

    def close(self, t: float | None = None) -> None:
        """Write the end marker and close the current file (at exit)."""
        self._close(self.last_t if t is None else t)

    def _run(self, job: FileJob) -> None:
        if self.writer is None:
            job()
        else:
            self.writer.submit_file(job)

    def _expire(self) -> None:
        if self.retention_days is None:
            return
        cutoff = time.time() - self.retention_days * 86400
        for old in self.folder.glob(f"*{TRACE_SUFFIX}"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
                    log.info("trace %s is older than %g days: deleted", old, self.retention_days)
            except OSError as exc:
                log.warning("cannot expire trace %s: %s", old, exc)


class _TraceFile:
    """One trace file, touched only by the thread that does the file work."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: TextIO | None = None

    def open(self) -> None:
        """Create it, 0600 whatever the umask; an existing file is an error, never clobbered."""
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.fchmod(fd, 0o600)
            self._fh = os.fdopen(fd, "w", encoding="utf-8")
        except BaseException:
            os.close(fd)
            raise

    def append(self, text: str, *, close: bool = False) -> FileJob:
        """A job: write ``text`` and push it to the kernel (and close the file)."""

        def job() -> None:
            fh = self._fh
            if fh is None:
                raise OSError(f"{self.path}: trace file not open (its creation failed)")
            if text:
                fh.write(text)
            fh.flush()
            if close:
                self._fh = None
                fh.close()

        return job
