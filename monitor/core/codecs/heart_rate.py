"""Heart Rate Measurement (0x2A37) of the Bluetooth SIG Heart Rate Service (SPEC 4.1)."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from monitor.core.codecs.errors import CodecError

_WIDE = 0x01
_CONTACT_MASK = 0x06
_ENERGY = 0x08
_RR = 0x10
_RESERVED = 0xE0
RR_UNITS_PER_S = 1024


class HeartRateError(CodecError):
    """A Heart Rate Measurement payload that breaks the layout."""

    codec = "heart_rate"


class Contact(enum.StrEnum):
    """The strap's sensor-contact report, from bits 1-2 of the flags."""

    UNSUPPORTED = "unsupported"
    NOT_DETECTED = "not_detected"
    DETECTED = "detected"


_CONTACT_BITS = {
    0: Contact.UNSUPPORTED,
    1: Contact.UNSUPPORTED,
    2: Contact.NOT_DETECTED,
    3: Contact.DETECTED,
}
_BITS_OF_CONTACT = {Contact.UNSUPPORTED: 0, Contact.NOT_DETECTED: 2, Contact.DETECTED: 3}


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One 0x2A37 notification. ``bpm == 0`` means the strap had no reading."""

    bpm: int
    contact: Contact = Contact.UNSUPPORTED
    energy_kj: int | None = None
    rr_s: tuple[float, ...] = ()
    wide: bool = False
    """The heart rate travelled as u16 (flag bit 0); kept so bytes survive a round trip."""
    rr_present: bool = False
    """Flag bit 4 was set, even if no RR interval followed."""

    def __post_init__(self) -> None:
        limit = 0xFFFF if self.wide else 0xFF
        if not 0 <= self.bpm <= limit:
            raise ValueError(f"bpm {self.bpm} does not fit {'u16' if self.wide else 'u8'}")
        if self.energy_kj is not None and not 0 <= self.energy_kj <= 0xFFFF:
            raise ValueError(f"energy_kj {self.energy_kj} does not fit u16")
        for rr in self.rr_s:
            raw = rr * RR_UNITS_PER_S
            if raw != int(raw) or not 0 <= raw <= 0xFFFF:
                raise ValueError(f"RR interval {rr} s is not a u16 count of 1/1024 s")

    @property
    def has_reading(self) -> bool:
        """False when the strap reports no contact or a heart rate of 0."""
        return self.bpm != 0 and self.contact is not Contact.NOT_DETECTED


def decode(data: bytes) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement; raise :class:`HeartRateError` naming the bad field."""
    if not data:
        raise HeartRateError("flags", "empty payload", data)
    flags = data[0]
    if flags & _RESERVED:
        raise HeartRateError("flags", "reserved flag bit set", data)
    wide = bool(flags & _WIDE)
    pos = 1
    if wide:
        if len(data) < 3:
            problem = "u16 heart rate needs two bytes" if len(data) == 2 else "no heart-rate field"
            raise HeartRateError("heart_rate", problem, data)
        bpm = data[1] | data[2] << 8
        pos = 3
    else:
        if len(data) < 2:
            raise HeartRateError("heart_rate", "no heart-rate field", data)
        bpm = data[1]
        pos = 2
    energy: int | None = None
    if flags & _ENERGY:
        if len(data) < pos + 2:
            raise HeartRateError("energy_expended", "energy expended needs two bytes", data)
        energy = data[pos] | data[pos + 1] << 8
        pos += 2
    rr: tuple[float, ...] = ()
    rest = len(data) - pos
    if flags & _RR:
        if rest % 2:
            raise HeartRateError("rr_interval", "RR interval needs two bytes", data)
        rr = tuple(v / RR_UNITS_PER_S for v in struct.unpack_from(f"<{rest // 2}H", data, pos))
    elif rest:
        raise HeartRateError("length", f"trailing byte(s): {rest} after the last field", data)
    return HeartRateMeasurement(
        bpm=bpm,
        contact=_CONTACT_BITS[(flags & _CONTACT_MASK) >> 1],
        energy_kj=energy,
        rr_s=rr,
        wide=wide,
        rr_present=bool(flags & _RR),
    )


def encode(m: HeartRateMeasurement) -> bytes:
    """The bytes of a Heart Rate Measurement; u16 when ``m.wide`` or the rate needs it."""
    wide = m.wide or m.bpm > 0xFF
    flags = (_WIDE if wide else 0) | _BITS_OF_CONTACT[m.contact] << 1
    out = bytearray()
    out += struct.pack("<H", m.bpm) if wide else bytes([m.bpm])
    if m.energy_kj is not None:
        flags |= _ENERGY
        out += struct.pack("<H", m.energy_kj)
    if m.rr_s or m.rr_present:
        flags |= _RR
        for rr in m.rr_s:
            out += struct.pack("<H", round(rr * RR_UNITS_PER_S))
    return bytes([flags]) + bytes(out)
