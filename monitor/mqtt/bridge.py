"""The station's MQTT bridge to the clinic hub and Home Assistant (SPEC section 9).

Topics and payloads: :mod:`monitor.mqtt.protocol`. The bridge is split by concern: this module
owns the connection (one supervised I/O task, reconnects, the publishing loop);
:mod:`monitor.mqtt.outbound` what is published (the store as the alarm outbox, telemetry,
state signature, discovery); :mod:`monitor.mqtt.commands` what comes in (commands from the
hub); :mod:`monitor.mqtt.link_watch` whether the broker is reachable.

Nothing waits on the network in the safety loop: :meth:`MqttBridge.alarm_events` and
:meth:`MqttBridge.tick` only set flags and append to bounded buffers; one task
(:meth:`MqttBridge.run`) owns the connection and does all I/O, every await with a timeout.

Alarm events are not queued in memory: the store is the queue
(:class:`~monitor.mqtt.outbound.EventOutbox`), so a broker outage or a restart of the station
loses nothing and repeats nothing it knows was delivered. MQTT QoS 1 is at-least-once: an
event whose PUBACK was lost with the connection is sent again, so receivers de-duplicate by
``seq``.

Each connection uses a new client: paho re-sends unacknowledged QoS 1 messages itself on a
reconnect of the same client, which alongside the replay from the store would send an event
twice (and an old ``state`` after the fresh one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import aiomqtt

from monitor.core.alarms import AlarmEvent
from monitor.core.sink import Host, SinkBase
from monitor.core.station_view import state_json
from monitor.mqtt import homeassistant
from monitor.mqtt.client import client_for
from monitor.mqtt.commands import Commanded, Commands
from monitor.mqtt.link_watch import LinkHook, LinkWatch
from monitor.mqtt.outbound import (
    EventOutbox,
    Telemetry,
    discovery,
    state_signature,
    version,
)
from monitor.mqtt.protocol import OFFLINE, ONLINE, Rejections, Topics, encode
from monitor.settings import MqttConfig
from monitor.store.station_store import Store
from monitor.store.writer import InlineWriter, Writer
from monitor.supervise import cancel_and_wait, first_done, supervise

log = logging.getLogger(__name__)

INCOMING_BUFFER = 64


class Station(Host, Commanded, Protocol):
    """What the bridge uses of the station it is attached to (a
    :class:`monitor.station.station.Station`; a protocol, so the arrow points from the
    station to the MQTT layer only): the sink list it joins, the problems it reports, the
    read model, and the user input a hub's command is."""


class MqttBridge(SinkBase):
    """One station's link to the broker: a station sink (never blocks) plus one I/O task."""

    def __init__(
        self,
        config: MqttConfig,
        station_name: str,
        store: Store,
        *,
        on_link_change: LinkHook | None = None,
        clock: Callable[[], float] = time.monotonic,
        writer: Writer | None = None,
    ) -> None:
        self.config = config
        self.topics = Topics.of(station_name)
        self.store = store
        """For reads (events to send): WAL, so never waiting on the writer."""
        self.writer: Writer = writer if writer is not None else InlineWriter(store)
        """Where the bridge's writes go (the station's writer thread: never on the loop)."""
        self._clock = clock
        self._tls = config.tls_context()  # read the certificates now: a bad path fails at start
        self._version = version()
        self.station: Station | None = None
        self._wake = asyncio.Event()
        self._discovery_due = False
        self.link = LinkWatch(config, clock, on_link_change)
        """Whether the broker is reachable."""
        self.outbox = EventOutbox(self.topics, store, self.writer)
        """Committed alarm events not yet acknowledged by the broker."""
        self.telemetry = Telemetry(self.topics.station)
        self.commands = Commands(self.topics, self.writer, self._wake, self.outbox.store_failing)
        """Commands from the hub, and the replies waiting to be published."""
        self.crashes: Counter[str] = Counter()
        """Crashes of the bridge's task (each logged, shown as a problem, restarted)."""

    # -- what the station calls (the safety loop: never block) ----------------------------

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Events were committed to the store: publish them (from the store) soon."""
        self.outbox.due = True
        self._wake.set()

    def tick(self, t: float) -> None:
        """Every 0.1 s: take a telemetry sample, watch the link, wake the I/O task."""
        if self.station is not None and self.config.telemetry:
            self.telemetry.take(self.station.view())
        self.link.watch(None if self.station is None else self.station.problems)
        self._wake.set()

    # -- what others read -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Connected to the broker now."""
        return self.link.connected

    @property
    def link_lost(self) -> bool:
        """The broker has acknowledged nothing for ``link_lost_after_s`` after having been
        reachable (SPEC section 7: ``link.lost`` on the station's side)."""
        return self.link.link_lost

    @property
    def last_seq(self) -> int:
        """The last alarm sequence number the broker acknowledged."""
        return self.outbox.last_seq

    @property
    def rejections(self) -> Rejections:
        """Refused commands, per source (the hub: the only writer of ``cmd``) and topic."""
        return self.commands.rejections

    # -- the I/O task -------------------------------------------------------------------------

    async def run(self, station: Station, stop: asyncio.Event) -> None:
        """Attach to ``station`` and keep it connected to the broker until ``stop`` is set.

        Matches :data:`monitor.station.daemon.Attach`. On stop, the events committed so far are
        sent, then ``offline`` (a clean disconnect does not fire the last will), and the bridge
        detaches itself. Stop it with ``stop``: a cancel ends it without ``offline``.
        """
        self.station = station
        if self not in station.sinks:
            station.sinks.append(self)
        waker = asyncio.create_task(stop.wait())
        waker.add_done_callback(lambda _: self._wake.set())
        try:
            # A bug in here must not end the station's link: supervised (logged with its
            # traceback, a problem on the station's status, restarted).
            await supervise(
                "MQTT bridge",
                lambda: self._link(stop),
                stop,
                station.problems,
                self.crashes,
                backoff_min_s=self.config.backoff_min_s,
                backoff_max_s=self.config.backoff_max_s,
            )
        finally:
            await cancel_and_wait(waker)
            self.link.connected = False
            with contextlib.suppress(ValueError):
                station.sinks.remove(self)
            self.station = None

    async def _link(self, stop: asyncio.Event) -> None:
        """Connect, serve, and reconnect with back-off after a lost connection, until stop."""
        backoff = self.config.backoff_min_s
        while not stop.is_set():
            try:
                async with self._client() as client:
                    backoff = self.config.backoff_min_s
                    await self._session(client, stop)
            except aiomqtt.MqttError as exc:
                self.link.went_down(exc)
            except Exception as exc:
                self.link.went_down(exc)
                raise
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()
            backoff = min(backoff * 2, self.config.backoff_max_s)

    def _client(self) -> aiomqtt.Client:
        return client_for(
            self.config,
            username=self.topics.station,
            identifier=self.config.client_id or f"spotter-{self.topics.station}",
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            clean_session=True,
            tls_context=self._tls,
            max_queued_incoming_messages=INCOMING_BUFFER,
            logger=logging.getLogger(f"{__name__}.paho"),
        )

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection: announce, catch up, then serve until it drops or ``stop``."""
        self.link.up()
        log.info(
            "MQTT connected to %s as %s%s",
            self.link.where(),
            self.config.username or self.topics.station,
            " (TLS)" if self._tls is not None else "",
        )
        timeout = self.config.timeout_s
        self.telemetry.clear()  # telemetry is live only
        self.outbox.due = True
        self._discovery_due = self.config.discovery
        await self._publish(client, self.topics.status, ONLINE, qos=1, retain=True)
        await client.subscribe(self.topics.cmd, qos=1, timeout=timeout)
        if self.config.discovery:
            birth = homeassistant.birth_topic(self.config.discovery_prefix)
            await client.subscribe(birth, qos=1, timeout=timeout)
        self.link.ok()
        await first_done(self._reader(client), self._writer(client, stop))

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: str, *, qos: int, retain: bool = False
    ) -> None:
        await client.publish(topic, payload, qos=qos, retain=retain, timeout=self.config.timeout_s)
        if qos:
            self.link.ok()

    async def _reader(self, client: aiomqtt.Client) -> None:
        birth = homeassistant.birth_topic(self.config.discovery_prefix)
        async for message in client.messages:
            payload = _as_bytes(message.payload)
            if message.topic.matches(self.topics.cmd):
                self.commands.handle(self.station, payload, retained=message.retain)
            elif message.topic.matches(birth) and payload == homeassistant.HA_ONLINE.encode():
                log.info("Home Assistant is online: publishing discovery again")
                self._discovery_due = True
            self._wake.set()

    async def _writer(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """All publishing of a session, woken by the station; on ``stop``, a last round of
        events and ``offline``, never cut in the middle of a publish."""
        c = self.config
        next_state = next_telemetry = self._clock()
        signature: object = None
        me = asyncio.current_task()
        while True:
            # Python 3.11's asyncio.wait_for (inside aiomqtt's publish) can swallow a cancel
            # that lands as the acknowledgement arrives; the request is still counted here.
            if me is not None and me.cancelling():
                raise asyncio.CancelledError
            if stop.is_set():
                await self._publish_events(client)
                await self._publish(client, self.topics.status, OFFLINE, qos=1, retain=True)
                return
            wait_s = max(0.0, min(next_state, next_telemetry) - self._clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            self._wake.clear()
            while self.commands.replies:
                reply = self.commands.replies.popleft()
                await self._publish(client, self.topics.reply, encode(reply), qos=1)
            if self._discovery_due:
                self._discovery_due = False
                topic, payload = discovery(self.topics, c.discovery_prefix, self._version)
                await self._publish(client, topic, payload, qos=1, retain=True)
            if self.outbox.due:
                await self._publish_events(client)
            station = self.station
            if station is not None:
                wall = datetime.now().astimezone()
                state = state_json(station.view(), self.topics.station, wall)
                now_sig = state_signature(state)
                if now_sig != signature or self._clock() >= next_state:
                    await self._publish(
                        client, self.topics.state, encode(state), qos=1, retain=True
                    )
                    signature = now_sig
                    next_state = self._clock() + c.state_every_s
            if self._clock() >= next_telemetry:
                next_telemetry = self._clock() + c.telemetry_every_s
                if self.telemetry:
                    message = self.telemetry.message()
                    await self._publish(client, self.topics.telemetry, message, qos=0)

    async def _publish_events(self, client: aiomqtt.Client) -> None:
        """Every committed event after ``last_seq``, in order, each acknowledged before the
        next (:meth:`EventOutbox.publish`)."""

        async def publish(topic: str, payload: str) -> None:
            await self._publish(client, topic, payload, qos=1)

        await self.outbox.publish(publish)


# -- helpers -------------------------------------------------------------------------------


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
