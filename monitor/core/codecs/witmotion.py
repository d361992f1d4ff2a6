"""WitMotion BWT901BLE5.0 (SPEC 4.3): 20-byte ``55 61`` frames in a notification byte stream."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from monitor.core.codecs.errors import CodecError

HEADER = 0x55
DATA_FRAME = 0x61
FRAME_SIZE = 20
ACCEL_G_PER_LSB = 16 / 32768
GYRO_DPS_PER_LSB = 2000 / 32768
ANGLE_DEG_PER_LSB = 180 / 32768
OTHER_FRAME_TYPES = frozenset({0x71, *range(0x50, 0x60)})
"""Frame types the device also sends (register replies, legacy frames): skipped whole."""
AXES = ("x", "y", "z")
_BODY = struct.Struct("<9h")

Vector3 = tuple[float, float, float]


class WitMotionError(CodecError):
    """A WitMotion frame that breaks the layout."""

    codec = "witmotion"


@dataclass(frozen=True, slots=True)
class WitMotionFrame:
    """One ``55 61`` frame: acceleration (g), angular rate (deg/s), angles (deg) about x, y, z."""

    accel_g: Vector3
    gyro_dps: Vector3
    angle_deg: Vector3


def decode_frame(data: bytes) -> WitMotionFrame:
    """Decode exactly one 20-byte ``55 61`` frame."""
    if len(data) != FRAME_SIZE:
        raise WitMotionError("length", f"a frame is {FRAME_SIZE} bytes, got {len(data)}", data)
    if data[0] != HEADER or data[1] != DATA_FRAME:
        raise WitMotionError("header", "a data frame starts with 55 61", data)
    return _frame(bytes(data), 2)


def _frame(data: bytes | bytearray, offset: int) -> WitMotionFrame:
    r = _BODY.unpack_from(data, offset)
    a, g, d = ACCEL_G_PER_LSB, GYRO_DPS_PER_LSB, ANGLE_DEG_PER_LSB
    return WitMotionFrame(
        (r[0] * a, r[1] * a, r[2] * a),
        (r[3] * g, r[4] * g, r[5] * g),
        (r[6] * d, r[7] * d, r[8] * d),
    )


def _raw(value: float, per_lsb: float, name: str) -> int:
    raw = round(value / per_lsb)
    if not -32768 <= raw <= 32767:
        raise ValueError(f"{name} {value} outside the frame's range")
    return raw


def encode_frame(frame: WitMotionFrame) -> bytes:
    """The 20 bytes of a ``55 61`` frame (values rounded to the nearest LSB)."""
    raw = [_raw(v, ACCEL_G_PER_LSB, "acceleration") for v in frame.accel_g]
    raw += [_raw(v, GYRO_DPS_PER_LSB, "angular rate") for v in frame.gyro_dps]
    raw += [_raw(v, ANGLE_DEG_PER_LSB, "angle") for v in frame.angle_deg]
    return bytes((HEADER, DATA_FRAME)) + _BODY.pack(*raw)


class WitMotionStream:
    """Reassembles frames from notifications, whatever their boundaries.

    Scans for ``55 61``; frames of other types are skipped whole; anything else is junk.
    Both are counted in ``discarded_bytes``. Never raises on input: junk is data, not an error.
    """

    __slots__ = ("_buf", "discarded_bytes", "frames", "skipped_frames")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.skipped_frames = 0
        self.discarded_bytes = 0

    def reset(self) -> None:
        """Forget a partial frame (after a disconnect: its tail will never come)."""
        self.discarded_bytes += len(self._buf)
        self._buf.clear()

    def feed(self, chunk: bytes) -> list[WitMotionFrame]:
        """Add one notification's bytes; return the frames it completed."""
        buf = self._buf
        buf += chunk
        out: list[WitMotionFrame] = []
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            if buf[pos] != HEADER:
                nxt = buf.find(HEADER, pos + 1)
                end = n if nxt < 0 else nxt
                self.discarded_bytes += end - pos
                pos = end
                continue
            kind = buf[pos + 1]
            if kind == DATA_FRAME or kind in OTHER_FRAME_TYPES:
                if n - pos < FRAME_SIZE:
                    break
                if kind == DATA_FRAME:
                    out.append(_frame(buf, pos + 2))
                    self.frames += 1
                else:
                    self.skipped_frames += 1
                    self.discarded_bytes += FRAME_SIZE
                pos += FRAME_SIZE
            else:
                self.discarded_bytes += 1
                pos += 1
        del buf[:pos]
        return out


# -- commands (SPEC 4.3): ``FF AA reg lo hi`` on the write characteristic, without response --

UNLOCK = bytes.fromhex("ffaa6988b5")
"""Unlocks the configuration registers for a while (newer firmware ignores writes without)."""
RATE_REGISTER = 0x03
READ_REGISTER = 0x27
RATE_CODE_HZ = {0x06: 10.0, 0x07: 20.0, 0x08: 50.0, 0x09: 100.0, 0x0B: 200.0}
"""Return-rate codes of register 0x03 (the vendor's table; 0x06 = 10 Hz is the default)."""


def command(register: int, value: int) -> bytes:
    """The 5-byte command writing ``value`` (u16) to ``register``."""
    if not 0 <= register <= 0xFF or not 0 <= value <= 0xFFFF:
        raise ValueError(f"register {register:#x} / value {value:#x} out of range")
    return bytes((0xFF, 0xAA, register)) + value.to_bytes(2, "little")


def rate_command(rate_hz: float) -> bytes:
    """The command setting the return rate to ``rate_hz`` (one of :data:`RATE_CODE_HZ`)."""
    for code, hz in RATE_CODE_HZ.items():
        if hz == rate_hz:
            return command(RATE_REGISTER, code)
    raise ValueError(f"no WitMotion return-rate code for {rate_hz} Hz (known: {RATE_CODE_HZ})")


def read_command(register: int) -> bytes:
    """The command asking for a ``55 71`` reply with eight registers from ``register``."""
    return command(READ_REGISTER, register)
