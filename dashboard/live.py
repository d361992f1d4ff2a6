"""The live stream's fan-out: alarm events (with the store's sequence numbers) and a state
heartbeat every second, to every connected client through its own bounded queue.

A client that falls behind is cut off rather than allowed to delay anyone else; its browser
reconnects with ``Last-Event-ID`` and catches up from the store, so no alarm event is ever
missed or shown twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.alarms import AlarmEvent
from monitor.station import Station
from monitor.status import station_state
from monitor.store import Store, StoredEvent

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class Message:
    """One SSE message: ``alarm`` (with the event's seq as id) or ``state``."""

    kind: str
    data: dict[str, Any]
    id: int | None = None


def alarm_message(stored: StoredEvent) -> Message:
    """An alarm event as the stream carries it."""
    data = stored.event.to_json()
    data["seq"] = stored.seq
    data["at"] = stored.at
    return Message("alarm", data, stored.seq)


@dataclass(eq=False)
class Client:
    """One connected browser."""

    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the client fell behind and must reconnect (and catch up)."""


class LiveHub:
    """A station sink that feeds every dashboard client."""

    def __init__(self, station: Station, store: Store, name: str) -> None:
        self.station = station
        self.store = store
        self.name = name
        self.clients: set[Client] = set()
        last = store.events_since(0, limit=1_000_000)
        self.last_seq = last[-1].seq if last else 0
        self._next_beat = float("-inf")
        self.dropped = 0

    def state(self) -> dict[str, Any]:
        """The station state now."""
        return station_state(self.station, self.name)

    def connect(self) -> Client:
        """A new client."""
        client = Client()
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        """A client went away."""
        self.clients.discard(client)

    def catch_up(self, after: int) -> list[Message]:
        """Every committed alarm event after ``after``, oldest first."""
        return [alarm_message(e) for e in self.store.events_since(after, limit=100_000)]

    def _send(self, message: Message) -> None:
        for client in list(self.clients):
            if client.dropped.is_set():
                continue
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                client.dropped.set()  # it reconnects and catches up from the store
                self.dropped += 1
                log.info("a dashboard client fell behind; it will reconnect and catch up")

    # -- the station's sink interface -------------------------------------------------------

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """New events were committed: send them with their sequence numbers."""
        for stored in self.store.events_since(self.last_seq):
            self.last_seq = stored.seq
            self._send(alarm_message(stored))
        self._beat(force=True)

    def tick(self, t: float) -> None:
        """The heartbeat: the state every second."""
        self._beat()

    def _beat(self, force: bool = False) -> None:
        loop_now = asyncio.get_running_loop().time()
        if not force and loop_now < self._next_beat:
            return
        self._next_beat = loop_now + HEARTBEAT_S
        if self.clients:
            self._send(Message("state", self.state()))
