"""The live stream's fan-out: alarm events (with the store's sequence numbers) and a state
heartbeat every second, to every connected client through its own bounded queue.

A client that falls behind is cut off rather than allowed to delay anyone else; its browser
reconnects with ``Last-Event-ID`` and catches up from the store, so no alarm event is ever
missed or shown twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.sse import ServerSentEvent

from monitor.core.alarms import AlarmEvent
from monitor.core.sink import SinkBase
from monitor.core.station_view import StationView, ViewSource, state_json
from monitor.core.view import Limits, alarm_words, screen
from monitor.store.alarm_log import StoredEvent
from monitor.store.station_store import Store

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
HEARTBEAT_S = 1.0
SSE_RETRY_MS = 1000


@dataclass(frozen=True)
class Message:
    """One SSE message: ``alarm`` (with the event's seq as id) or ``state``."""

    kind: str
    data: dict[str, Any]
    id: int | None = None
    prepared: ServerSentEvent | None = field(default=None, compare=False, repr=False)
    """The server-sent event made once for every client (``FanOut`` fills it in)."""


def alarm_message(stored: StoredEvent, limits: Limits | None = None) -> Message:
    """An alarm event as the stream carries it; with the user's ``limits``, also in words
    for a person (``words``: title, message, what to do, raw details)."""
    data = stored.event.to_json()
    data["seq"] = stored.seq
    data["at"] = stored.at
    if limits is not None:
        e = stored.event
        words = alarm_words(
            e.id, e.priority.label, e.value, e.limit, limits, e.event.value, e.message
        )
        data["words"] = words.to_json()
    return Message("alarm", data, stored.seq)


@dataclass(eq=False)
class Client:
    """One connected browser."""

    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the client fell behind and must reconnect (and catch up)."""


class FanOut:
    """One bounded queue per client. A client that falls behind is cut off rather than allowed
    to delay anyone else; it reconnects and catches up."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.dropped = 0

    def connect(self) -> Client:
        """A new client."""
        client = Client()
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        """A client went away."""
        self.clients.discard(client)

    def _send(self, message: Message) -> None:
        if not self.clients:
            return
        if message.prepared is None:  # encoded once here, not once per client
            message = replace(message, prepared=_encoded_sse(message))
        for client in list(self.clients):
            if client.dropped.is_set():
                continue
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                client.dropped.set()  # it reconnects and catches up
                self.dropped += 1
                log.info("a client fell behind; it will reconnect and catch up")


async def next_message(client: Client) -> Message | None:
    """The client's next message, or None after a second with none (to notice hang-ups).

    Only the queue is waited on: a client is dropped only when its queue is full, so never
    while it waits on an empty one (the caller checks ``dropped`` between messages). One
    wait per message and client, no task watching ``dropped`` beside it; none at all when a
    message is already queued."""
    queue = client.queue
    if not queue.empty():
        return queue.get_nowait()
    try:
        return await asyncio.wait_for(queue.get(), timeout=1.0)
    except TimeoutError:
        return None


def sse(message: Message) -> ServerSentEvent:
    """A message as a server-sent event (reconnect after 1 s)."""
    if message.prepared is not None:
        return message.prepared
    return ServerSentEvent(
        data=message.data,
        event=message.kind,
        id=None if message.id is None else str(message.id),
        retry=SSE_RETRY_MS,
    )


def _finite(data: Any) -> Any:
    """NaN and infinities as null, as FastAPI writes an event's ``data``."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_finite(value) for value in data]
    return data


def _encoded_sse(message: Message) -> ServerSentEvent:
    """:func:`sse` with the data already JSON, byte for byte as FastAPI would write it for
    each client (``jsonable_encoder``, non-finite floats as null, ``json.dumps``)."""
    return ServerSentEvent(
        raw_data=json.dumps(_finite(jsonable_encoder(message.data))),
        event=message.kind,
        id=None if message.id is None else str(message.id),
        retry=SSE_RETRY_MS,
    )


class LiveHub(FanOut, SinkBase):
    """A station sink that feeds every dashboard client, from the station's read model and
    the store."""

    def __init__(self, station: ViewSource, store: Store, name: str) -> None:
        super().__init__()
        self.station = station
        self.store = store
        self.name = name
        last = store.events_since(0, limit=1_000_000)
        self.last_seq = last[-1].seq if last else 0
        self._next_beat = float("-inf")

    def limits(self, view: StationView | None = None) -> Limits:
        """The running profile's limits, the ones the screen names."""
        p = (self.station.view() if view is None else view).profile
        return Limits(
            p.max_angle_deg, p.max_hold_s, p.max_session_inverted_s, p.hr_high_bpm, p.hr_low_bpm
        )

    def state(self) -> dict[str, Any]:
        """The station state now."""
        state = state_json(self.station.view(), self.name, datetime.now().astimezone())
        state["screen"] = screen(state)
        return state

    def catch_up(self, after: int) -> list[Message]:
        """Every committed alarm event after ``after``, oldest first."""
        limits = self.limits()
        return [alarm_message(e, limits) for e in self.store.events_since(after, limit=100_000)]

    # -- the station's sink interface -------------------------------------------------------

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """New events were committed: send them with their sequence numbers."""
        limits = None
        for stored in self.store.events_since(self.last_seq):
            self.last_seq = stored.seq
            limits = self.limits() if limits is None else limits
            self._send(alarm_message(stored, limits))
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
