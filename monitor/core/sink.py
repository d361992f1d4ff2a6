"""The one interface every station sink implements, and what a sink attached beside a running
station may use of it.

A sink is somewhere alarm events go: the sound, the terminal view, JSON lines, sd_notify, the
dashboard's live stream, the MQTT bridge, push. The station calls exactly these members, with
no probing: :attr:`Sink.at_once` decides when a sink gets an event (a sink of the station
itself gets it in the step that produced it; a sink that carries it beyond the station only
once the journal committed it), :meth:`Sink.tick` is the safety loop's heartbeat after every
tick, :meth:`Sink.close` is called once when the station stops. A sink reads the station's
state through the read model (:class:`monitor.core.station_view.StationView`), never through
the core's parts.

Pure: it defines types only (the core's import contract applies).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from monitor.core.alarms import AlarmEvent
from monitor.core.station_view import StationView


@runtime_checkable
class Sink(Protocol):
    """Somewhere alarm events go. Nothing here may block the safety loop."""

    @property
    def at_once(self) -> bool:
        """True for a sink of the station itself (sound, display, its log, sd_notify): it
        gets events in the step that produced them. False for one that carries them beyond
        the station (dashboard, MQTT, push): it gets them once they are committed to the
        store (at once when the station has no journal)."""
        ...

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Take events, oldest first."""
        ...

    def tick(self, t: float) -> None:
        """The core has just been advanced to ``t`` (every 0.1 s)."""
        ...

    def close(self) -> None:
        """The station stops: release what the sink holds (threads, devices)."""
        ...


class SinkBase(abc.ABC):
    """A sink with no heartbeat and nothing to close; a subclass says what it does with
    alarm events (abstract, so a sink cannot forget them) and overrides the rest as needed."""

    at_once: bool = False

    @abc.abstractmethod
    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Take events, oldest first."""

    def tick(self, t: float) -> None:  # noqa: B027 (a no-op on purpose, not abstract)
        """Nothing to do on the heartbeat."""

    def close(self) -> None:  # noqa: B027 (a no-op on purpose, not abstract)
        """Nothing to release."""


class Host(Protocol):
    """What a sink that attaches itself beside a running station (the MQTT bridge, the
    service notifier) uses of it: the sink list it joins and leaves, the problems table it
    reports its own failures in (written, never read: reading is :meth:`view`'s), and the
    read model. A ``monitor.station.station.Station``; a protocol, so the arrow points from
    the station to the sinks only."""

    @property
    def sinks(self) -> list[Sink]:
        """The station's sinks (a sink appends and removes itself)."""
        ...

    @property
    def problems(self) -> dict[str, str]:
        """Where an attached sink reports its own problem by part (``mqtt``...)."""
        ...

    def view(self) -> StationView:
        """The station's state now."""
        ...
