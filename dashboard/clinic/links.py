"""The hub's two links to the broker (see ``LINKS``): connecting and reconnecting, what each
subscribes to, handing each message to the hub and acknowledging it once handled, keeping the
state link's per-station subscriptions in step with the stations the hub knows, and leaving
out a station that floods its state for a while."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt

from dashboard.clinic.settings import HubSettings
from monitor.mqtt.client import client_for
from monitor.mqtt.protocol import TOPIC_ROOT, Topics
from monitor.supervise import first_done

log = logging.getLogger(__name__)
YIELD_EVERY = 50
"""The listener lets the other tasks (the ``link.lost`` ticker) run at least this often, in
messages: aiomqtt hands over queued messages without yielding, so a flood would starve them."""
LINKS: dict[str, tuple[str, ...]] = {
    "hub listener": ("status", "alarms", "cmd/reply"),
    "hub state listener": (),
}
"""The hub's two broker connections, each a supervised task: alarm events, status and replies
on one (wildcards: that is how the hub finds stations), the high-volume ``state`` heartbeats
on the other, one subscription per known station, so a station flooding its state cannot hold
up the others' alarm events, and once muted no longer reaches the hub at all."""
MUTE_S = 10.0
MUTE_MAX_S = 300.0
"""A station flooding its state is left out this long (doubling each time it floods again,
up to ``MUTE_MAX_S``): the state link reconnects with a clean session without it, so the
broker also drops what it had queued of the flood for the hub. Meanwhile the hub hears no
heartbeat from it and raises its ``link.lost``: a flooding station is not one to rely on."""
SUBSCRIBE_BATCH = 100
SITES_ROOT = "sites"
"""At a clinic group's central broker each site's bridge puts its stations' topics under
``sites/{site}/spotter/v1/...`` and says on ``sites/{site}/bridge`` whether it is up (``1``,
retained) or down (``0``, its last will on the central broker)."""
SESSION_EXPIRY_S = 24 * 3600
"""How long the broker keeps a replica's MQTT v5 session (and queues its share of alarm
events) while it is away: a replica that restarts gets what was handed to it meanwhile."""


class HubLinks:
    """The broker links of one hub: the messages go to ``handle(batch)`` (awaited; it
    acknowledges each message once handled, see :class:`Incoming`); ``site_of`` says which
    stations are reached through a site's bridge; ``now`` is the hub's clock."""

    def __init__(
        self,
        settings: HubSettings,
        site_of: Mapping[str, str],
        handle: Callable[[list[Incoming]], Awaitable[None]],
        now: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._site_of = site_of
        self._handle = handle
        self.now = now
        self.client: aiomqtt.Client | None = None
        """The main link while it is connected (commands go out on it)."""
        self.connected = asyncio.Event()
        """Both broker connections are up and subscribed."""
        self._up: set[str] = set()
        self._state_of: set[str] = set()
        """Stations whose ``state`` the hub wants (every station it has heard of)."""
        self.state_subscribed: set[str] = set()
        """Stations whose ``state`` the state link is subscribed to now."""
        self.muted: dict[str, float] = {}
        """Flooding stations, unsubscribed until (the hub's clock)."""
        self._resync = asyncio.Event()
        self._mutes: Counter[str] = Counter()

    def bodies(self, stop: asyncio.Event) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """Each link's task body, by the name it is supervised under."""
        return {link: functools.partial(self.listen, stop, link) for link in LINKS}

    def mute(self, station: str) -> None:
        """``station`` floods its state: leave it out (``MUTE_S``, doubling each time)."""
        if station in self.muted:
            return
        self._mutes[station] += 1
        mute_s = min(MUTE_S * 2 ** (self._mutes[station] - 1), MUTE_MAX_S)
        self.muted[station] = self.now() + mute_s
        self._resync.set()
        log.warning(
            "hub: station %s floods its state: not listening to it for %.0f s", station, mute_s
        )

    async def publish(self, topic: str, payload: str | bytes) -> None:
        """Publish on the main link (QoS 1); ConnectionError while it is down."""
        client = self.client
        if client is None:
            raise ConnectionError("the hub is not connected to the broker")
        await client.publish(topic, payload, qos=1)

    def _client_for(self, link: str) -> aiomqtt.Client:
        c = self.settings.mqtt
        main = link == "hub listener"
        ident = c.client_id or f"spotter-hub-{self.settings.hub.name}"
        if self.settings.hub.replica:
            ident = f"{ident}-{self.settings.hub.replica}"
        client = client_for(
            c,
            username="hub",
            # A persistent session: the broker keeps what the stations send while the hub is
            # away (QoS 1), and the store de-duplicates what comes twice. With shared
            # subscriptions (replicas) it is MQTT v5's session with an expiry.
            # The state link needs no session: states are retained and come every second.
            identifier=ident if main else f"{ident}-state",
            clean_session=not main,
            tls_context=c.tls_context(),
            logger=logging.getLogger(f"{__name__}.paho"),
            v5_session_expiry_s=SESSION_EXPIRY_S if main and self.settings.hub.share else None,
        )
        if main:
            # Acknowledge (PUBACK) each message only once it is handled (its event stored): a
            # hub killed with messages still queued in it gets them again from its session,
            # none lost. aiomqtt does not expose paho's manual acknowledgement, hence its
            # paho client.
            client._client.manual_ack_set(True)
        return client

    async def listen(self, stop: asyncio.Event, link: str) -> None:
        backoff = self.settings.mqtt.backoff_min_s
        client = self._client_for(link)
        main = link == "hub listener"
        while not stop.is_set():
            try:
                async with client:
                    if main:
                        self.client = client
                    for topic in self._subscriptions(link):
                        await client.subscribe(topic, qos=1)
                    if not main:
                        self.state_subscribed.clear()
                        await self._sync_state(client)
                    self._up.add(link)
                    if self._up == set(LINKS):
                        self.connected.set()
                    backoff = self.settings.mqtt.backoff_min_s
                    if main:
                        await self._serve(client, ack=True)
                    else:
                        await first_done(self._serve(client), self._keep_state_synced(client))
            except aiomqtt.MqttError as exc:
                log.warning("hub: broker link down (%s); retrying in %.1f s", exc, backoff)
            finally:
                if main:
                    self.client = None
                self._up.discard(link)
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.mqtt.backoff_max_s)

    def _subscriptions(self, link: str) -> list[str]:
        """What a link subscribes to (the state link: per station, see ``_sync_state``)."""
        hub = self.settings.hub
        roots = [TOPIC_ROOT] + ([f"{SITES_ROOT}/+/{TOPIC_ROOT}"] if hub.sites else [])
        topics = []
        for kind in LINKS[link]:
            for root in roots:
                topic = f"{root}/+/{kind}"
                topics.append(
                    f"$share/{hub.share}/{topic}" if kind == "alarms" and hub.share else topic
                )
        if LINKS[link] and hub.sites:
            topics.append(f"{SITES_ROOT}/+/bridge")
        return topics

    async def _serve(self, client: aiomqtt.Client, ack: bool = False) -> None:
        """Hand the messages to the hub, each with whatever came in behind it (up to
        ``YIELD_EVERY``: the hub stores a batch in one transaction), then let the other
        tasks run."""
        async for message in client.messages:
            batch = [message, *_queued(client, YIELD_EVERY - 1)]
            await self._handle([_incoming(client, m, ack) for m in batch])
            await asyncio.sleep(0)

    def hear_of(self, station: str) -> None:
        """A station the hub did not know: listen to its state too."""
        if station not in self._state_of:
            self._state_of.add(station)
            self._resync.set()

    async def _sync_state(self, client: aiomqtt.Client) -> None:
        """Subscribe the state link to every known, unmuted station; unsubscribe the rest."""
        now = self.now()
        for station, until in list(self.muted.items()):
            if until <= now:
                del self.muted[station]
                log.info("hub: listening to station %s's state again", station)
        want = {s for s in self._state_of if s not in self.muted}
        drop = sorted(self.state_subscribed - want)
        if drop:
            # Not UNSUBSCRIBE: its answer would wait behind the flood already queued for the
            # hub. A new clean session makes the broker drop that queue at once.
            raise aiomqtt.MqttError(f"reconnecting the state link without {', '.join(drop)}")
        add = sorted(want - self.state_subscribed)
        for i in range(0, len(add), SUBSCRIBE_BATCH):
            batch = add[i : i + SUBSCRIBE_BATCH]
            await client.subscribe([(self._state_topic(s), 1) for s in batch])
            self.state_subscribed |= set(batch)

    def _state_topic(self, station: str) -> str:
        topic = Topics.of(station).state
        site = self._site_of.get(station)
        return topic if site is None else f"{SITES_ROOT}/{site}/{topic}"

    async def _keep_state_synced(self, client: aiomqtt.Client) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # a mute ends within a second of its time
                    await self._resync.wait()
            self._resync.clear()
            await self._sync_state(client)


@dataclass(frozen=True)
class Incoming:
    """One message for the hub; ``ack()`` once it is handled (or given up on: a bug past
    parsing must not come again and hold up every other one). A message never acknowledged
    (the hub cancelled) comes again from the broker: the main link's session is kept."""

    topic: str
    payload: bytes
    retained: bool
    ack: Callable[[], None]


def _incoming(client: aiomqtt.Client, message: aiomqtt.Message, ack: bool) -> Incoming:
    done = functools.partial(_ack, client, message) if ack else _no_ack
    return Incoming(str(message.topic), _bytes(message.payload), message.retain, done)


def _no_ack() -> None:
    """The state link's messages need none (QoS 1 with a clean session: paho acknowledges)."""


def _queued(client: aiomqtt.Client, most: int) -> list[aiomqtt.Message]:
    """What already waits in the client's queue, up to ``most``, without waiting (aiomqtt
    has no public call for it, hence its queue)."""
    batch: list[aiomqtt.Message] = []
    while len(batch) < most:
        try:
            batch.append(client._queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return batch


def _ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """PUBACK a handled QoS 1 message (the main link acknowledges by hand: see ``_client_for``)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


def _bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return str(payload).encode()
