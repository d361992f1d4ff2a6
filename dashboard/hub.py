"""``spotter hub``: the clinic's central station. Subscribes to every station over MQTT,
keeps its own store, raises ``link.lost`` for a silent station, escalates alarms to the
supervising therapists, and sends acknowledge / silence / end-session commands back.

The pure parts are in :mod:`dashboard.hub_core`; this is the shell around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import tomllib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from dashboard.hub_core import LINK_TIMEOUT_S, Escalation, HubCore, Notice
from dashboard.hub_store import HubStore
from dashboard.live import FanOut, Message
from monitor.alarms import AlarmEvent, Priority
from monitor.mqtt import MqttConfig
from monitor.mqtt_protocol import TOPIC_ROOT, Topics, encode
from monitor.store import StoreError

log = logging.getLogger(__name__)
SNAPSHOT_EVERY_S = 1.0


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


def load_hub_settings(path: str | Path | None) -> HubSettings:
    """The hub's TOML file (None: defaults); errors name the file and every bad key.

    ``$SPOTTER_MQTT__PASSWORD`` gives the broker password when the file does not.
    """
    settings = _load_hub_file(path)
    secret = os.environ.get("SPOTTER_MQTT__PASSWORD")
    if settings.mqtt.password is None and secret:
        settings.mqtt.password = SecretStr(secret)
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
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(
                f"{key}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}"
            )
        raise HubConfigError(f"{file}: " + "; ".join(problems)) from None


class Hub(FanOut):
    """The hub's state, its MQTT link and its fan-out to open pages (messages: ``event``, id a
    hub-wide counter, and ``snapshot``)."""

    def __init__(self, settings: HubSettings, store: HubStore) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.core = HubCore(settings.hub.link_timeout_s)
        e = settings.escalation
        self.escalation = Escalation(e.accept_within_s, e.repeat_s, e.medium_after_s)
        self.events: list[Message] = []
        """Every event this run fanned out (ids count from 1), for catch-up."""
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.received = 0
        self._sending: set[asyncio.Task[None]] = set()
        self.latencies_ms: list[float] = []
        """Alarm latency: station commit to hub store, when clocks allow (benchmarks)."""

    def now(self) -> float:
        """The hub's monotonic clock."""
        return asyncio.get_running_loop().time()

    # -- fan-out ---------------------------------------------------------------------------

    def _event(self, data: dict[str, Any]) -> None:
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
            tiles.append(
                {
                    "station": name,
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
        return {"stations": tiles, "alarms": self.core.alarm_list(), "escalations": chases}

    # -- MQTT ------------------------------------------------------------------------------

    def _mqtt(self) -> aiomqtt.Client:
        c = self.settings.mqtt
        return aiomqtt.Client(
            c.host,
            c.broker_port,
            username=c.username or "hub",
            password=None if c.password is None else c.password.get_secret_value(),
            # A persistent session: the broker keeps what the stations send while the hub is
            # away (QoS 1), and the store de-duplicates what comes twice.
            identifier=c.client_id or f"spotter-hub-{self.settings.hub.name}",
            clean_session=False,
            keepalive=c.keepalive_s,
            timeout=c.timeout_s,
            tls_context=c.tls_context(),
            logger=logging.getLogger(f"{__name__}.paho"),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Listen to every station and keep time until ``stop``."""
        tasks = [asyncio.create_task(self._listen(stop)), asyncio.create_task(self._ticker(stop))]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self, stop: asyncio.Event) -> None:
        backoff = self.settings.mqtt.backoff_min_s
        client = self._mqtt()
        while not stop.is_set():
            try:
                async with client:
                    self._client = client
                    await client.subscribe(f"{TOPIC_ROOT}/+/status", qos=1)
                    await client.subscribe(f"{TOPIC_ROOT}/+/state", qos=1)
                    await client.subscribe(f"{TOPIC_ROOT}/+/alarms", qos=1)
                    await client.subscribe(f"{TOPIC_ROOT}/+/cmd/reply", qos=1)
                    self.connected.set()
                    backoff = self.settings.mqtt.backoff_min_s
                    async for message in client.messages:
                        self._message(str(message.topic), _bytes(message.payload))
            except aiomqtt.MqttError as exc:
                log.warning("hub: broker link down (%s); retrying in %.1f s", exc, backoff)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.mqtt.backoff_max_s)

    def _message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 4:
            return
        station, kind = parts[2], "/".join(parts[3:])
        t = self.now()
        self.received += 1
        try:
            if kind == "status":
                self._hub_events(self.core.status(t, station, payload.decode()))
                self.store.seen(station, payload.decode())
            elif kind == "state":
                state = json.loads(payload)
                if station not in self.core.stations:
                    self.store.seen(station, "online")
                self._hub_events(self.core.state(t, station, state))
            elif kind == "alarms":
                self._alarm(station, json.loads(payload))
            elif kind == "cmd/reply":
                reply = json.loads(payload)
                self._event({"kind": "reply", "station": station, **reply})
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            log.warning("hub: refused a malformed %s message from %s: %s", kind, station, exc)
            self.store.audit(
                "hub", "malformed message refused", {"station": station, "topic": kind}
            )

    def _alarm(self, station: str, payload: dict[str, Any]) -> None:
        event = AlarmEvent.from_json(payload)
        seq = int(payload["seq"])
        if self.store.add_station_event(station, seq, payload.get("at"), event):
            self._latency(payload.get("at"))
            self._event({"kind": "alarm", "station": station, "seq": seq, **event.to_json()})

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
            self.store.add_hub_event(station, event)
            self._event({"kind": "hub_alarm", "station": station, **event.to_json()})

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
        await client.publish(Topics.of(station).cmd, encode(body), qos=1)
        self.store.audit(by, f"{cmd} sent", {"station": station, "alarm": alarm, "id": command_id})
        return command_id

    # -- time: link watchdog, escalation, snapshots ------------------------------------------

    async def _ticker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = self.now()
            self._hub_events(self.core.tick(t))
            await self._escalate(t)
            self._send(Message("snapshot", self.snapshot()))
            await asyncio.sleep(SNAPSHOT_EVERY_S / 4)

    async def _escalate(self, t: float) -> None:
        people = self.store.escalation_list()
        names = [p["name"] for p in people]
        urls = {p["name"]: p["push_url"] for p in people}
        notices, steps = self.escalation.due(t, self.core.alarm_list(), names)
        for station, alarm, step in steps:
            person, _, what = step.partition(":")
            self.store.escalation_step(station, alarm, "", person, what)
        for notice in notices:
            task = asyncio.create_task(self._send_notice(notice, urls.get(notice.person)))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_notice(self, notice: Notice, url: str | None) -> None:
        if url is None:
            return
        from monitor.sinks.push import PushConfigError, PushMessage, apprise_sender, redact

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
        except StoreError as exc:
            log.error("hub store failing: %s", exc)


def _bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return str(payload).encode()
