"""Scenarios: a small declarative TOML format describing a simulated session.

A scenario says what the table and the user do (theta and heart rate over time), which
sensors watch them and how they are calibrated, what goes wrong (faults), what the user
presses (inputs), and which alarm events the safety core must produce (expect). The same
scenario makes a trace (``spotter sim trace``) and drives the simulated peripherals.
See ``docs/scenarios.md`` for the format.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.core import validation
from monitor.core.alarms import EventKind
from monitor.core.profiles import BUILTIN, Profile, ProfileError, profile_from_mapping
from monitor.core.trace import InputKind

SCENARIO_SUFFIX = ".toml"
SHIPPED = Path(__file__).parent / "scenarios"
"""The scenarios that ship with Spotter."""


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Point = tuple[float, float]


class CalibrationSpec(_Strict):
    """The calibration the station uses (and that the generator bakes into raw angles)."""

    offset_deg: float = Field(default=0.0, ge=-180, le=180)
    sign: Literal[1, -1] = 1
    axis: Literal["x", "y", "z", "pitch"] | None = None


class TiltSensorSpec(_Strict):
    """A simulated tilt sensor."""

    kind: Literal["spotter_tilt", "witmotion"] = "spotter_tilt"
    rate_hz: float = Field(default=100, gt=0, le=200)
    accel: bool = True
    gyro: bool = True
    ankle_lock: Literal["unknown", "open", "locked"] | None = None
    calibration: CalibrationSpec = CalibrationSpec()
    noise_deg: float = Field(default=0.0, ge=0, le=5)
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    split_frames: bool = False
    """WitMotion: cut the byte stream into chunks (at most 20 bytes) that split frames across
    notifications and let the tail of one share a notification with the head of the next."""
    register_reply_every_s: float | None = Field(default=None, gt=0)
    """WitMotion: a ``55 71`` register reply and two stray bytes in the stream this often."""


class HeartRateSensorSpec(_Strict):
    """A simulated heart-rate strap."""

    kind: Literal["heart_rate"] = "heart_rate"
    interval_s: float = Field(default=1.0, gt=0, le=10)
    rr: bool = True
    energy: bool = False
    battery_percent: int | None = Field(default=None, ge=0, le=100)


class Fault(_Strict):
    """Something going wrong in ``[start, end)`` (or at ``t`` for instant faults)."""

    kind: Literal[
        "contact_loss",
        "silence",
        "disconnect",
        "packet_loss",
        "artifact",
        "glitch",
        "impact",
        "malformed",
        "battery",
    ]
    sensor: str
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, ge=0)
    t: float | None = Field(default=None, ge=0)
    bpm: int | None = Field(default=None, ge=0, le=65535)
    theta_deg: float | None = None
    accel_g: float | None = Field(default=None, ge=0, le=16)
    freefall_s: float = Field(default=0.15, gt=0)
    peak_g: float = Field(default=2.8, gt=0, le=16)
    peak_s: float = Field(default=0.03, gt=0)
    every: int = Field(default=3, ge=2)
    hex: str | None = None
    percent: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        ranged = {"contact_loss", "silence", "disconnect", "packet_loss"}
        if self.kind in ranged:
            if self.start is None or self.end is None or self.end <= self.start:
                raise ValueError(f"a {self.kind} fault needs start < end")
        elif self.t is None:
            raise ValueError(f"a {self.kind} fault needs t")
        needs = {"artifact": "bpm", "malformed": "hex", "battery": "percent"}
        key = needs.get(self.kind)
        if key is not None and getattr(self, key) is None:
            raise ValueError(f"a {self.kind} fault needs {key}")
        if self.kind == "glitch" and self.theta_deg is None and self.accel_g is None:
            raise ValueError("a glitch fault needs theta_deg or accel_g")
        if self.hex is not None:
            try:
                bytes.fromhex(self.hex)
            except ValueError:
                raise ValueError(f"hex {self.hex!r} is not hexadecimal bytes") from None
        return self


class InputSpec(_Strict):
    """A user input at ``t``."""

    t: float = Field(ge=0)
    input: InputKind
    alarm: str | None = None
    by: str | None = None


class Expected(_Strict):
    """One alarm event the core must produce."""

    t: float = Field(ge=0)
    id: str
    event: EventKind
    priority: Literal["low", "medium", "high"]


class LiveSpec(_Strict):
    """How a scenario runs live over the virtual radio in tests: faster, maybe coarser.

    The station's clock runs ``speed`` times faster than real time and the tilt sensor may
    sample at ``tilt_rate_hz`` instead, so a long session plays in seconds. What is compared
    is the live run against the replay of the trace it recorded, so both see the same data.
    """

    speed: float = Field(default=10.0, gt=0, le=50)
    tilt_rate_hz: float | None = Field(default=None, gt=0, le=200)


class ScenarioModel(_Strict):
    """The TOML document."""

    name: str = Field(min_length=1)
    description: str = ""
    duration_s: float = Field(gt=0, le=4 * 3600)
    profile: str | dict[str, Any] = "beginner"
    age: float | None = Field(default=None, gt=0, lt=130)
    seed: int = 1
    station: str = "sim"
    started_at: datetime = datetime.fromisoformat("2026-11-22T10:00:00+00:00")
    tolerance_s: float = Field(default=0.25, gt=0)
    sensors: dict[str, Annotated[TiltSensorSpec | HeartRateSensorSpec, Field(discriminator="kind")]]
    theta: list[Point] = [(0.0, 0.0)]
    hr: list[Point] = [(0.0, 70.0)]
    faults: list[Fault] = []
    inputs: list[InputSpec] = []
    expect: list[Expected] = []
    expect_stats: dict[str, int] = {}
    live: LiveSpec = LiveSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for curve_name in ("theta", "hr"):
            curve: list[Point] = getattr(self, curve_name)
            if not curve:
                raise ValueError(f"{curve_name} needs at least one point")
            times = [p[0] for p in curve]
            if times != sorted(times):
                raise ValueError(f"{curve_name}: points must be in time order")
        tilts = [n for n, s in self.sensors.items() if s.kind != "heart_rate"]
        hrs = [n for n, s in self.sensors.items() if s.kind == "heart_rate"]
        if len(tilts) > 1 or len(hrs) > 1:
            raise ValueError("at most one tilt sensor and one heart-rate sensor")
        for fault in self.faults:
            if fault.sensor not in self.sensors:
                raise ValueError(f"fault {fault.kind}: no sensor named {fault.sensor!r}")
        times = [i.t for i in self.inputs]
        if times != sorted(times):
            raise ValueError("inputs must be in time order")
        if [e.t for e in self.expect] != sorted(e.t for e in self.expect):
            raise ValueError("expect must be in time order")
        return self


class Scenario:
    """A validated scenario with its profile resolved."""

    def __init__(self, model: ScenarioModel, profile: Profile, source: str) -> None:
        self.model = model
        self.profile = profile
        self.source = source

    @property
    def name(self) -> str:
        """The scenario's name."""
        return self.model.name

    def live_variant(self) -> Scenario:
        """This scenario as its ``[live]`` table says to run it over the virtual radio."""
        rate = self.model.live.tilt_rate_hz
        if rate is None:
            return self
        sensors = {
            name: spec.model_copy(update={"rate_hz": rate})
            if isinstance(spec, TiltSensorSpec)
            else spec
            for name, spec in self.model.sensors.items()
        }
        return Scenario(
            self.model.model_copy(update={"sensors": sensors}), self.profile, self.source
        )

    @property
    def tilt(self) -> tuple[str, TiltSensorSpec] | None:
        """The tilt sensor's name and spec, if the scenario has one."""
        for name, spec in self.model.sensors.items():
            if isinstance(spec, TiltSensorSpec):
                return name, spec
        return None

    @property
    def heart_rate(self) -> tuple[str, HeartRateSensorSpec] | None:
        """The strap's name and spec, if the scenario has one."""
        for name, spec in self.model.sensors.items():
            if isinstance(spec, HeartRateSensorSpec):
                return name, spec
        return None


def _describe(exc: ValidationError) -> str:
    return "; ".join(validation.problems(exc, "scenario"))


def parse_scenario(data: dict[str, Any], source: str) -> Scenario:
    """A scenario from parsed TOML."""
    try:
        model = ScenarioModel.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_describe(exc)}") from None
    if isinstance(model.profile, str):
        if model.profile not in BUILTIN:
            raise ScenarioError(f"{source}: profile: unknown built-in profile {model.profile!r}")
        profile = BUILTIN[model.profile]
    else:
        try:
            profile = profile_from_mapping(model.profile, f"{source} [profile]")
        except ProfileError as exc:
            raise ScenarioError(str(exc)) from None
    return Scenario(model, profile, source)


def builtin_names() -> list[str]:
    """The names of the scenarios shipped with Spotter."""
    return sorted(p.stem for p in SHIPPED.glob(f"*{SCENARIO_SUFFIX}"))


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix != SCENARIO_SUFFIX or not path.exists():
        shipped = SHIPPED / f"{name_or_path}{SCENARIO_SUFFIX}"
        if not shipped.is_file():
            names = ", ".join(builtin_names())
            raise ScenarioError(
                f"{name_or_path}: no such scenario file or shipped scenario ({names})"
            )
        text = shipped.read_text(encoding="utf-8")
        source = f"{name_or_path}{SCENARIO_SUFFIX}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{path}: cannot read: {exc}") from None
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    return parse_scenario(data, source)
