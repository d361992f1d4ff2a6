"""What a station knows about each sensor: its kind and, for tilt sensors, its calibration."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from monitor.core import gatt


class SensorKind(enum.StrEnum):
    """The sensor protocols Spotter understands (SPEC section 4)."""

    HEART_RATE = "heart_rate"
    SPOTTER_TILT = "spotter_tilt"
    WITMOTION = "witmotion"

    @property
    def is_tilt(self) -> bool:
        """True for the kinds that measure the table's angle."""
        return self is not SensorKind.HEART_RATE

    @property
    def service_uuid(self) -> str:
        """The GATT service a sensor of this kind advertises and serves."""
        return _SERVICE[self]

    @property
    def stream_uuid(self) -> str:
        """The characteristic whose notifications carry this kind's readings."""
        return _STREAM[self]


_SERVICE = {
    SensorKind.HEART_RATE: gatt.HEART_RATE_SERVICE,
    SensorKind.SPOTTER_TILT: gatt.TILT_SERVICE,
    SensorKind.WITMOTION: gatt.WITMOTION_SERVICE,
}
_STREAM = {
    SensorKind.HEART_RATE: gatt.HEART_RATE_MEASUREMENT,
    SensorKind.SPOTTER_TILT: gatt.TILT_MEASUREMENT,
    SensorKind.WITMOTION: gatt.WITMOTION_NOTIFY,
}
AXIS_SYNONYMS = {"x": "x", "y": "y", "z": "z", "pitch": "y"}
"""Which of a sensor's angles is theta; ``pitch`` is the y axis (SPEC 4.3)."""


class SensorSpecError(ValueError):
    """A sensor description (trace header, configuration) that cannot be used."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """``theta = sign * (sensor_angle - offset_deg)`` on the chosen ``axis`` (SPEC section 3)."""

    offset_deg: float = 0.0
    sign: int = 1
    axis: str = "y"

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise SensorSpecError(f"calibration sign must be 1 or -1, not {self.sign!r}")
        if self.axis not in AXIS_SYNONYMS:
            raise SensorSpecError(f"calibration axis must be x, y, z or pitch, not {self.axis!r}")
        if not -180.0 <= self.offset_deg <= 180.0:
            raise SensorSpecError(f"calibration offset_deg {self.offset_deg} outside -180..180")

    @property
    def axis_index(self) -> int:
        """0, 1 or 2 for x, y or z."""
        return "xyz".index(AXIS_SYNONYMS[self.axis])

    def theta(self, sensor_angle_deg: float) -> float:
        """The inversion angle for a sensor angle."""
        return self.sign * (sensor_angle_deg - self.offset_deg)

    def sensor_angle(self, theta_deg: float) -> float:
        """The sensor angle that reads as ``theta_deg`` (the inverse, used by the simulator)."""
        return theta_deg * self.sign + self.offset_deg

    def to_json(self) -> dict[str, Any]:
        """As the trace header writes it."""
        return {"offset_deg": self.offset_deg, "sign": self.sign, "axis": self.axis}

    @classmethod
    def from_json(cls, raw: object, kind: SensorKind) -> Calibration:
        """Parse a header's ``calibration`` object; missing keys take the defaults."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SensorSpecError("calibration must be an object")
        unknown = set(raw) - {"offset_deg", "sign", "axis"}
        if unknown:
            raise SensorSpecError(f"unknown calibration key(s): {', '.join(sorted(unknown))}")
        offset = raw.get("offset_deg", 0.0)
        sign = raw.get("sign", 1)
        axis = raw.get("axis", "pitch" if kind is SensorKind.SPOTTER_TILT else "y")
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise SensorSpecError(f"calibration offset_deg must be a number, not {offset!r}")
        calibration = cls(float(offset), sign, axis)
        if kind is SensorKind.SPOTTER_TILT and calibration.axis_index != 1:
            raise SensorSpecError(f"a spotter_tilt sensor has only the pitch axis, not {axis!r}")
        return calibration


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One sensor of a station: what it is, and how its angle becomes theta."""

    kind: SensorKind
    calibration: Calibration = Calibration()

    def to_json(self) -> dict[str, Any]:
        """As the trace header writes it."""
        if self.kind.is_tilt:
            return {"kind": self.kind.value, "calibration": self.calibration.to_json()}
        return {"kind": self.kind.value}

    @classmethod
    def from_json(cls, raw: object) -> SensorSpec:
        """Parse one entry of a header's ``sensors``."""
        if not isinstance(raw, dict):
            raise SensorSpecError("a sensor must be an object with a kind")
        try:
            kind = SensorKind(str(raw.get("kind")))
        except ValueError:
            known = ", ".join(k.value for k in SensorKind)
            raise SensorSpecError(
                f"unknown sensor kind {raw.get('kind')!r} (known: {known})"
            ) from None
        if not kind.is_tilt:
            return cls(kind)
        return cls(kind, Calibration.from_json(raw.get("calibration"), kind))
