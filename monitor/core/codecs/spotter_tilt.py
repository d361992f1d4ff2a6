"""The Spotter Tilt Service (SPEC 4.2): Tilt Measurement, Control Point and Sensor Info."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from monitor.core.codecs.errors import CodecError

ACCEL = 0x01
GYRO = 0x02
LOCK = 0x04
_RESERVED = 0xF8
MAX_PAYLOAD = 20
PITCH_LIMIT_CENTIDEG = 18000
SPEC_VERSION = 1
MIN_RATE_HZ = 1
MAX_RATE_HZ = 200
ATT_UNKNOWN_OPCODE = 0x80
"""ATT application error for an unknown Control Point opcode (SPEC 4.2)."""
ATT_INVALID_PARAMETER = 0x81
"""ATT application error for a known opcode with a bad parameter (SPEC is silent; ours)."""


class TiltError(CodecError):
    """A Tilt Measurement payload that breaks the layout."""

    codec = "spotter_tilt"


class ControlPointError(CodecError):
    """A Control Point write that is not a valid command; ``att_error`` is the answer."""

    codec = "control_point"

    def __init__(self, field: str, problem: str, data: bytes, att_error: int) -> None:
        super().__init__(field, problem, data)
        self.att_error = att_error


class SensorInfoError(CodecError):
    """A Sensor Info value that breaks the layout."""

    codec = "sensor_info"


class AnkleLock(enum.StrEnum):
    """The ankle clamp's state as the sensor reports it."""

    UNKNOWN = "unknown"
    OPEN = "open"
    LOCKED = "locked"


_LOCK_OF_BYTE = (AnkleLock.UNKNOWN, AnkleLock.OPEN, AnkleLock.LOCKED)
_BYTE_OF_LOCK = {lock: i for i, lock in enumerate(_LOCK_OF_BYTE)}

Vector3 = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class TiltMeasurement:
    """One Tilt Measurement notification."""

    seq: int
    sensor_ms: int
    pitch_deg: float
    accel_g: Vector3 | None = None
    gyro_dps: Vector3 | None = None
    lock: AnkleLock | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= 0xFFFF:
            raise ValueError(f"seq {self.seq} does not fit u16")
        if not 0 <= self.sensor_ms <= 0xFFFF:
            raise ValueError(f"sensor_ms {self.sensor_ms} does not fit u16")
        if abs(round(self.pitch_deg * 100)) > PITCH_LIMIT_CENTIDEG:
            raise ValueError(f"pitch {self.pitch_deg} outside -180..180")


def _layout(flags: int) -> struct.Struct:
    fmt = "<BHHh"
    if flags & ACCEL:
        fmt += "3h"
    if flags & GYRO:
        fmt += "3h"
    if flags & LOCK:
        fmt += "B"
    return struct.Struct(fmt)


_LAYOUTS = tuple(_layout(flags) for flags in range(8))
_HEAD = 7


TiltFields = tuple[int, int, float, Vector3 | None, Vector3 | None, AnkleLock | None]
"""A Tilt Measurement's fields in :class:`TiltMeasurement`'s order."""


def decode(data: bytes) -> TiltMeasurement:
    """Decode a Tilt Measurement; raise :class:`TiltError` naming the bad field."""
    return TiltMeasurement(*unpack(data))


def unpack(data: bytes) -> TiltFields:
    """What :func:`decode` checks and returns, as a plain tuple: the safety core's per-sample
    path (100 Hz) takes it so, without building the frozen record it does not keep."""
    n = len(data)
    if n < _HEAD:
        raise TiltError("length", f"too short: {n} bytes, the fixed part needs {_HEAD}", data)
    flags = data[0]
    if flags & _RESERVED:
        raise TiltError("flags", f"reserved flag bit set (flags 0x{flags:02x})", data)
    layout = _LAYOUTS[flags]
    if n != layout.size:
        raise TiltError("length", _length_problem(flags, n, layout.size), data)
    fields = layout.unpack(data)
    pitch = fields[3]
    if not -PITCH_LIMIT_CENTIDEG <= pitch <= PITCH_LIMIT_CENTIDEG:
        raise TiltError("pitch", f"pitch out of range: {pitch / 100} deg", data)
    pos = 4
    accel: Vector3 | None = None
    gyro: Vector3 | None = None
    lock: AnkleLock | None = None
    if flags & ACCEL:
        accel = (fields[pos] / 1000, fields[pos + 1] / 1000, fields[pos + 2] / 1000)
        pos += 3
    if flags & GYRO:
        gyro = (fields[pos] / 10, fields[pos + 1] / 10, fields[pos + 2] / 10)
        pos += 3
    if flags & LOCK:
        raw = fields[pos]
        if raw >= len(_LOCK_OF_BYTE):
            raise TiltError("ankle_lock", f"unknown ankle-lock value {raw}", data)
        lock = _LOCK_OF_BYTE[raw]
    return (fields[1], fields[2], pitch / 100, accel, gyro, lock)


def _length_problem(flags: int, n: int, want: int) -> str:
    if n > want:
        return f"length does not match flags: {n} bytes, flags 0x{flags:02x} need {want}"
    missing = "ankle lock"
    have = _HEAD
    for bit, size, name in ((ACCEL, 6, "acceleration"), (GYRO, 6, "angular rate")):
        if flags & bit:
            have += size
            if n < have:
                missing = name
                break
    return (
        f"length does not match flags: {n} bytes, flags 0x{flags:02x} need {want} "
        f"({missing} missing)"
    )


def encode(m: TiltMeasurement) -> bytes:
    """The bytes of a Tilt Measurement, with flags set for the fields present."""
    flags = (ACCEL if m.accel_g else 0) | (GYRO if m.gyro_dps else 0) | (LOCK if m.lock else 0)
    values: list[int] = [flags, m.seq, m.sensor_ms, round(m.pitch_deg * 100)]
    if m.accel_g:
        values += [round(v * 1000) for v in m.accel_g]
    if m.gyro_dps:
        values += [round(v * 10) for v in m.gyro_dps]
    if m.lock:
        values.append(_BYTE_OF_LOCK[m.lock])
    try:
        return _LAYOUTS[flags].pack(*values)
    except struct.error as exc:
        raise ValueError(f"tilt measurement does not fit its fields: {exc}") from exc


# -- Control Point -------------------------------------------------------------------------


class ControlOp(enum.IntEnum):
    """Control Point opcodes."""

    TARE = 0x01
    SET_RATE = 0x02
    IDENTIFY = 0x03


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """A Control Point command; ``rate_hz`` only for SET_RATE."""

    op: ControlOp
    rate_hz: int | None = None

    def __post_init__(self) -> None:
        if (self.op is ControlOp.SET_RATE) != (self.rate_hz is not None):
            raise ValueError("rate_hz goes with SET_RATE and only with it")
        if self.rate_hz is not None and not MIN_RATE_HZ <= self.rate_hz <= MAX_RATE_HZ:
            raise ValueError(f"rate {self.rate_hz} Hz outside {MIN_RATE_HZ}-{MAX_RATE_HZ}")


def decode_control(data: bytes) -> ControlCommand:
    """Decode a Control Point write; the error's ``att_error`` is what the sensor answers."""
    if not data:
        raise ControlPointError("opcode", "empty write", data, ATT_INVALID_PARAMETER)
    try:
        op = ControlOp(data[0])
    except ValueError:
        raise ControlPointError(
            "opcode",
            f"unknown opcode: ATT error 0x80 (opcode 0x{data[0]:02x})",
            data,
            ATT_UNKNOWN_OPCODE,
        ) from None
    want = 2 if op is ControlOp.SET_RATE else 1
    if op is ControlOp.SET_RATE and len(data) < 2:
        raise ControlPointError("rate", "rate missing", data, ATT_INVALID_PARAMETER)
    if len(data) > want:
        raise ControlPointError(
            "length", f"trailing byte(s) after {op.name.lower()}", data, ATT_INVALID_PARAMETER
        )
    if op is not ControlOp.SET_RATE:
        return ControlCommand(op)
    rate = data[1]
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise ControlPointError(
            "rate",
            f"rate out of range ({MIN_RATE_HZ}-{MAX_RATE_HZ}): {rate} Hz",
            data,
            ATT_INVALID_PARAMETER,
        )
    return ControlCommand(op, rate)


def encode_control(cmd: ControlCommand) -> bytes:
    """The bytes of a Control Point command."""
    if cmd.rate_hz is None:
        return bytes([cmd.op])
    return bytes([cmd.op, cmd.rate_hz])


# -- Sensor Info ---------------------------------------------------------------------------

_INFO = struct.Struct("<BBH")


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """The Sensor Info characteristic."""

    spec_version: int
    rate_hz: int
    firmware_build: int

    def __post_init__(self) -> None:
        if not MIN_RATE_HZ <= self.rate_hz <= MAX_RATE_HZ:
            raise ValueError(f"rate {self.rate_hz} Hz outside {MIN_RATE_HZ}-{MAX_RATE_HZ}")


def decode_info(data: bytes) -> SensorInfo:
    """Decode Sensor Info; raise :class:`SensorInfoError` naming the bad field."""
    if len(data) < _INFO.size:
        raise SensorInfoError("length", f"too short: {len(data)} bytes, needs {_INFO.size}", data)
    if len(data) > _INFO.size:
        raise SensorInfoError("length", f"trailing byte(s) after {_INFO.size} bytes", data)
    version, rate, build = _INFO.unpack(data)
    if version != SPEC_VERSION:
        raise SensorInfoError("spec_version", f"unsupported spec version {version}", data)
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise SensorInfoError("rate", f"rate out of range: {rate} Hz", data)
    return SensorInfo(version, rate, build)


def encode_info(info: SensorInfo) -> bytes:
    """The bytes of Sensor Info."""
    return _INFO.pack(info.spec_version, info.rate_hz, info.firmware_build)
