"""GATT identifiers of every sensor Spotter speaks to (SPEC section 4), as bleak spells them."""

from __future__ import annotations

from typing import Final


def sig_uuid(short: int) -> str:
    """The full 128-bit string of a 16-bit Bluetooth SIG UUID."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


HEART_RATE_SERVICE: Final = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT: Final = sig_uuid(0x2A37)
BATTERY_SERVICE: Final = sig_uuid(0x180F)
BATTERY_LEVEL: Final = sig_uuid(0x2A19)
DEVICE_INFORMATION_SERVICE: Final = sig_uuid(0x180A)
MANUFACTURER_NAME: Final = sig_uuid(0x2A29)
MODEL_NUMBER: Final = sig_uuid(0x2A24)
FIRMWARE_REVISION: Final = sig_uuid(0x2A26)

TILT_SERVICE: Final = "f8d70001-4cbe-42f1-8950-d15fd4f1e3dc"
TILT_MEASUREMENT: Final = "f8d70002-4cbe-42f1-8950-d15fd4f1e3dc"
TILT_CONTROL_POINT: Final = "f8d70003-4cbe-42f1-8950-d15fd4f1e3dc"
TILT_SENSOR_INFO: Final = "f8d70004-4cbe-42f1-8950-d15fd4f1e3dc"

# WitMotion BWT901BLE5.0 (SPEC 4.3): 16-bit-looking UUIDs, but on the vendor's own base
# ``…00805f9a34fb`` (9a, not the SIG's 9b), as real units advertise them.
WITMOTION_SERVICE: Final = "0000ffe5-0000-1000-8000-00805f9a34fb"
WITMOTION_NOTIFY: Final = "0000ffe4-0000-1000-8000-00805f9a34fb"
WITMOTION_WRITE: Final = "0000ffe9-0000-1000-8000-00805f9a34fb"

LEGACY_SPELLINGS: Final = {
    sig_uuid(0xFFE5): WITMOTION_SERVICE,
    sig_uuid(0xFFE4): WITMOTION_NOTIFY,
    sig_uuid(0xFFE9): WITMOTION_WRITE,
}
"""UUIDs Spotter once spelled wrongly (the WitMotion ones on the SIG base, before issue 9):
traces recorded then still name them so; they mean the same characteristic."""


def canonical(uuid: str) -> str:
    """A UUID in lower case, with a legacy spelling mapped to the real one."""
    lowered = uuid.lower()
    return LEGACY_SPELLINGS.get(lowered, lowered)
