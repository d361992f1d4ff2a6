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
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from dashboard.clinic.core import LINK_LOST, HubCore, Notice
from dashboard.clinic.escalation import Escalator
from dashboard.clinic.links import SITES_ROOT, HubLinks, Incoming
from dashboard.clinic.pg import StoreUnavailable
from dashboard.clinic.settings import (
    STATE_RATE_PER_S,
    EscalationSection,
    HubConfigError,
    HubSection,
    HubSettings,
    load_hub_settings,
)
from dashboard.clinic.store import HubStore
from dashboard.clinic.view import Sites, hub_view
from dashboard.live import FanOut, Message
from monitor.core.alarms import AlarmEvent, EventKind
from monitor.mqtt.protocol import (
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
from monitor.store.database import now_iso
from monitor.supervise import cancel_and_wait, supervise

__all__ = [
    "STATE_RATE_PER_S",
    "EscalationSection",
    "Hub",
    "HubConfigError",
    "HubSection",
    "HubSettings",
    "UnknownStation",
    "load_hub_settings",
]
"""The settings' names stay importable from here (they live in :mod:`dashboard.clinic.settings`)."""

log = logging.getLogger(__name__)
SNAPSHOT_EVERY_S = 1.0


class UnknownStation(LookupError):
    """A station name the hub has never heard of (a made-up name from a request)."""


RATE_LIMITED = frozenset({"state", "status", "cmd/reply"})
STORE_RETRY_MAX_S = 2.0
PEOPLE_REFRESH_S = 2.0
"""The snapshot's count of the escalation list is read from the store at most this often."""


class Hub(FanOut):
    """The hub's state, its MQTT link and its fan-out to open pages (messages: ``event``, id a
    hub-wide counter, and ``snapshot``)."""

    def __init__(self, settings: HubSettings, store: HubStore) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.replica = settings.hub.replica or f"{socket.gethostname()}-{os.getpid()}"
        """Who this hub is when claiming escalation steps in a shared store."""
        self.escalator = Escalator(
            store,
            settings.escalation,
            self.replica,
            settings.hub.public_url,
            (self.now, self.core_alarms),
            self._store_down,
        )
        self.escalation = self.escalator.escalation
        self.site_of: dict[str, str] = {}
        """Stations heard through a site's bridge (a central hub), and which site."""
        self.bridges: dict[str, bool] = {}
        """Each site's bridge to the central broker: up (True) or down."""
        self.store_outages = 0
        """Times the database became unreachable (each waited out, shown in ``problems``)."""
        self._people_count = 0
        self._people_read_at: float | None = None
        self.core = HubCore(settings.hub.link_timeout_s)
        self.events: list[Message] = []
        """Every event this run fanned out (ids count from 1), for catch-up."""
        self._held: list[dict[str, Any]] | None = None
        """While a batch of messages is being stored: its events, fanned out after the
        commit."""
        self._held_at: list[object] = []
        """And the commit times of its stations' alarm events (for ``latencies_ms``)."""
        self.links = HubLinks(settings, self.site_of, self._handle_batch, self.now)
        self.connected = self.links.connected
        """Both broker connections are up and subscribed."""
        self.muted = self.links.muted
        """Flooding stations, unsubscribed until (the hub's clock)."""
        self.state_subscribed = self.links.state_subscribed
        """Stations whose ``state`` the state link is subscribed to now."""
        self.received = 0
        self.last_tick: float | None = None
        """When the ticker last looked at the stations (the hub's clock)."""
        self.link_lost_tick_gap_s: dict[str, float] = {}
        """For each station whose ``link.lost`` the ticker raised (the last time): how long
        since the tick before, on the hub's clock. The alarm's lateness (its value minus the
        timeout) is at most this, by construction: the tick before found it not yet silent
        long enough (benchmarks judge the ticker with it; a busy machine makes it long)."""
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

    def core_alarms(self) -> list[dict[str, Any]]:
        """Every listed alarm of every station, most urgent first (what is escalated)."""
        return self.core.alarm_list()

    # -- fan-out ---------------------------------------------------------------------------

    def _event(self, data: dict[str, Any]) -> None:
        data.setdefault("at", now_iso())  # a station's event keeps its own commit time
        if self._held is not None:
            self._held.append(data)  # shown once the batch is stored
        else:
            self._fan_out(data)

    def _fan_out(self, data: dict[str, Any]) -> None:
        message = Message("event", data, len(self.events) + 1)
        self.events.append(message)
        self._send(message)

    def snapshot(self) -> dict[str, Any]:
        """Every station as a tile, the merged alarm list, open escalations (see
        :func:`dashboard.clinic.view.hub_view`)."""
        return hub_view(
            self.core,
            self.escalation,
            Sites(self.site_of, self.bridges),
            self.now(),
            self._escalation_people(),
            {"problems": dict(self.problems), "mqtt_rejected": self.rejections.as_json()},
        )

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

    def acknowledge(self, station: str, by: str) -> bool:
        """``by`` acknowledges the hub's own ``link.lost`` of ``station`` here (audited);
        False when the hub lists none for it (the station's own alarms are acknowledged there,
        by :meth:`command`)."""
        view = self.core.stations.get(station)
        if view is None or LINK_LOST not in view.alarms.alarms:
            return False
        self._hub_events(self.core.acknowledge(self.now(), station, by))
        self.store.audit(by, "acknowledged", {"station": station, "alarm": LINK_LOST})
        return True

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
        return self.escalator.reject(self.now(), station, alarm, person)

    def accept_escalation(self, station: str, alarm: str, person: str) -> bool:
        """``person`` takes the alarm: every replica stops escalating it. False if there is
        nothing (left) to accept."""
        return self.escalator.accept(station, alarm, person)

    async def hand_on(self, notice: Notice) -> None:
        """Send a hand-on (after a rejection) if this replica wins the step, and wait."""
        await self.escalator.hand_on(notice)

    # -- MQTT ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Listen to every station, keep time and escalate until ``stop``; each of these is a
        supervised task (a crash is logged, shown in ``problems`` and restarted), and the
        ``link.lost`` ticker depends on nothing else."""
        for row in self.store.stations():  # the stations of earlier runs: their state too
            if row["site"] is not None and self.settings.hub.sites:
                self.site_of[row["name"]] = row["site"]
            with contextlib.suppress(ValueError):
                self.links.hear_of(Topics.of(row["name"]).station)
        bodies = self.links.bodies(stop)
        bodies["hub ticker"] = functools.partial(self._ticker, stop)
        bodies["hub escalation"] = functools.partial(self.escalator.run, stop)
        tasks = [
            asyncio.create_task(supervise(name, body, stop, self.problems, self.crashes))
            for name, body in bodies.items()
        ]
        try:
            await stop.wait()
        finally:
            await cancel_and_wait(*tasks, *self.escalator.sending)

    def _store_down(self, exc: StoreUnavailable) -> None:
        if "store" not in self.problems:
            self.store_outages += 1
            log.warning("hub: the database is unreachable (%s); waiting for it", exc)
        self.problems["store"] = f"the hub's database is unreachable: {exc}"[:300]

    async def _handle_batch(self, batch: list[Incoming]) -> None:
        """Messages from a broker link, each acknowledged once handled. On one SQLite file
        a batch of more than one message that writes (not heartbeats) is stored in one
        transaction (one fsync, not one each: the cost of a busy hub) and its events reach
        the pages after the commit, as a single message's do. A
        failure past parsing stops the batch: what came before is kept and acknowledged, the
        failing message acknowledged too, the rest left to come again, and it is raised."""
        heartbeats = sum(1 for m in batch if m.topic.endswith("/state"))  # rarely write
        if len(batch) - heartbeats < 2 or not self.store.groups_writes:
            for message in batch:
                try:
                    await self._handle(message.topic, message.payload, message.retained)
                except asyncio.CancelledError:
                    raise  # not handled: the broker gives it again (the session is kept)
                except Exception:
                    message.ack()
                    raise
                message.ack()
            return
        failed: Exception | None = None
        handled: list[Incoming] = []
        self._held, self._held_at = [], []
        try:
            with self.store.group():
                for message in batch:
                    handled.append(message)
                    try:
                        self._message(message.topic, message.payload, message.retained)
                    except Exception as exc:  # raised below, once the others are kept
                        failed = exc
                        break
            held = self._held
        finally:
            self._held = None
        for at in self._held_at:
            self._latency(at)
        for data in held:
            self._fan_out(data)
        for message in handled:
            message.ack()
        if failed is not None:
            raise failed

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
        if kind == "state":
            self.links.mute(station)
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
        self.links.hear_of(station)
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
            if self._held is None:
                self._latency(message.at)
            else:
                self._held_at.append(message.at)  # measured once the batch is committed
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
        if self.links.client is None:
            raise ConnectionError("the hub is not connected to the broker")
        command_id = secrets.token_hex(6)
        body: dict[str, Any] = {"cmd": cmd, "by": by, "id": command_id}
        if alarm is not None:
            body["alarm"] = alarm
        topic = Topics.of(station).cmd
        if station in self.site_of:  # through that site's bridge
            topic = f"{SITES_ROOT}/{self.site_of[station]}/{topic}"
        await self.links.publish(topic, encode(body))
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
            if self.clients:  # a page open: no snapshot is made for nobody
                self._send(Message("snapshot", self.snapshot()))
            await asyncio.sleep(SNAPSHOT_EVERY_S / 4)


def _site_topic(topic: str) -> tuple[str, str]:
    """``sites/{site}/rest`` -> (site, rest); :class:`Rejected` for a malformed one."""
    parts = topic.split("/", 2)
    if len(parts) != 3 or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", parts[1]):
        raise Rejected(f"not a site topic: {topic[:100]!r}")
    return parts[1], parts[2]
