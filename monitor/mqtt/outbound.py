"""What the station publishes (SPEC section 9), apart from the connection that carries it:
alarm events from the store (the outbox), telemetry samples, when a state is worth
publishing, the Home Assistant discovery message.

Alarm events are not queued in memory: the store is the queue. :class:`EventOutbox` keeps the
last sequence number it saw acknowledged (QoS 1 PUBACK) in the store (``mqtt.last_seq``) and,
after every (re)connect and every commit, publishes ``events_since(last_seq)`` in order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

from monitor.core.station_view import StationView
from monitor.mqtt import homeassistant
from monitor.mqtt.protocol import Topics, alarm_payload, encode
from monitor.store.database import StoreError
from monitor.store.station_store import Store
from monitor.store.writer import Writer

log = logging.getLogger("monitor.mqtt.bridge")  # the bridge's log, as before the split

LAST_SEQ_KEY = "mqtt.last_seq"
EVENT_BATCH = 200
TELEMETRY_BUFFER = 100
"""Samples kept at most between two telemetry messages (10 s at 10 Hz); older ones drop."""

Publish = Callable[[str, str], Awaitable[None]]
"""``publish(topic, payload)`` with QoS 1, returning once the broker acknowledged it."""


# -- the store as the outbox -------------------------------------------------------------


def latest_seq(store: Store) -> int:
    """The highest committed sequence number (0: none yet).

    The store has no query for it; this finds it with O(log n) indexed look-ups of
    ``events_since(s, limit=1)`` (is there an event after ``s``?) instead of reading them all.
    """

    def after(s: int) -> bool:
        return bool(store.events_since(s, limit=1))

    if not after(0):
        return 0
    lo, hi = 0, 1  # invariant: after(lo), and not after(hi) once the doubling stops
    while after(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if after(mid) else (lo, mid)
    return hi


class EventOutbox:
    """The station's committed alarm events not yet acknowledged by the broker."""

    def __init__(self, topics: Topics, store: Store, writer: Writer) -> None:
        self.topics = topics
        self.store = store
        """For reads (events to send): WAL, so never waiting on the writer."""
        self.writer = writer
        """Where progress is saved (the station's writer thread: never on the loop)."""
        self.due = True
        """There may be events to send (after a commit, a connect, a failed read)."""
        self.store_error: str | None = None
        saved = store.setting(topics.station, LAST_SEQ_KEY)
        self.last_seq = int(saved) if saved is not None else self._start_here()
        """The last alarm sequence number the broker acknowledged."""

    def _start_here(self) -> int:
        """A first run: start after the events already committed (no history flood)."""
        seq = latest_seq(self.store)
        self._save_seq(seq)
        return seq

    async def publish(self, publish: Publish) -> None:
        """Every committed event after ``last_seq``, in order, each acknowledged before the
        next; ``last_seq`` advances (and is saved) only after its PUBACK."""
        self.due = False
        while True:
            try:
                batch = self.store.events_since(self.last_seq, limit=EVENT_BATCH)
            except StoreError as exc:
                self.store_failing(exc)
                self.due = True  # try again at the next wake
                return
            for stored in batch:
                if stored.station == self.topics.station:
                    await publish(self.topics.alarms, encode(alarm_payload(stored)))
                self.last_seq = stored.seq
                self._save_seq(stored.seq)
            if len(batch) < EVENT_BATCH:
                return

    def _save_seq(self, seq: int) -> None:
        """Queue the progress for the writer (not waited for: it is kept in memory, and if it
        is lost a restart sends some events again)."""
        station = self.topics.station

        def saved(_: object) -> None:
            self.store_error = None

        self.writer.submit(
            lambda store: store.set_setting(station, LAST_SEQ_KEY, seq), saved, self.store_failing
        )

    def store_failing(self, exc: Exception) -> None:
        """The store failed a read or a write of the bridge: logged once per message."""
        if self.store_error != str(exc):
            log.error("MQTT bridge cannot use the store: %s", exc)
        self.store_error = str(exc)


# -- telemetry, state, discovery -----------------------------------------------------------


class Telemetry:
    """(t, θ, HR) samples taken every tick, sent in one message every ``telemetry_every_s``."""

    def __init__(self, station: str) -> None:
        self.station = station
        self._samples: deque[tuple[float, float | None, float | None]] = deque(
            maxlen=TELEMETRY_BUFFER
        )

    def __bool__(self) -> bool:
        return bool(self._samples)

    def take(self, view: StationView) -> None:
        """A sample of the station now."""
        self._samples.append(_sample(view))

    def clear(self) -> None:
        """Drop what is buffered (telemetry is live only)."""
        self._samples.clear()

    def message(self) -> str:
        """The buffered samples as one message; the buffer is emptied."""
        samples = list(self._samples)
        self._samples.clear()
        return encode(
            {
                "station": self.station,
                "t": [s[0] for s in samples],
                "theta_deg": [s[1] for s in samples],
                "hr_bpm": [s[2] for s in samples],
            }
        )


def _sample(view: StationView) -> tuple[float, float | None, float | None]:
    """(t, θ, HR) now, with None where the signal is stale (as the state JSON shows it)."""
    theta, hr = view.theta_fresh_deg, view.hr_fresh_bpm
    return (
        round(view.t, 3),
        None if theta is None else round(theta, 1),
        None if hr is None else round(hr),
    )


def state_signature(state: dict[str, Any]) -> object:
    """What makes a state worth publishing before the next heartbeat: a new phase, a signal
    coming or going, an alarm's life, a sensor's link, a problem; not the running timers."""
    return (
        state["phase"],
        state["theta_deg"] is None,
        state["hr_bpm"] is None,
        tuple((a["id"], a["priority"], a["state"], a["sounding"]) for a in state["alarms"]),
        tuple((s["name"], s["connected"], s["link"]) for s in state["sensors"]),
        tuple(sorted(state["problems"].items())),
    )


def discovery(topics: Topics, prefix: str, version: str) -> tuple[str, str]:
    """Home Assistant's discovery message for the station: (topic, payload)."""
    payload = homeassistant.discovery_config(
        topics.station,
        state_topic=topics.state,
        status_topic=topics.status,
        sw_version=version,
    )
    return homeassistant.discovery_topic(topics.station, prefix), encode(payload)


def version() -> str:
    """This Spotter's version, for the discovery message."""
    try:
        return metadata.version("inversion-spotter")
    except metadata.PackageNotFoundError:
        return "unknown"
