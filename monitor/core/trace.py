"""Session traces (SPEC section 5): the flight recorder's format and replay's input.

JSON Lines, one object per line: a header, then notifications, link changes, user inputs and
an end marker, with ``t`` in seconds since the trace started, non-decreasing. The reader
streams: a trace of hours is never held in memory. Every problem names the file and line.

A trace can come from anyone (an upload to the hub, a file sent by mail), so each line is
checked before it is parsed and parsed into a typed record before anything uses it: at most
:data:`MAX_LINE_CHARS` characters, nesting at most :data:`MAX_DEPTH` deep (so the JSON
parser cannot recurse without bound), UTF-8 text, finite numbers only, strings where strings
belong, and ``t`` finite, not negative, non-decreasing and at most :data:`MAX_TRACE_S`.
"""

from __future__ import annotations

import enum
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import msgspec

from monitor.core import gatt
from monitor.core.sensors import SensorKind, SensorSpec, SensorSpecError

TRACE_VERSION = 1
MAX_LINE_CHARS = 65_536
"""The longest line a trace may have (a notification is under 1.1 kB; a header a few)."""
MAX_DEPTH = 16
"""The deepest nesting of arrays and objects a line may have (a header needs 4)."""
MAX_TRACE_S = 366 * 86_400.0
"""The latest ``t`` a trace may reach: a year. The flight recorder writes the station's clock
(seconds since the daemon started), so a real trace's ``t`` is the station's uptime, and a
week would refuse traces of a station up longer. A year keeps every time exact to well under
the trace's 0.1 ms, and replay's work does not grow with ``t``: a gap costs its deadlines."""


class TraceError(Exception):
    """A trace line that cannot be used. ``str()`` is one line naming file and line."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        super().__init__(f"{source}:{line}: {problem}")


class InputKind(enum.StrEnum):
    """What a user can do at the station, as a trace records it."""

    SESSION_START = "session_start"
    SESSION_END = "session_end"
    SYMPTOM = "symptom"
    ACKNOWLEDGE = "acknowledge"
    SILENCE = "silence"


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """The first line of a trace."""

    sensors: dict[str, SensorSpec]
    station: str = ""
    started_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not use, kept so a rewrite loses nothing."""

    def sensor_of(self, kind_is_tilt: bool) -> str | None:
        """The name of the tilt sensor (or the heart-rate sensor), if the station has one."""
        for name, spec in self.sensors.items():
            if spec.kind.is_tilt == kind_is_tilt:
                return name
        return None

    def to_json(self) -> dict[str, Any]:
        """The header line's object."""
        out: dict[str, Any] = {"spotter_trace": TRACE_VERSION, "station": self.station}
        if self.started_at is not None:
            out["started_at"] = self.started_at.isoformat()
        out["sensors"] = {name: spec.to_json() for name, spec in self.sensors.items()}
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


class Notification(msgspec.Struct, frozen=True):
    """Bytes a sensor sent on a characteristic (or a value read from it). A frozen
    ``msgspec.Struct`` rather than a frozen dataclass: a trace makes 100 a second, and this
    one is built in C (~50 ns instead of ~430 ns); it compares, hashes and prints alike."""

    t: float
    sensor: str
    char: str
    data: bytes


@dataclass(frozen=True, slots=True)
class LinkChange:
    """A sensor's link went up or down."""

    t: float
    sensor: str
    connected: bool


@dataclass(frozen=True, slots=True)
class UserInput:
    """Something the user or a watcher did; ``alarm`` names the alarm for acknowledge/silence."""

    t: float
    input: InputKind
    alarm: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class End:
    """The end marker: carries time forward to ``t``."""

    t: float


Record = Notification | LinkChange | UserInput | End
INPUT_KINDS = frozenset(k.value for k in InputKind)


def _header(obj: Any, source: str) -> TraceHeader:
    if not isinstance(obj, dict) or "spotter_trace" not in obj:
        raise TraceError(source, 1, "the first line must be the header (with spotter_trace)")
    if obj["spotter_trace"] != TRACE_VERSION:
        raise TraceError(
            source, 1, f"unsupported spotter_trace version {obj['spotter_trace']!r} (know 1)"
        )
    raw_sensors = obj.get("sensors")
    if not isinstance(raw_sensors, dict) or not raw_sensors:
        raise TraceError(source, 1, "header: sensors must be an object naming each sensor")
    sensors: dict[str, SensorSpec] = {}
    for name, raw in raw_sensors.items():
        if not _is_text(name):
            raise TraceError(source, 1, f"header: sensor name {name!r} is not UTF-8 text")
        try:
            sensors[name] = SensorSpec.from_json(raw)
        except SensorSpecError as exc:
            raise TraceError(source, 1, f"header: sensor {name!r}: {exc}") from None
    for tilt in (True, False):
        names = [n for n, s in sensors.items() if s.kind.is_tilt == tilt]
        if len(names) > 1:
            what = "tilt" if tilt else "heart-rate"
            raise TraceError(source, 1, f"header: more than one {what} sensor ({', '.join(names)})")
    station = obj.get("station", "")
    if not _is_text(station):
        raise TraceError(source, 1, "header: station must be a string of UTF-8 text")
    started_at = None
    if obj.get("started_at") is not None:
        try:
            started_at = datetime.fromisoformat(obj["started_at"])
        except (TypeError, ValueError):
            raise TraceError(
                source, 1, f"header: started_at {obj['started_at']!r} is not an ISO 8601 time"
            ) from None
    extra = {
        k: v
        for k, v in obj.items()
        if k not in ("spotter_trace", "station", "started_at", "sensors")
    }
    return TraceHeader(sensors, station, started_at, extra)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a trace may hold")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
"""NaN and Infinity are refused; a number too large for a float (1e400) parses as infinity,
which every number a record uses is range-checked against (``t``; a calibration's offset,
by :class:`monitor.core.sensors.Calibration`)."""


def _too_deep(text: str) -> bool:
    """Whether arrays and objects nest deeper than :data:`MAX_DEPTH` (brackets in strings do
    not count). Cheap for ordinary lines: only a line with many brackets is scanned."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _is_text(value: object) -> bool:
    """A string that is UTF-8 text (JSON can spell lone surrogates, which are not)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_line(text: str) -> Any:
    """One line's JSON value, after the checks that keep parsing bounded; ValueError (with
    the reason) when the line cannot be a trace line."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not UTF-8 text") from None
    if _too_deep(text):
        raise ValueError(f"arrays or objects nested deeper than {MAX_DEPTH}")
    try:
        return _DECODER.decode(text)
    except RecursionError:  # pragma: no cover - _too_deep keeps the parser shallow
        raise ValueError("nested too deep") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


class _NotificationLine(msgspec.Struct, forbid_unknown_fields=True):
    """The shape of an ordinary notification line, for the fast path of :class:`TraceReader`:
    exactly these four keys with these types, or the line takes the general path."""

    t: float
    sensor: str
    char: str
    hex: str


_FAST = msgspec.json.Decoder(_NotificationLine)
"""A typed decoder for the line a trace holds 99 % of. It cannot recurse (no field nests)
and refuses what the general path would question (an unknown key, a string where a number
belongs, NaN); whatever it refuses is parsed again by :func:`parse_line` and
:meth:`TraceReader._record`, which name the problem, so every error stays the same."""


def open_trace_bytes(data: bytes) -> TextIO:
    """A trace held in memory (an upload) as the text stream :class:`TraceReader` reads.
    Bytes that are not UTF-8 are kept as surrogates, so the reader names their line."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")


class TraceReader:
    """Reads a trace line by line. The header is parsed at once; records stream on iteration.

    The stream should be opened with ``errors="surrogateescape"`` (as :func:`open_trace_bytes`
    and ``spotter replay`` do) so bytes that are not UTF-8 are a trace error naming the line.

    >>> reader = TraceReader(open("session.jsonl"), "session.jsonl")  # doctest: +SKIP
    >>> for record in reader: ...                                      # doctest: +SKIP
    """

    def __init__(self, stream: TextIO, source: str) -> None:
        self.source = source
        self._stream = stream
        self.line = 0
        first = self._next_object()
        if first is None:
            raise TraceError(source, 1, "empty trace: no header line")
        self.header = _header(first, source)
        self._sensors = self.header.sensors
        self._chars: dict[str, str] = {}
        """Each characteristic as spelled in the trace -> its canonical UUID (a trace spells
        a handful, so it is looked up once each)."""

    def _next_object(self) -> Any:
        while True:
            try:
                text = self._stream.readline(MAX_LINE_CHARS + 1)
            except UnicodeDecodeError as exc:  # a stream opened without surrogateescape
                raise TraceError(self.source, self.line + 1, f"not UTF-8: {exc}") from None
            if not text:
                return None
            self.line += 1
            obj = self._object_of(text)
            if obj is not None:
                return obj

    def __iter__(self) -> Iterator[Record]:
        last_t = 0.0
        readline = self._stream.readline
        fast = _FAST.decode
        fromhex = bytes.fromhex
        sensors, chars = self._sensors, self._chars
        while True:
            # The fast path: a notification line of plain ASCII with the four keys, decoded
            # and checked at once; any other line, or any doubt, takes the general path.
            try:
                text = readline(MAX_LINE_CHARS + 1)
            except UnicodeDecodeError as exc:  # a stream opened without surrogateescape
                raise TraceError(self.source, self.line + 1, f"not UTF-8: {exc}") from None
            if not text:
                return
            self.line += 1
            record: Record | None = None
            if text.isascii() and len(text) <= MAX_LINE_CHARS:
                try:
                    line = fast(text)
                except msgspec.DecodeError:
                    pass
                else:  # every check of _record, or (None) the general path says what is wrong
                    t = line.t
                    if 0 <= t <= MAX_TRACE_S and line.sensor in sensors and line.char.isascii():
                        # (an escape such as \ud800 spells a char that is not text)
                        try:
                            data = fromhex(line.hex)
                        except ValueError:
                            pass
                        else:
                            char = chars.get(line.char)
                            if char is None:
                                char = chars[line.char] = gatt.canonical(line.char)
                            record = Notification(t, line.sensor, char, data)
            if record is None:
                obj = self._object_of(text)
                if obj is None:
                    continue
                record = self._record(obj)
            if record.t < last_t:
                raise self._fail(f"t {record.t} goes back in time (previous {last_t})")
            last_t = record.t
            yield record

    def _object_of(self, text: str) -> Any:
        """The JSON value of the line just read (None for a blank line), after the checks."""
        if len(text) > MAX_LINE_CHARS and not text.endswith("\n"):
            raise self._fail(f"line longer than {MAX_LINE_CHARS} characters")
        if not text.strip():
            return None
        try:
            return parse_line(text)
        except ValueError as exc:
            raise self._fail(str(exc)) from None

    def _fail(self, problem: str) -> TraceError:
        return TraceError(self.source, self.line, problem)

    def _sensor(self, obj: dict[str, Any], what: str) -> str:
        sensor = obj.get("sensor")
        if not isinstance(sensor, str) or sensor not in self._sensors:
            raise self._fail(f"{what} sensor {sensor!r}, not in the header")
        return sensor

    def _record(self, obj: Any) -> Record:
        if not isinstance(obj, dict):
            raise self._fail("a trace line must be a JSON object")
        if "spotter_trace" in obj:
            raise self._fail("a second header: only the first line may be one")
        t = obj.get("t")
        if t.__class__ is not float and (t.__class__ is not int):
            raise self._fail(f"t must be a number of seconds, not {t!r}")
        if not (0 <= t <= MAX_TRACE_S):
            raise self._fail(
                f"t must be finite, not negative and at most {MAX_TRACE_S:.0f} s (a year), "
                f"not {t!r}"
            )
        t = float(t)
        if "hex" in obj:
            sensor = self._sensor(obj, "notification from")
            char = obj.get("char")
            hexstr = obj["hex"]
            if not isinstance(char, str) or not isinstance(hexstr, str):
                raise self._fail("a notification needs char and hex as strings")
            try:
                data = bytes.fromhex(hexstr)
            except ValueError:
                raise self._fail(f"hex {hexstr!r} is not hexadecimal bytes") from None
            if not (char.isascii() or _is_text(char)):
                raise self._fail(f"char {char!r} is not UTF-8 text")
            return Notification(t, sensor, gatt.canonical(char), data)
        if "link" in obj:
            sensor = self._sensor(obj, "link change of")
            link = obj["link"]
            if link not in ("connected", "disconnected"):
                raise self._fail(f"link must be connected or disconnected, not {link!r}")
            return LinkChange(t, sensor, link == "connected")
        if "input" in obj:
            raw = obj["input"]
            if not isinstance(raw, str) or raw not in INPUT_KINDS:
                known = ", ".join(k.value for k in InputKind)
                raise self._fail(f"unknown input {raw!r} (known: {known})")
            kind = InputKind(raw)
            alarm = obj.get("alarm")
            by = obj.get("by")
            if kind is InputKind.ACKNOWLEDGE and not isinstance(alarm, str):
                raise self._fail("acknowledge needs the alarm it acknowledges")
            if alarm is not None and not _is_text(alarm):
                raise self._fail(f"alarm must be a string of UTF-8 text, not {alarm!r}")
            if by is not None and not _is_text(by):
                raise self._fail(f"by must be a string of UTF-8 text, not {by!r}")
            return UserInput(t, kind, alarm, by)
        if obj.get("end") is True:
            return End(t)
        raise self._fail("not a trace record: needs hex (notification), link, input or end")


def _t(t: float) -> str:
    return repr(round(t, 4))


class TraceWriter:
    """Writes a trace line by line. The caller owns the stream (and its flushing)."""

    def __init__(self, stream: TextIO, header: TraceHeader) -> None:
        self._stream = stream
        stream.write(json.dumps(header.to_json()) + "\n")

    def notification(self, t: float, sensor: str, char: str, data: bytes) -> None:
        """Record bytes from a sensor."""
        self._stream.write(
            f'{{"t": {_t(t)}, "sensor": {json.dumps(sensor)}, "char": "{char}", '
            f'"hex": "{data.hex()}"}}\n'
        )

    def link(self, t: float, sensor: str, connected: bool) -> None:
        """Record a link change."""
        state = "connected" if connected else "disconnected"
        self._stream.write(f'{{"t": {_t(t)}, "sensor": {json.dumps(sensor)}, "link": "{state}"}}\n')

    def user_input(
        self, t: float, kind: InputKind, alarm: str | None = None, by: str | None = None
    ) -> None:
        """Record a user input."""
        obj: dict[str, Any] = {"t": round(t, 4), "input": kind.value}
        if alarm is not None:
            obj["alarm"] = alarm
        if by is not None:
            obj["by"] = by
        self._stream.write(json.dumps(obj) + "\n")

    def end(self, t: float) -> None:
        """Record the end marker."""
        self._stream.write(f'{{"t": {_t(t)}, "end": true}}\n')

    def write(self, record: Record) -> None:
        """Record any record (as read back from another trace)."""
        if isinstance(record, Notification):
            self.notification(record.t, record.sensor, record.char, record.data)
        elif isinstance(record, LinkChange):
            self.link(record.t, record.sensor, record.connected)
        elif isinstance(record, UserInput):
            self.user_input(record.t, record.input, record.alarm, record.by)
        else:
            self.end(record.t)


__all__ = [
    "End",
    "InputKind",
    "LinkChange",
    "Notification",
    "Record",
    "SensorKind",
    "TraceError",
    "TraceHeader",
    "TraceReader",
    "TraceWriter",
    "UserInput",
]
