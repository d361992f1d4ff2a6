"""Alarm events as JSON lines (SPEC section 7), e.g. for ``spotter run --json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TextIO

from monitor.core.alarms import AlarmEvent
from monitor.core.sink import SinkBase


class JsonLinesSink(SinkBase):
    """Writes each event as one JSON line, ``t`` shifted to another origin (a scenario's)."""

    at_once = True
    """The station's own log on stdout: at once, never waits for the disk."""

    def __init__(self, stream: TextIO, origin: Callable[[], float] = lambda: 0.0) -> None:
        self.stream = stream
        self.origin = origin

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Print the events and flush, so a reader sees each alarm at once."""
        shift = self.origin()
        for event in events:
            shifted = dataclasses.replace(event, t=round(event.t - shift, 3))
            self.stream.write(shifted.to_json_line() + "\n")
        self.stream.flush()
