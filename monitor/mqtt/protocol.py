"""The wire format of Spotter's MQTT topics (SPEC section 9), pure: topic names, payloads,
commands. The station's bridge (:mod:`monitor.mqtt.bridge`) speaks it; the clinic hub reads and
writes the same objects, so a command the hub builds is the one the station validates.

Topics, under ``spotter/v1/{station}/``:

============  =========  =================================================================
``status``    1, retain  ``online`` on connect, ``offline`` as the last will and on a clean stop
``state``     1, retain  :func:`monitor.station.status.station_state` JSON, on change and every 1 s
                         (the station's heartbeat: the hub raises ``link.lost`` after 5 s)
``telemetry`` 0          one message a second: the θ and HR samples of the last second,
                         taken at every 0.1 s tick: ``{"station", "t": [...],
                         "theta_deg": [...], "hr_bpm": [...]}`` (``null`` where unknown)
``alarms``    1          each alarm event: the SPEC 7 object plus ``seq`` (the store's
                         sequence number), ``station`` and ``at`` (when it was committed)
``cmd``       1, read    from the hub: ``{"cmd": "acknowledge", "alarm": ID, "by": WHO}``,
                         ``{"cmd": "silence", "alarm": ID?, "by": WHO}``,
                         ``{"cmd": "end_session", "by": WHO}``, each with an optional ``id``
``cmd/reply`` 1          the answer: ``{"id", "cmd", "ok", "error"?, "note"?, "station",
                         "at"}``
============  =========  =================================================================
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from monitor.core import validation
from monitor.core.alarms import AlarmEvent, EventKind, Priority
from monitor.core.trace import InputKind

if TYPE_CHECKING:
    from monitor.store.alarm_log import StoredEvent

TOPIC_ROOT = "spotter/v1"
ONLINE, OFFLINE = "online", "offline"
"""The ``status`` payloads (``offline`` is also the last will)."""
MAX_COMMAND_BYTES = 4096
MAX_DEPTH = 8
"""The deepest JSON any topic carries (a state's ``alarms`` list of objects is 3 deep); checked
on the raw bytes before any parser recurses, so no payload can raise RecursionError."""
MAX_BYTES: dict[str, int] = {
    "status": 16,
    "state": 64 * 1024,
    "telemetry": 32 * 1024,
    "alarms": 4096,
    "cmd": MAX_COMMAND_BYTES,
    "cmd/reply": 4096,
}
"""The largest payload of each topic kind, checked before anything is parsed."""
STATION_NAME = r"^[A-Za-z0-9_-]+$"
"""What a station name may be: it is a topic level and the station's broker user name."""


# -- topics and payloads (pure) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topics:
    """One station's topics."""

    station: str
    status: str
    state: str
    telemetry: str
    alarms: str
    cmd: str
    reply: str

    @classmethod
    def of(cls, station: str) -> Topics:
        """The topics of ``station`` (a name MQTT and the broker's ACL can use)."""
        if not re.fullmatch(STATION_NAME, station):
            raise ValueError(f"station name {station!r}: letters, digits, _ and - only")
        base = f"{TOPIC_ROOT}/{station}"
        return cls(
            station,
            f"{base}/status",
            f"{base}/state",
            f"{base}/telemetry",
            f"{base}/alarms",
            f"{base}/cmd",
            f"{base}/cmd/reply",
        )


def alarm_payload(stored: StoredEvent) -> dict[str, Any]:
    """An alarm event as the ``alarms`` topic carries it."""
    return {**stored.event.to_json(), "seq": stored.seq, "station": stored.station, "at": stored.at}


def encode(payload: Any) -> str:
    """Compact JSON, as every JSON topic carries it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


# -- commands (pure) ---------------------------------------------------------------------

_ALARM_ID = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: str | None = Field(default=None, max_length=64)
    """The hub's correlation id, echoed in the reply."""
    by: str = Field(min_length=1, max_length=80)
    """Who (a person at the hub): recorded with the action and in the audit log."""


class Acknowledge(_Command):
    """Acknowledge one alarm (stops its sound; a latched alarm is resolved)."""

    cmd: Literal["acknowledge"]
    alarm: str = Field(pattern=_ALARM_ID, max_length=64)


class Silence(_Command):
    """Pause the sound of one alarm, or of every listed alarm, for the silence period."""

    cmd: Literal["silence"]
    alarm: str | None = Field(default=None, pattern=_ALARM_ID, max_length=64)


class EndSession(_Command):
    """End the running session."""

    cmd: Literal["end_session"]


Command = Annotated[Acknowledge | Silence | EndSession, Field(discriminator="cmd")]
_COMMAND: TypeAdapter[Acknowledge | Silence | EndSession] = TypeAdapter(Command)
INPUT_OF: dict[str, InputKind] = {
    "acknowledge": InputKind.ACKNOWLEDGE,
    "silence": InputKind.SILENCE,
    "end_session": InputKind.SESSION_END,
}


class Rejected(ValueError):
    """A payload that is not what its topic carries (too big, too deep, not JSON, not the
    model); the message says why. The only exception the parsers here raise."""


class CommandRefused(Rejected):
    """A command the station will not apply; the message says why."""


def parse_command(payload: bytes) -> Acknowledge | Silence | EndSession:
    """A command from the ``cmd`` topic, validated; :class:`CommandRefused` says what is wrong."""
    try:
        _precheck(payload, MAX_COMMAND_BYTES)
    except Rejected as exc:
        raise CommandRefused(f"command {exc}") from None
    try:
        return _COMMAND.validate_json(payload, strict=True)
    except ValidationError as exc:
        raise CommandRefused(_problems(exc, "command")) from None


def command_id(payload: bytes) -> str | None:
    """The ``id`` of a refused command, if it has a usable one (for the reply); never raises
    (the payload is size- and depth-checked before it is parsed)."""
    try:
        _precheck(payload, MAX_COMMAND_BYTES)
        obj = json.loads(payload, parse_constant=_no_constant)
    except (Rejected, ValueError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("id"), str) and len(obj["id"]) <= 64:
        return str(obj["id"])
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


# -- the raw-bytes checks every payload passes first (pure) ----------------------------------

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def _precheck(payload: bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> None:
    """Size, then UTF-8, then nesting depth, on the raw bytes: what must hold before any JSON
    parser (recursive ones included) sees them. Raises :class:`Rejected`."""
    if len(payload) > max_bytes:
        raise Rejected(f"of {len(payload)} bytes (at most {max_bytes})")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(f"not UTF-8 (byte {exc.start})") from None
    if payload.count(b"[") + payload.count(b"{") <= max_depth:
        return  # cannot be too deep: skip the scan (the common case)
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", payload))
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > max_depth:
                raise Rejected(f"nested deeper than {max_depth}")
        else:
            depth -= 1


def _problems(exc: ValidationError, what: str) -> str:
    problems = validation.problems(exc, what, limit=5)
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


# -- what the hub reads (pure) ---------------------------------------------------------------


def _aware(text: str) -> str:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 time") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("a time without its UTC offset")
    return text


Name = Annotated[str, StringConstraints(pattern=STATION_NAME, max_length=64)]
Short = Annotated[str, StringConstraints(max_length=80)]
Text = Annotated[str, StringConstraints(max_length=500)]
AlarmId = Annotated[str, StringConstraints(pattern=_ALARM_ID, max_length=64)]
Stamp = Annotated[str, StringConstraints(max_length=40), AfterValidator(_aware)]
"""An ISO 8601 time with its offset, kept as sent (the store keeps the station's text)."""
Float = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]
Int = Annotated[StrictInt, Field(ge=-(10**12), le=10**12)]
Num = Int | Float
Count = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
PriorityLabel = Literal["low", "medium", "high"]


class _Wire(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, hide_input_in_errors=True, allow_inf_nan=False
    )


class SensorRow(_Wire):
    """One sensor in a state message."""

    name: Short
    kind: Short
    link: Short | None
    connected: StrictBool | None
    battery_percent: Num | None
    rssi_dbm: Num | None
    malformed: Count
    lost: Count
    last_error: Text | None
    rate_hz: Num | None = None
    """The tilt sensor's measured sample rate (absent for a strap)."""
    silent_s: Num | None = None
    """Seconds since its last accepted reading (None: none yet)."""
    fresh: StrictBool | None = None
    """Whether that reading is recent enough to show (within the lost-signal delay)."""


class AlarmRow(_Wire):
    """One listed alarm in a state message."""

    id: AlarmId
    priority: PriorityLabel
    state: Short
    condition: StrictBool
    acknowledged: StrictBool
    sounding: StrictBool
    silenced_for_s: Num | None
    value: Num | None
    limit: Num | None
    message: Text
    raised_s_ago: Num | None


class StateMessage(_Wire):
    """The ``state`` topic: :func:`monitor.station.status.station_state`."""

    station: Name
    at: Stamp
    t: Float
    phase: Short
    user: Short | None
    theta_deg: Num | None
    theta_last_deg: Num | None
    rate_dps: Num | None
    hr_bpm: Num | None
    timers: Annotated[dict[Short, Num | Short | None], Field(max_length=32)]
    profile: Annotated[dict[Short, Num | Short | None], Field(max_length=32)]
    sensors: Annotated[list[SensorRow], Field(max_length=16)]
    alarms: Annotated[list[AlarmRow], Field(max_length=64)]
    highest_priority: PriorityLabel | None
    problems: Annotated[dict[Short, Text], Field(max_length=32)]


class AlarmMessage(_Wire):
    """The ``alarms`` topic: the SPEC 7 object plus ``seq``, ``station`` and ``at``."""

    t: Float
    id: AlarmId
    priority: PriorityLabel
    event: Literal["raised", "escalated", "acknowledged", "silenced", "cleared", "resolved"]
    value: Num | None
    limit: Num | None
    message: Text
    seq: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    station: Name
    at: Stamp

    def event_obj(self) -> AlarmEvent:
        """The alarm event itself."""
        return AlarmEvent(
            t=self.t,
            id=self.id,
            priority=Priority.parse(self.priority),
            event=EventKind(self.event),
            value=None if self.value is None else float(self.value),
            limit=None if self.limit is None else float(self.limit),
            message=self.message,
        )


class ReplyMessage(_Wire):
    """The ``cmd/reply`` topic."""

    id: Annotated[str, StringConstraints(max_length=64)] | None
    cmd: Annotated[str, StringConstraints(max_length=32)] | None
    ok: StrictBool
    error: Text | None = None
    note: Text | None = None
    station: Name
    at: Stamp


class TelemetryMessage(_Wire):
    """The ``telemetry`` topic: the samples of the last second (at most 10 s of them)."""

    station: Name
    t: Annotated[list[Float], Field(max_length=200)]
    theta_deg: Annotated[list[Num | None], Field(max_length=200)]
    hr_bpm: Annotated[list[Num | None], Field(max_length=200)]


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """The ``status`` topic: ``online`` or ``offline``."""

    station: str
    status: Literal["online", "offline"]


HubMessage = StatusMessage | StateMessage | AlarmMessage | ReplyMessage | TelemetryMessage
_MODELS: dict[str, TypeAdapter[Any]] = {
    "state": TypeAdapter(StateMessage),
    "alarms": TypeAdapter(AlarmMessage),
    "cmd/reply": TypeAdapter(ReplyMessage),
    "telemetry": TypeAdapter(TelemetryMessage),
}
HUB_KINDS = ("status", "state", "alarms", "cmd/reply", "telemetry")


def parse_topic(topic: str) -> tuple[str, str]:
    """``(station, kind)`` of a topic the hub reads; :class:`Rejected` for any other."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise Rejected(f"not a Spotter topic: {topic[:100]!r}")
    station, kind = parts[2], parts[3]
    if not re.fullmatch(STATION_NAME, station) or len(station) > 64:
        raise Rejected(f"not a station name: {station[:100]!r}")
    if kind not in HUB_KINDS:
        raise Rejected(f"not a topic the hub reads: {kind[:100]!r}")
    return station, kind


def parse_hub_message(station: str, kind: str, payload: bytes) -> HubMessage | None:
    """One message from ``station`` on topic ``kind``, validated into its model; None for an
    empty payload (how a retained message is deleted: nothing was said). Raises only
    :class:`Rejected`, before anything is touched."""
    if not payload:
        return None
    if kind not in HUB_KINDS:
        raise Rejected(f"not a topic the hub reads: {kind[:100]!r}")
    _precheck(payload, MAX_BYTES[kind])
    if kind == "status":
        if payload == ONLINE.encode():
            return StatusMessage(station, "online")
        if payload == OFFLINE.encode():
            return StatusMessage(station, "offline")
        raise Rejected(f"status {payload[:20]!r} (online or offline)")
    try:
        message = _MODELS[kind].validate_json(payload, strict=True)
    except ValidationError as exc:
        raise Rejected(_problems(exc, kind)) from None
    if message.station != station:
        raise Rejected(f"says it is from {message.station!r} on {station!r}'s topic")
    assert isinstance(message, StateMessage | AlarmMessage | ReplyMessage | TelemetryMessage)
    return message


@dataclass
class Rejections:
    """Bad messages counted per (source, topic kind); each source is logged once (the caller
    logs when :meth:`add` returns True), so a flood of bad messages cannot flood the log."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    last: dict[str, str] = field(default_factory=dict)
    """The latest reason per source."""

    def add(self, source: str, kind: str, reason: str) -> bool:
        """Count one; True when it is the first from ``source`` (log it)."""
        first = source not in self.last
        self.counts[(source, kind)] += 1
        self.last[source] = f"{kind}: {reason}"[:300]
        return first

    @property
    def total(self) -> int:
        """Every bad message counted."""
        return sum(self.counts.values())

    def by_source(self) -> dict[str, int]:
        """The count per source."""
        out: Counter[str] = Counter()
        for (source, _), n in self.counts.items():
            out[source] += n
        return dict(out)

    def as_json(self) -> dict[str, int]:
        """``{"source/kind": count}``."""
        return {f"{s}/{k}": n for (s, k), n in sorted(self.counts.items())}


@dataclass
class RateLimit:
    """A token bucket per source: ``rate_per_s`` messages a second on average, bursts up to
    ``burst``. Checked before a message is parsed, so a flooding source costs the hub a dict
    look-up per message, not a parse. Pure: time comes in."""

    rate_per_s: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, source: str, t: float) -> bool:
        """Take one token of ``source`` at time ``t``; False when it has none left."""
        tokens, last = self._buckets.get(source, (self.burst, t))
        tokens = min(self.burst, tokens + (t - last) * self.rate_per_s)
        if tokens < 1.0:
            self._buckets[source] = (tokens, t)
            return False
        self._buckets[source] = (tokens - 1.0, t)
        return True
