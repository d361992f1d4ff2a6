"""The station's MQTT bridge to the clinic hub and Home Assistant (SPEC section 9).

Topics and payloads: :mod:`monitor.mqtt.protocol`.

Nothing waits on the network in the safety loop: :meth:`MqttBridge.alarm_events` and
:meth:`MqttBridge.tick` only set flags and append to bounded buffers; one task
(:meth:`MqttBridge.run`) owns the connection and does all I/O, every await with a timeout.

Alarm events are not queued in memory: the store is the queue. The bridge keeps the last
sequence number it saw acknowledged (QoS 1 PUBACK) in the store (``mqtt.last_seq``) and,
after every (re)connect and every commit, publishes ``events_since(last_seq)`` in order, so a
broker outage or a restart of the station loses nothing and repeats nothing it knows was
delivered. MQTT QoS 1 is at-least-once: an event whose PUBACK was lost with the connection is
sent again, so receivers de-duplicate by ``seq``.

Each connection uses a new client: paho re-sends unacknowledged QoS 1 messages itself on a
reconnect of the same client, which alongside the replay from the store would send an event
twice (and an old ``state`` after the fresh one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

import aiomqtt

from monitor.core.alarms import AlarmEvent
from monitor.mqtt import homeassistant
from monitor.mqtt.protocol import (
    INPUT_OF,
    OFFLINE,
    ONLINE,
    Acknowledge,
    CommandRefused,
    EndSession,
    Rejections,
    Silence,
    Topics,
    alarm_payload,
    command_id,
    encode,
    parse_command,
)
from monitor.settings import MqttConfig
from monitor.station.status import station_state
from monitor.store.database import StoreError, now_iso
from monitor.store.station_store import Store
from monitor.store.writer import InlineWriter, Writer
from monitor.supervise import cancel_and_wait, first_done, supervise

if TYPE_CHECKING:
    from monitor.core.engine import SafetyCore
    from monitor.station.station import Station

log = logging.getLogger(__name__)

LAST_SEQ_KEY = "mqtt.last_seq"
EVENT_BATCH = 200
TELEMETRY_BUFFER = 100
"""Samples kept at most between two telemetry messages (10 s at 10 Hz); older ones drop."""
REPLY_BUFFER = 32
INCOMING_BUFFER = 64
AUDIT_REFUSED_MAX = 100
"""Refused commands written to the audit log per source; later ones are only counted (a flood
of bad commands must not become a flood of disk writes)."""

LinkHook = Callable[[bool, float], None]
"""``on_link_change(up, down_for_s)``: the broker link was lost (``up`` False, silent for
``down_for_s``) or is back (``up`` True, after ``down_for_s`` of silence)."""


# -- configuration -----------------------------------------------------------------------


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


def _sample(core: SafetyCore) -> tuple[float, float | None, float | None]:
    """(t, θ, HR) now, with None where the signal is stale (as the state JSON shows it)."""
    t, s, p = core.t, core.signals, core.profile
    theta = s.theta if s.theta is not None and t - s.tilt_seen_t < p.tilt_lost_delay_s else None
    hr = s.hr_bpm if s.hr_bpm is not None and t - s.hr_seen_t < p.hr_lost_delay_s else None
    return (
        round(t, 3),
        None if theta is None else round(theta, 1),
        None if hr is None else round(hr),
    )


# -- the bridge --------------------------------------------------------------------------


class MqttBridge:
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
        self.on_link_change = on_link_change
        self._clock = clock
        self._tls = config.tls_context()  # read the certificates now: a bad path fails at start
        self._version = _version()
        self.station: Station | None = None
        self._wake = asyncio.Event()
        self._samples: deque[tuple[float, float | None, float | None]] = deque(
            maxlen=TELEMETRY_BUFFER
        )
        self._replies: deque[dict[str, Any]] = deque(maxlen=REPLY_BUFFER)
        self._events_due = True
        self._discovery_due = False
        self._connected = False
        self._started = clock()
        self._last_ok: float | None = None
        """When the broker last acknowledged something (CONNACK, PUBACK, SUBACK)."""
        self._lost_at: float | None = None
        self._last_error = "not connected yet"
        self._store_error: str | None = None
        self.rejections = Rejections()
        """Refused commands, per source (the hub: the only writer of ``cmd``) and topic."""
        self.crashes: Counter[str] = Counter()
        """Crashes of the bridge's task (each logged, shown as a problem, restarted)."""
        saved = store.setting(station_name, LAST_SEQ_KEY)
        self._last_seq = int(saved) if saved is not None else self._start_here()

    def _start_here(self) -> int:
        """A first run: start after the events already committed (no history flood)."""
        seq = latest_seq(self.store)
        self._save_seq(seq)
        return seq

    # -- what the station calls (the safety loop: never block) ----------------------------

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Events were committed to the store: publish them (from the store) soon."""
        self._events_due = True
        self._wake.set()

    def tick(self, t: float) -> None:
        """Every 0.1 s: take a telemetry sample, watch the link, wake the I/O task."""
        if self.station is not None and self.config.telemetry:
            self._samples.append(_sample(self.station.core))
        self._watch_link()
        self._wake.set()

    # -- what others read -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Connected to the broker now."""
        return self._connected

    @property
    def link_lost(self) -> bool:
        """The broker has acknowledged nothing for ``link_lost_after_s`` after having been
        reachable (SPEC section 7: ``link.lost`` on the station's side)."""
        return self._lost_at is not None

    @property
    def last_seq(self) -> int:
        """The last alarm sequence number the broker acknowledged."""
        return self._last_seq

    # -- the link watch ---------------------------------------------------------------------

    def _watch_link(self) -> None:
        now = self._clock()
        limit = self.config.link_lost_after_s
        station = self.station
        if self._last_ok is None:  # never reached the broker: a problem, not a lost link
            if station is not None and now - self._started >= limit:
                station.problems["mqtt"] = (
                    f"cannot reach the MQTT broker {self._where()}: {self._last_error}"
                )
            return
        silent_s = now - self._last_ok
        if self._lost_at is None and silent_s >= limit:
            self._lost_at = self._last_ok
            log.warning("MQTT link lost: nothing from %s for %.1f s", self._where(), silent_s)
            if station is not None:
                why = "" if self._connected else f" ({self._last_error})"
                station.problems["mqtt"] = (
                    f"no answer from the MQTT broker {self._where()} for {silent_s:.0f} s{why}"
                )
            self._tell(False, silent_s)
        elif self._lost_at is not None and silent_s < limit:
            down_s = self._last_ok - self._lost_at
            self._lost_at = None
            log.info("MQTT link back after %.1f s", down_s)
            if station is not None:
                station.problems.pop("mqtt", None)
            self._tell(True, down_s)
        elif self._lost_at is None and station is not None:
            station.problems.pop("mqtt", None)

    def _tell(self, up: bool, down_for_s: float) -> None:
        if self.on_link_change is None:
            return
        try:
            self.on_link_change(up, down_for_s)
        except Exception:  # the bridge must never take the safety loop down; loud, though
            log.exception("on_link_change(%s, %.1f) failed", up, down_for_s)

    def _ok(self) -> None:
        self._last_ok = self._clock()

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.broker_port}"

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
            self._connected = False
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
                self._went_down(exc)
            except Exception as exc:
                self._went_down(exc)
                raise
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()
            backoff = min(backoff * 2, self.config.backoff_max_s)

    def _client(self) -> aiomqtt.Client:
        c = self.config
        return aiomqtt.Client(
            c.host,
            c.broker_port,
            username=c.username or self.topics.station,
            password=None if c.password is None else c.password.get_secret_value(),
            identifier=c.client_id or f"spotter-{self.topics.station}",
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            clean_session=True,
            keepalive=c.keepalive_s,
            timeout=c.timeout_s,
            tls_context=self._tls,
            max_queued_incoming_messages=INCOMING_BUFFER,
            logger=logging.getLogger(f"{__name__}.paho"),
        )

    def _went_down(self, exc: Exception) -> None:
        self._last_error = str(exc) or type(exc).__name__
        if self._connected:
            log.warning("MQTT connection to %s lost: %s", self._where(), self._last_error)
        else:
            log.debug("MQTT connect to %s failed: %s", self._where(), self._last_error)
        self._connected = False

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection: announce, catch up, then serve until it drops or ``stop``."""
        self._ok()
        self._connected = True
        log.info(
            "MQTT connected to %s as %s%s",
            self._where(),
            self.config.username or self.topics.station,
            " (TLS)" if self._tls is not None else "",
        )
        timeout = self.config.timeout_s
        self._samples.clear()  # telemetry is live only
        self._events_due = True
        self._discovery_due = self.config.discovery
        await self._publish(client, self.topics.status, ONLINE, qos=1, retain=True)
        await client.subscribe(self.topics.cmd, qos=1, timeout=timeout)
        if self.config.discovery:
            birth = homeassistant.birth_topic(self.config.discovery_prefix)
            await client.subscribe(birth, qos=1, timeout=timeout)
        self._ok()
        await first_done(self._reader(client), self._writer(client, stop))

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: str, *, qos: int, retain: bool = False
    ) -> None:
        await client.publish(topic, payload, qos=qos, retain=retain, timeout=self.config.timeout_s)
        if qos:
            self._ok()

    async def _reader(self, client: aiomqtt.Client) -> None:
        birth = homeassistant.birth_topic(self.config.discovery_prefix)
        async for message in client.messages:
            payload = _as_bytes(message.payload)
            if message.topic.matches(self.topics.cmd):
                self._command(payload, retained=message.retain)
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
            while self._replies:
                reply = self._replies.popleft()
                await self._publish(client, self.topics.reply, encode(reply), qos=1)
            if self._discovery_due:
                self._discovery_due = False
                await self._publish_discovery(client)
            if self._events_due:
                await self._publish_events(client)
            station = self.station
            if station is not None:
                state = station_state(station, self.topics.station)
                now_sig = _signature(state)
                if now_sig != signature or self._clock() >= next_state:
                    await self._publish(
                        client, self.topics.state, encode(state), qos=1, retain=True
                    )
                    signature = now_sig
                    next_state = self._clock() + c.state_every_s
            if self._clock() >= next_telemetry:
                next_telemetry = self._clock() + c.telemetry_every_s
                if self._samples:
                    await self._publish(client, self.topics.telemetry, self._telemetry(), qos=0)

    async def _publish_events(self, client: aiomqtt.Client) -> None:
        """Every committed event after ``last_seq``, in order, each acknowledged before the
        next; ``last_seq`` advances (and is saved) only after its PUBACK."""
        self._events_due = False
        while True:
            try:
                batch = self.store.events_since(self._last_seq, limit=EVENT_BATCH)
            except StoreError as exc:
                self._store_failing(exc)
                self._events_due = True  # try again at the next wake
                return
            for stored in batch:
                if stored.station == self.topics.station:
                    payload = encode(alarm_payload(stored))
                    await self._publish(client, self.topics.alarms, payload, qos=1)
                self._last_seq = stored.seq
                self._save_seq(stored.seq)
            if len(batch) < EVENT_BATCH:
                return

    def _save_seq(self, seq: int) -> None:
        """Queue the progress for the writer (not waited for: it is kept in memory, and if it
        is lost a restart sends some events again)."""
        station = self.topics.station

        def saved(_: object) -> None:
            self._store_error = None

        self.writer.submit(
            lambda store: store.set_setting(station, LAST_SEQ_KEY, seq), saved, self._store_failing
        )

    def _store_failing(self, exc: Exception) -> None:
        if self._store_error != str(exc):
            log.error("MQTT bridge cannot use the store: %s", exc)
        self._store_error = str(exc)

    async def _publish_discovery(self, client: aiomqtt.Client) -> None:
        prefix = self.config.discovery_prefix
        payload = homeassistant.discovery_config(
            self.topics.station,
            state_topic=self.topics.state,
            status_topic=self.topics.status,
            sw_version=self._version,
        )
        topic = homeassistant.discovery_topic(self.topics.station, prefix)
        await self._publish(client, topic, encode(payload), qos=1, retain=True)

    def _telemetry(self) -> str:
        samples = list(self._samples)
        self._samples.clear()
        return encode(
            {
                "station": self.topics.station,
                "t": [s[0] for s in samples],
                "theta_deg": [s[1] for s in samples],
                "hr_bpm": [s[2] for s in samples],
            }
        )

    # -- commands -----------------------------------------------------------------------------

    def _command(self, payload: bytes, *, retained: bool) -> None:
        """Validate and apply one command from the hub; a bad one is refused, logged,
        audited and answered, and never raises."""
        station = self.station
        if not payload:  # how a retained message is deleted: nothing was asked
            return
        try:
            if retained:
                raise CommandRefused("retained command ignored (publish commands unretained)")
            command = parse_command(payload)
        except CommandRefused as exc:
            self._refused(payload, str(exc), retained)
            return
        if station is None:  # not attached (cannot happen while connected)
            return
        alarm = None if isinstance(command, EndSession) else command.alarm
        listed = alarm is None or alarm in station.core.alarms.alarms
        try:
            station.user_input(INPUT_OF[command.cmd], alarm, command.by)
        except Exception as exc:
            log.exception("MQTT command %s failed", command.cmd)
            self._audit(command.by, "mqtt command failed", {**_detail(command), "error": str(exc)})
            self._reply(command.id, command.cmd, f"failed: {exc}")
            return
        log.info("MQTT command %s%s by %s", command.cmd, f" {alarm}" if alarm else "", command.by)
        self._audit(command.by, "mqtt command", {**_detail(command), "listed": listed})
        note = None if listed else f"alarm {alarm} is not listed: nothing to do"
        self._reply(command.id, command.cmd, None, note)

    def _refused(self, payload: bytes, reason: str, retained: bool) -> None:
        """A bad command: counted, logged once, audited (up to a bound), answered; dropped."""
        source = "hub"  # the broker's ACL lets only the hub write a station's cmd topic
        what = "retained command" if retained else "command"
        if self.rejections.add(source, "cmd", reason):
            log.warning(
                "MQTT %s from the %s refused: %s (further ones are counted, not logged)",
                what,
                source,
                reason,
            )
        n = self.rejections.total
        if n <= AUDIT_REFUSED_MAX:
            excerpt = payload[:200].decode("utf-8", "replace")
            self._audit("mqtt", "mqtt command refused", {"reason": reason, "payload": excerpt})
        if self.station is not None:
            self.station.problems["mqtt commands"] = (
                f"{n} bad MQTT command{'s' if n != 1 else ''} refused "
                f"(last: {self.rejections.last[source]})"
            )
        self._reply(command_id(payload), None, reason)

    def _reply(
        self, cid: str | None, cmd: str | None, error: str | None, note: str | None = None
    ) -> None:
        reply: dict[str, Any] = {"id": cid, "cmd": cmd, "ok": error is None}
        if error is not None:
            reply["error"] = error
        if note is not None:
            reply["note"] = note
        reply |= {"station": self.topics.station, "at": now_iso()}
        self._replies.append(reply)
        self._wake.set()

    def _audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        entry = {**detail, "via": "mqtt"}
        self.writer.submit(
            lambda store: store.audit(actor, action, entry), None, self._store_failing
        )


# -- helpers -------------------------------------------------------------------------------


def _detail(command: Acknowledge | Silence | EndSession) -> dict[str, Any]:
    return command.model_dump(exclude={"by"})


def _signature(state: dict[str, Any]) -> object:
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


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _version() -> str:
    try:
        return metadata.version("inversion-spotter")
    except metadata.PackageNotFoundError:
        return "unknown"
