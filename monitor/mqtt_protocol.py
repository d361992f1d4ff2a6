"""The wire format of Spotter's MQTT topics (SPEC section 9), pure: topic names, payloads,
commands. The station's bridge (:mod:`monitor.mqtt`) speaks it; the clinic hub reads and
writes the same objects, so a command the hub builds is the one the station validates.

Topics, under ``spotter/v1/{station}/``:

============  =========  =================================================================
``status``    1, retain  ``online`` on connect, ``offline`` as the last will and on a clean stop
``state``     1, retain  :func:`monitor.status.station_state` JSON, on change and every 1 s
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

import contextlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from monitor.trace import InputKind

if TYPE_CHECKING:
    from monitor.store import StoredEvent

TOPIC_ROOT = "spotter/v1"
ONLINE, OFFLINE = "online", "offline"
"""The ``status`` payloads (``offline`` is also the last will)."""
MAX_COMMAND_BYTES = 4096
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


class CommandRefused(ValueError):
    """A command the station will not apply; the message says why."""


def parse_command(payload: bytes) -> Acknowledge | Silence | EndSession:
    """A command from the ``cmd`` topic, validated; :class:`CommandRefused` says what is wrong."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandRefused(f"command of {len(payload)} bytes (at most {MAX_COMMAND_BYTES})")
    try:
        return _COMMAND.validate_json(payload)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "command"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}: {msg}")
        raise CommandRefused("; ".join(problems)) from None


def command_id(payload: bytes) -> str | None:
    """The ``id`` of a refused command, if it has a usable one (for the reply)."""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        obj = json.loads(payload)
        if isinstance(obj, dict) and isinstance(obj.get("id"), str) and len(obj["id"]) <= 64:
            return str(obj["id"])
    return None
