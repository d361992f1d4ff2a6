"""Battery Level (0x2A19): one u8, percent 0-100 (SPEC 4.1)."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.codecs.errors import CodecError


class BatteryError(CodecError):
    """A Battery Level payload that breaks the layout."""

    codec = "battery"


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """A sensor's battery charge."""

    percent: int

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ValueError(f"battery percent {self.percent} outside 0-100")


def decode(data: bytes) -> BatteryLevel:
    """Decode a Battery Level; raise :class:`BatteryError` naming the bad field."""
    if not data:
        raise BatteryError("level", "empty payload", data)
    if len(data) > 1:
        raise BatteryError("length", f"trailing byte(s): {len(data) - 1} after the level", data)
    if data[0] > 100:
        raise BatteryError("level", f"{data[0]} is above 100 percent", data)
    return BatteryLevel(data[0])


def encode(level: BatteryLevel) -> bytes:
    """The one byte of a Battery Level."""
    return bytes([level.percent])
