"""``spotter hub``: the clinic's central station. Subscribes to every station over MQTT,
keeps its own store, raises ``link.lost`` for a silent station, escalates alarms to the
supervising therapists, and sends acknowledge / silence / end-session commands back.

The pure parts are in :mod:`dashboard.clinic.core`; this is the shell around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import secrets
import socket
import tomllib
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from dashboard.clinic.core import LINK_LOST, LINK_TIMEOUT_S, Escalation, HubCore, Notice
from dashboard.clinic.pg import StoreUnavailable, open_hub_store
from dashboard.clinic.store import Claim, HubStore
from dashboard.live import FanOut, Message
from monitor.core import validation
from monitor.core.alarms import AlarmEvent, EventKind, Priority
from monitor.mqtt.client import client_for
from monitor.mqtt.protocol import (
    TOPIC_ROOT,
    AlarmMessage,
    HubMessage,
    RateLimit,
    Rejected,
    Rejections,
    ReplyMessage,
    StateMessage,
    StatusMessage,
    Topics,
    encode,
    parse_hub_message,
    parse_topic,
)
from monitor.settings import MqttConfig
from monitor.store.database import StoreError, now_iso
from monitor.supervise import cancel_and_wait, first_done, supervise

log = logging.getLogger(__name__)
SNAPSHOT_EVERY_S = 1.0
ESCALATE_EVERY_S = 0.25
YIELD_EVERY = 50
"""The listener lets the other tasks (the ``link.lost`` ticker) run at least this often, in
messages: aiomqtt hands over queued messages without yielding, so a flood would starve them."""


class UnknownStation(LookupError):
    """A station name the hub has never heard of (a made-up name from a request)."""


STATE_RATE_PER_S = 20.0
"""A station's ``state`` (and ``status``, ``cmd/reply``) messages beyond this rate are dropped
before parsing (counted): a station publishes its state on change and every second. Alarm
events are never rate-limited (each one matters, and a reconnecting station sends its
backlog at once)."""
RATE_LIMITED = frozenset({"state", "status", "cmd/reply"})
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
STORE_RETRY_MAX_S = 2.0
PEOPLE_REFRESH_S = 2.0
"""The snapshot's count of the escalation list is read from the store at most this often."""


class HubConfigError(ValueError):
    """A hub configuration that cannot be used; names the file and the key."""


class HubSection(BaseModel):
    """The ``[hub]`` table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="clinic", min_length=1)
    data_dir: Path = Path("~/.local/share/spotter-hub")
    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=0, le=65535)
    link_timeout_s: float = Field(default=LINK_TIMEOUT_S, gt=0, le=60)
    public_url: str | None = None
    """How therapists' phones reach the hub page (put in escalation messages)."""
    state_rate_per_s: float = Field(default=STATE_RATE_PER_S, gt=0, le=10_000)
    """A station's ``state``/``status``/``cmd/reply`` messages beyond this rate (bursts of
    three seconds' worth) are dropped unread, and a station flooding its state is not
    listened to for ``MUTE_S``."""
    database: SecretStr | None = None
    """``postgresql://user:password@host:port/db``: the store every replica shares; None: the
    SQLite file ``data_dir/hub.db`` (one hub)."""
    replica: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    """This replica's name among several ``spotter hub`` of one clinic (part of its MQTT
    client id, and of who claimed an escalation step); None: one hub."""
    share: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    """Take alarm events through the MQTT v5 shared subscription ``$share/{share}/...``, so
    each is handled by one replica (status and state still reach every replica)."""
    sites: bool = False
    """A clinic group's central hub: also read every site's bridged stations
    (``sites/{site}/spotter/v1/...``) and each bridge's up/down notification."""

    @field_validator("database")
    @classmethod
    def _postgresql_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^postgres(ql)?://", value.get_secret_value()):
            raise ValueError("a postgresql:// URL (leave it out for the SQLite file)")
        return value


class EscalationSection(BaseModel):
    """The ``[escalation]`` table."""

    model_config = ConfigDict(extra="forbid")

    accept_within_s: float = Field(default=30.0, gt=0, le=600)
    repeat_s: float = Field(default=60.0, gt=0, le=600)
    medium_after_s: float = Field(default=30.0, gt=0, le=600)


class HubSettings(BaseModel):
    """Everything ``spotter hub`` reads."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    hub: HubSection = HubSection()
    mqtt: MqttConfig = MqttConfig(enabled=True, username="hub")
    escalation: EscalationSection = EscalationSection()

    @property
    def store_path(self) -> Path:
        """The hub's SQLite file."""
        return self.hub.data_dir.expanduser() / "hub.db"

    def open_store(self) -> HubStore:
        """The store ``[hub] database`` names (PostgreSQL), else the SQLite file."""
        database = self.hub.database
        return open_hub_store(
            None if database is None else database.get_secret_value(), self.store_path
        )


def load_hub_settings(path: str | Path | None) -> HubSettings:
    """The hub's TOML file (None: defaults); errors name the file and every bad key.

    ``$SPOTTER_MQTT__PASSWORD`` gives the broker password when the file does not, and
    ``$SPOTTER_HUB__DATABASE`` the PostgreSQL URL (it may hold a password).
    """
    settings = _load_hub_file(path)
    secret = os.environ.get("SPOTTER_MQTT__PASSWORD")
    if settings.mqtt.password is None and secret:
        settings.mqtt.password = SecretStr(secret)
    database = os.environ.get("SPOTTER_HUB__DATABASE")
    if settings.hub.database is None and database:
        try:
            settings.hub.database = HubSection._postgresql_only(SecretStr(database))
        except ValueError as exc:
            raise HubConfigError(f"$SPOTTER_HUB__DATABASE: {exc}") from None
    return settings


def _load_hub_file(path: str | Path | None) -> HubSettings:
    if path is None:
        return HubSettings()
    file = Path(path).expanduser()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HubConfigError(f"{file}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise HubConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return HubSettings.model_validate(data)
    except ValidationError as exc:
        found = validation.problems(exc, "")
        raise HubConfigError(f"{file}: " + "; ".join(found)) from None


class Hub(FanOut):
    """The hub's state, its MQTT link and its fan-out to open pages (messages: ``event``, id a
    hub-wide counter, and ``snapshot``)."""

    def __init__(self, settings: HubSettings, store: HubStore) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.replica = settings.hub.replica or f"{socket.gethostname()}-{os.getpid()}"
        """Who this hub is when claiming escalation steps in a shared store."""
        self.site_of: dict[str, str] = {}
        """Stations heard through a site's bridge (a central hub), and which site."""
        self.bridges: dict[str, bool] = {}
        """Each site's bridge to the central broker: up (True) or down."""
        self._pending: dict[tuple[str, str, str], Notice] = {}
        """Escalation steps due here that another replica claimed: tried again each round
        until done (the claimant may die before it sends)."""
        self.store_outages = 0
        """Times the database became unreachable (each waited out, shown in ``problems``)."""
        self._people_count = 0
        self._people_read_at: float | None = None
        self.core = HubCore(settings.hub.link_timeout_s)
        e = settings.escalation
        self.escalation = Escalation(e.accept_within_s, e.repeat_s, e.medium_after_s)
        self.events: list[Message] = []
        """Every event this run fanned out (ids count from 1), for catch-up."""
        self._client: aiomqtt.Client | None = None
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
        self.received = 0
        self.last_tick: float | None = None
        """When the ticker last looked at the stations (the hub's clock)."""
        self.link_lost_tick_gap_s: dict[str, float] = {}
        """For each station whose ``link.lost`` the ticker raised (the last time): how long
        since the tick before, on the hub's clock. The alarm's lateness (its value minus the
        timeout) is at most this, by construction: the tick before found it not yet silent
        long enough (benchmarks judge the ticker with it; a busy machine makes it long)."""
        self._sending: set[asyncio.Task[None]] = set()
        self.latencies_ms: list[float] = []
        """Alarm latency: station commit to hub store, when clocks allow (benchmarks)."""
        self.problems: dict[str, str] = {}
        """The hub's own technical problems (a crashed task, a station sending bad messages),
        shown on the page."""
        self.rejections = Rejections()
        """Malformed MQTT messages dropped, per station and topic kind."""
        self.crashes: Counter[str] = Counter()
        """Crashes of each supervised task (each was logged and restarted)."""
        rate = settings.hub.state_rate_per_s
        self._limit = RateLimit(rate, 3 * rate)
        self.rate_limited: Counter[str] = Counter()
        """Messages dropped unparsed because their station sent too many, per station."""

    def now(self) -> float:
        """The hub's monotonic clock."""
        return asyncio.get_running_loop().time()

    # -- fan-out ---------------------------------------------------------------------------

    def _event(self, data: dict[str, Any]) -> None:
        data.setdefault("at", now_iso())  # a station's event keeps its own commit time
        message = Message("event", data, len(self.events) + 1)
        self.events.append(message)
        self._send(message)

    def snapshot(self) -> dict[str, Any]:
        """Every station as a tile, the merged alarm list, open escalations."""
        tiles = []
        now = self.now()
        for name in sorted(self.core.stations):
            view = self.core.stations[name]
            state = view.state or {}
            own = view.alarms.alarms.get("link.lost")
            priorities = [a.get("priority") for a in state.get("alarms", [])]
            if own is not None:
                priorities.append(own.priority.label)
            rank = {"high": 0, "medium": 1, "low": 2}
            highest = min(priorities, key=lambda p: rank.get(p or "", 3), default=None)
            site = self.site_of.get(name)
            tiles.append(
                {
                    "station": name,
                    "site": site,
                    "site_down": site is not None and not self.bridges.get(site, False),
                    "status": view.status,
                    "silent_s": None
                    if view.last_heard == float("-inf")
                    else round(now - view.last_heard, 1),
                    "link_lost": own is not None,
                    "highest_priority": highest,
                    "phase": state.get("phase"),
                    "theta_deg": state.get("theta_deg"),
                    "hr_bpm": state.get("hr_bpm"),
                    "timers": state.get("timers", {}),
                    "user": state.get("user"),
                    "sensors": state.get("sensors", []),
                    "alarms": len(state.get("alarms", [])) + (own is not None),
                }
            )
        chases = [
            {
                "station": c.station,
                "alarm": c.alarm,
                "priority": c.priority,
                "with": None,
                "accepted_by": c.accepted_by,
                "message": c.message,
            }
            for c in self.escalation.chases.values()
        ]
        return {
            "stations": tiles,
            "sites": {site: {"bridge_up": up} for site, up in sorted(self.bridges.items())},
            "alarms": self.core.alarm_list(),
            "escalations": chases,
            "escalation_people": self._escalation_people(),
            "problems": dict(self.problems),
            "mqtt_rejected": self.rejections.as_json(),
        }

    def _escalation_people(self) -> int:
        """How many people the escalation list has, read from the store at most every
        ``PEOPLE_REFRESH_S`` (the hub's clock) or after :meth:`people_changed`: the store is
        called on the event loop, and snapshots come four times a second and per page. While
        the database is unreachable, the last count (the outage is the ``store`` problem)."""
        now = self.now()
        if self._people_read_at is not None and now - self._people_read_at < PEOPLE_REFRESH_S:
            return self._people_count
        try:
            self._people_count = len(self.store.escalation_list())
            self._people_read_at = now
        except StoreUnavailable as exc:
            self._store_down(exc)
        return self._people_count

    def people_changed(self) -> None:
        """Someone was added to (or left) the escalation list here: the next snapshot counts
        again (another replica's change shows within ``PEOPLE_REFRESH_S``)."""
        self._people_read_at = None

    # -- requests about stations -----------------------------------------------------------

    def known_station(self, station: str) -> bool:
        """Whether the hub has heard of ``station`` (this run, or stored from an earlier one)."""
        if station in self.core.stations:
            return True
        return any(row["name"] == station for row in self.store.stations())

    def reject_escalation(self, station: str, alarm: str, person: str) -> Notice | None:
        """``person`` cannot take the escalation of ``alarm`` at ``station``: hand it on (the
        notice to send, if any). :class:`UnknownStation` for a station the hub never heard of,
        so a made-up name is refused, not recorded."""
        if not self.known_station(station):
            raise UnknownStation(f"no station {station[:64]!r}")
        people = [p["name"] for p in self.store.escalation_list()]
        return self.escalation.reject(self.now(), station, alarm, person, people)

    def accept_escalation(self, station: str, alarm: str, person: str) -> bool:
        """``person`` takes the alarm: every replica stops escalating it. False if there is
        nothing (left) to accept."""
        if not self.escalation.accept(station, alarm, person):
            return False
        self.store.accept_chase(station, alarm, person)
        return True

    async def hand_on(self, notice: Notice) -> None:
        """Send a hand-on (after a rejection) if this replica wins the step, and wait."""
        task = self._claim_and_send(notice)
        if task is not None:
            await task

    # -- MQTT ------------------------------------------------------------------------------

    def _mqtt(self, link: str) -> aiomqtt.Client:
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

    async def run(self, stop: asyncio.Event) -> None:
        """Listen to every station, keep time and escalate until ``stop``; each of these is a
        supervised task (a crash is logged, shown in ``problems`` and restarted), and the
        ``link.lost`` ticker depends on nothing else."""
        for row in self.store.stations():  # the stations of earlier runs: their state too
            if row["site"] is not None and self.settings.hub.sites:
                self.site_of[row["name"]] = row["site"]
            with contextlib.suppress(ValueError):
                self._hear_of(Topics.of(row["name"]).station)
        bodies: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            link: functools.partial(self._listen, stop, link) for link in LINKS
        }
        bodies["hub ticker"] = functools.partial(self._ticker, stop)
        bodies["hub escalation"] = functools.partial(self._escalator, stop)
        tasks = [
            asyncio.create_task(supervise(name, body, stop, self.problems, self.crashes))
            for name, body in bodies.items()
        ]
        try:
            await stop.wait()
        finally:
            await cancel_and_wait(*tasks, *self._sending)

    async def _listen(self, stop: asyncio.Event, link: str) -> None:
        backoff = self.settings.mqtt.backoff_min_s
        client = self._mqtt(link)
        main = link == "hub listener"
        while not stop.is_set():
            try:
                async with client:
                    if main:
                        self._client = client
                    for topic in self._subscriptions(link):
                        await client.subscribe(topic, qos=1)
                    if not main:
                        self.state_subscribed = set()
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
                    self._client = None
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
        count = 0
        async for message in client.messages:
            try:
                await self._handle(str(message.topic), _bytes(message.payload), message.retain)
            except asyncio.CancelledError:
                raise  # not handled: the broker gives it again (the session is kept)
            except Exception:
                if ack:  # a bug past parsing: not again, or it would hold up every other one
                    _ack(client, message)
                raise
            if ack:
                _ack(client, message)
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    def _store_down(self, exc: StoreUnavailable) -> None:
        if "store" not in self.problems:
            self.store_outages += 1
            log.warning("hub: the database is unreachable (%s); waiting for it", exc)
        self.problems["store"] = f"the hub's database is unreachable: {exc}"[:300]

    async def _handle(self, topic: str, payload: bytes, retained: bool) -> None:
        """One message; while the database is unreachable (a PostgreSQL restart), wait and
        try the same message again: it is not dropped, and the broker holds what follows."""
        backoff = 0.05
        while True:
            try:
                self._message(topic, payload, retained)
            except StoreUnavailable as exc:
                self._store_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, STORE_RETRY_MAX_S)
                continue
            if self.problems.pop("store", None) is not None:
                log.info("hub: the database is back")
            return

    def _hear_of(self, station: str) -> None:
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
        site = self.site_of.get(station)
        return topic if site is None else f"{SITES_ROOT}/{site}/{topic}"

    async def _keep_state_synced(self, client: aiomqtt.Client) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # a mute ends within a second of its time
                    await self._resync.wait()
            self._resync.clear()
            await self._sync_state(client)

    def _message(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """One message: parsed into its model first; a bad one is counted and dropped (its
        source logged once), and touches nothing. Failures past parsing (the store) are not
        caught here: the listener's supervisor logs them and shows them as a problem."""
        self.received += 1
        station, kind = "?", "?"
        site = None
        try:
            if topic.startswith(f"{SITES_ROOT}/") and self.settings.hub.sites:
                site, topic = _site_topic(topic)
                if topic == "bridge":
                    self._bridge(site, payload)
                    return
            station, kind = parse_topic(topic)
            if site is not None:
                self.site_of.setdefault(station, site)
            if kind in RATE_LIMITED and not self._limit.allow(f"{station}/{kind}", self.now()):
                self._flooding(station, kind)
                return
            message = parse_hub_message(station, kind, payload)
        except Rejected as exc:
            self._rejected(station, kind, str(exc), retained)
            return
        if message is not None:
            self._apply(message)

    def _bridge(self, site: str, payload: bytes) -> None:
        """A site's bridge connected (``1``) or went down (``0``, its last will): its
        stations cannot be heard, so their ``link.lost`` is raised at once (it clears with
        each one's next heartbeat through the bridge)."""
        if payload not in (b"0", b"1"):
            self._rejected(site, "bridge", f"not a bridge state: {payload[:16]!r}", False)
            return
        up = payload == b"1"
        if self.bridges.get(site) != up:
            log.log(
                logging.INFO if up else logging.WARNING,
                "hub: site %s's bridge is %s",
                site,
                "up" if up else "DOWN",
            )
            self.bridges[site] = up
            self._event({"kind": "site", "site": site, "bridge_up": up})
            stations = sorted(s for s, at in self.site_of.items() if at == site)
            self._hub_events(self.core.site(self.now(), stations, up))
        key = f"site {site}"
        if up:
            self.problems.pop(key, None)
        else:
            self.problems[key] = (
                f"site {site}'s bridge to this hub is down: its stations are unseen"
            )

    def _flooding(self, station: str, kind: str) -> None:
        if kind == "state" and station not in self.muted:
            self._mutes[station] += 1
            mute_s = min(MUTE_S * 2 ** (self._mutes[station] - 1), MUTE_MAX_S)
            self.muted[station] = self.now() + mute_s
            self._resync.set()
            log.warning(
                "hub: station %s floods its state: not listening to it for %.0f s", station, mute_s
            )
        self.rate_limited[station] += 1
        n = self.rate_limited[station]
        if n == 1:
            log.warning(
                "hub: station %s sends more than %.0f messages a second; dropping the excess "
                "(counted, not logged)",
                station,
                self.settings.hub.state_rate_per_s,
            )
        if n == 1 or n % 1000 == 0:
            self.problems[f"flood {station}"] = (
                f"station {station} floods the hub: {n} messages dropped unread"
            )

    def _rejected(self, station: str, kind: str, reason: str, retained: bool) -> None:
        what = f"{'retained ' if retained else ''}{kind} message"
        if self.rejections.add(station, kind, reason):
            log.warning(
                "hub: dropped a malformed %s from station %s: %s (further ones from %s are "
                "counted, not logged)",
                what,
                station,
                reason,
                station,
            )
            self.store.audit(
                "hub", "malformed message refused", {"station": station, "topic": kind}
            )
        n = self.rejections.by_source()[station]
        self.problems[f"mqtt {station}"] = (
            f"{n} malformed MQTT message{'s' if n != 1 else ''} from {station} dropped "
            f"(last: {self.rejections.last[station]})"
        )

    def _apply(self, message: HubMessage) -> None:
        t = self.now()
        station = message.station
        self._hear_of(station)
        if isinstance(message, StatusMessage):
            self._hub_events(self.core.status(t, station, message.status))
            self.store.seen(station, message.status, self.site_of.get(station))
        elif isinstance(message, StateMessage):
            if station not in self.core.stations:
                self.store.seen(station, "online", self.site_of.get(station))
            self._hub_events(self.core.state(t, station, message.model_dump(mode="json")))
        elif isinstance(message, AlarmMessage):
            self._alarm(message)
        elif isinstance(message, ReplyMessage):
            self._event({"kind": "reply", **message.model_dump(mode="json")})
        # telemetry: not subscribed (it stays in the broker for whoever watches live curves)

    def _alarm(self, message: AlarmMessage) -> None:
        event = message.event_obj()
        if self.store.add_station_event(message.station, message.seq, message.at, event):
            self._latency(message.at)
            self._event(
                {
                    "kind": "alarm",
                    "station": message.station,
                    "seq": message.seq,
                    **event.to_json(),
                    **({"at": message.at} if isinstance(message.at, str) else {}),
                }
            )

    def _latency(self, at: object) -> None:
        """Station commit to hub store, from the event's wall time (same clock on one host)."""
        if isinstance(at, str):
            try:
                sent = datetime.fromisoformat(at)
            except ValueError:
                return
            delta = datetime.now().astimezone() - sent
            self.latencies_ms.append(delta.total_seconds() * 1000)
            if len(self.latencies_ms) > 100_000:
                del self.latencies_ms[:50_000]

    def _hub_events(self, events: Sequence[tuple[str, AlarmEvent]]) -> None:
        for station, event in events:
            row = self.store.add_hub_event(station, event)
            self._event({"kind": "hub_alarm", "station": station, "row": row, **event.to_json()})

    async def command(
        self,
        station: str,
        cmd: Literal["acknowledge", "silence", "end_session"],
        alarm: str | None,
        by: str,
    ) -> str:
        """Send a command to a station; returns its id (the reply comes on the stream)."""
        client = self._client
        if client is None:
            raise ConnectionError("the hub is not connected to the broker")
        command_id = secrets.token_hex(6)
        body: dict[str, Any] = {"cmd": cmd, "by": by, "id": command_id}
        if alarm is not None:
            body["alarm"] = alarm
        topic = Topics.of(station).cmd
        if station in self.site_of:  # through that site's bridge
            topic = f"{SITES_ROOT}/{self.site_of[station]}/{topic}"
        await client.publish(topic, encode(body), qos=1)
        self.store.audit(by, f"{cmd} sent", {"station": station, "alarm": alarm, "id": command_id})
        return command_id

    # -- time: link watchdog, escalation, snapshots ------------------------------------------

    async def _ticker(self, stop: asyncio.Event) -> None:
        """``link.lost`` for silent stations, and the pages' snapshots."""
        while not stop.is_set():
            t = self.now()
            events = self.core.tick(t)
            if self.last_tick is not None:
                for station, event in events:
                    if event.id == LINK_LOST and event.event is EventKind.RAISED:
                        self.link_lost_tick_gap_s[station] = t - self.last_tick
            self.last_tick = t
            self._hub_events(events)
            self._send(Message("snapshot", self.snapshot()))
            await asyncio.sleep(SNAPSHOT_EVERY_S / 4)

    async def _escalator(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._escalate(self.now())
            except StoreUnavailable as exc:  # shown; the round is done again when it is back
                self._store_down(exc)
            await asyncio.sleep(ESCALATE_EVERY_S)

    async def _escalate(self, t: float) -> None:
        """One round: take in what other replicas did (from the store), let the core say
        what is due, and carry out each step this replica wins in the store: whoever wins a
        step sends and records it; the others keep it pending and try again each round, so a
        replica dying mid-send is taken over once its claim lapses (``CLAIM_LEASE_S``)."""
        names = [p["name"] for p in self.store.escalation_list()]
        for (station, alarm), (handed_to, accepted_by) in self.store.open_chases().items():
            self.escalation.adopt(t, station, alarm, handed_to, accepted_by, names)
        before = set(self.escalation.chases)
        notices, steps = self.escalation.due(t, self.core.alarm_list(), names)
        # Ended here (acknowledged, resolved, or accepted and over): closed in the store once,
        # so the alarm's next raise is a new escalation on every replica.
        closed = {
            key for key in before - set(self.escalation.chases) if self.store.close_chase(*key)
        }
        for station, alarm, step in steps:
            person, _, what = step.partition(":")
            if what in ("sent", "repeated"):
                continue  # recorded by the replica that sends it
            if what.startswith("ended"):
                if (station, alarm) in closed:
                    self.store.escalation_step(station, alarm, "", person, what)
                continue
            if self.store.claim_step(station, alarm, step, self.replica) is Claim.MINE:
                self.store.escalation_step(station, alarm, "", person, what)
                self.store.step_done(station, alarm, step)
        for notice in notices:
            self._pending[(notice.station, notice.alarm, notice.step)] = notice
        for key, notice in list(self._pending.items()):
            if (notice.station, notice.alarm) not in self.escalation.chases:
                del self._pending[key]  # ended meanwhile
            else:
                self._claim_and_send(notice)

    def _claim_and_send(self, notice: Notice) -> asyncio.Task[None] | None:
        """Claim ``notice``'s step in the store; if this replica wins, send it (a task)."""
        key = (notice.station, notice.alarm, notice.step)
        handed_to = None if notice.repeat else notice.person
        claim = self.store.claim_step(
            notice.station, notice.alarm, notice.step, self.replica, handed_to
        )
        if claim is Claim.TAKEN:
            self._pending[key] = notice  # another replica has it: watch that it is done
            return None
        self._pending.pop(key, None)
        if claim is Claim.ACCEPTED:
            chase = self.escalation.chases.get((notice.station, notice.alarm))
            if chase is not None and chase.accepted_by is None:
                self.escalation.accept(notice.station, notice.alarm, "(another replica)")
            return None
        if claim is Claim.DONE:
            return None
        self.store.escalation_step(
            notice.station, notice.alarm, "", notice.person, "repeated" if notice.repeat else "sent"
        )
        url = next(
            (p["push_url"] for p in self.store.escalation_list() if p["name"] == notice.person),
            None,
        )
        task = asyncio.create_task(self._send_notice(notice, url))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return task

    async def _send_notice(self, notice: Notice, url: str | None) -> None:
        if url is None:
            return
        from monitor.settings import redact
        from monitor.sinks.push import PushConfigError, PushMessage, apprise_sender

        where = self.settings.hub.public_url or ""
        message = PushMessage(
            0.0,
            notice.alarm,
            Priority.parse(notice.priority),
            f"Spotter {notice.station}: {notice.priority.upper()} alarm",
            f"{notice.priority.upper()} · {notice.station} · {notice.message}"
            + (f" · accept at {where}" if where else ""),
            int(notice.repeat),
        )
        try:
            ok = await asyncio.to_thread(apprise_sender([url]), 0, message)
        except PushConfigError as exc:
            ok = False
            log.warning("escalation to %s: %s", notice.person, exc)
        step = "delivered" if ok else f"delivery failed ({redact(url)})"
        try:
            self.store.escalation_step(
                notice.station, notice.alarm, notice.priority, notice.person, step
            )
            if notice.step:
                self.store.step_done(notice.station, notice.alarm, notice.step)
        except StoreError as exc:
            log.error("hub store failing: %s", exc)


def _ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """PUBACK a handled QoS 1 message (the main link acknowledges by hand: see ``_mqtt``)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


def _site_topic(topic: str) -> tuple[str, str]:
    """``sites/{site}/rest`` -> (site, rest); :class:`Rejected` for a malformed one."""
    parts = topic.split("/", 2)
    if len(parts) != 3 or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", parts[1]):
        raise Rejected(f"not a site topic: {topic[:100]!r}")
    return parts[1], parts[2]


def _bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return str(payload).encode()
