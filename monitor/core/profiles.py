"""Safety profiles (SPEC section 6): the built-in ``beginner`` and ``standard``, and TOML files.

A profile file names a ``base`` (default ``beginner``) and overrides any of its numbers. An
unknown key or an impossible value is an error that names the key and the file.

What comes from the network is a profile NAME, never a path: a built-in one, or one a
clinician uploaded as TOML text (validated by :func:`profile_from_text` and kept in the
store). Only the local command line names files, and the shell reads them
(:func:`monitor.settings.load_profile`): this module parses text and mappings only.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.core import validation
from monitor.core.limits import SESSION_HARD_CAP_S


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


class Profile(BaseModel):
    """Every number the safety rules use. Names carry their unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    # angle and time
    max_angle_deg: float = Field(gt=10, le=90)
    angle_high_margin_deg: float = Field(default=20, gt=0)
    angle_delay_s: float = Field(default=2, ge=0)
    max_hold_s: float = Field(gt=0)
    min_rest_s: float = Field(default=90, ge=0)
    max_session_inverted_s: float = Field(gt=0, le=SESSION_HARD_CAP_S)
    max_day_inverted_s: float = Field(default=900, gt=0)
    session_idle_end_s: float = Field(default=600, gt=0)
    # motion and falls (not validated on tables: keep them adjustable)
    come_up_max_dps: float = Field(default=30, gt=0)
    motion_max_dps: float = Field(default=90, gt=0)
    motion_delay_s: float = Field(default=0.5, ge=0)
    freefall_g: float = Field(default=0.5, gt=0, lt=1)
    freefall_min_s: float = Field(default=0.08, gt=0)
    impact_g: float = Field(default=2.5, gt=1)
    impact_window_s: float = Field(default=1.0, gt=0)
    shock_g: float = Field(default=3.0, gt=1)
    # heart rate
    hr_high_bpm: float = Field(default=120, gt=40, lt=220)
    hr_high_delay_s: float = Field(default=10, ge=0)
    hr_critical_high_cap_bpm: float = Field(default=150, gt=40, le=220)
    hr_max_fraction: float = Field(default=0.85, gt=0, le=1)
    hr_critical_high_delay_s: float = Field(default=5, ge=0)
    hr_low_bpm: float = Field(default=45, ge=30, lt=120)
    hr_low_delay_s: float = Field(default=10, ge=0)
    hr_critical_low_bpm: float = Field(default=40, ge=30, lt=120)
    hr_critical_low_delay_s: float = Field(default=5, ge=0)
    hr_spike_bpm: float = Field(default=30, gt=0)
    hr_spike_baseline_s: float = Field(default=60, gt=0)
    hr_spike_rise_s: float = Field(default=15, gt=0)
    hr_spike_delay_s: float = Field(default=5, ge=0)
    hr_spike_posture_s: float = Field(default=20, ge=0)
    hr_artifact_fraction: float = Field(default=0.2, gt=0, lt=1)
    hr_artifact_window_s: float = Field(default=30, gt=0)
    hr_artifact_delay_s: float = Field(default=30, ge=0)
    hr_lost_delay_s: float = Field(default=5, gt=0)
    hr_lost_high_s: float = Field(default=30, gt=0)
    # sensors and the user
    tilt_lost_delay_s: float = Field(default=2, gt=0)
    tilt_lost_high_s: float = Field(default=10, gt=0)
    symptom_fall_deg: float = Field(default=5, gt=0)
    symptom_window_s: float = Field(default=15, gt=0)
    not_returning_fall_deg: float = Field(default=5, gt=0)
    not_returning_window_s: float = Field(default=30, gt=0)
    battery_low_percent: float = Field(default=15, ge=0, le=100)
    spotter_required: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        pairs = (
            ("hr_critical_low_bpm", "hr_low_bpm"),
            ("hr_low_bpm", "hr_high_bpm"),
            ("come_up_max_dps", "motion_max_dps"),
            ("impact_g", "shock_g"),
            ("hr_lost_delay_s", "hr_lost_high_s"),
            ("tilt_lost_delay_s", "tilt_lost_high_s"),
        )
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) is above {high}")
        if self.max_hold_s > self.max_session_inverted_s:
            raise ValueError(
                f"max_hold_s ({self.max_hold_s}) is above max_session_inverted_s "
                f"({self.max_session_inverted_s})"
            )
        return self

    def hr_critical_high_bpm(self, age_years: float | None) -> float:
        """The high-priority heart-rate limit: min(cap, 0.85 x (208 - 0.7 x age)) (Tanaka)."""
        if age_years is None:
            return self.hr_critical_high_cap_bpm
        return min(self.hr_critical_high_cap_bpm, self.hr_max_fraction * (208 - 0.7 * age_years))


BUILTIN: dict[str, Profile] = {
    "beginner": Profile(
        name="beginner",
        max_angle_deg=30,
        max_hold_s=60,
        max_session_inverted_s=300,
        spotter_required=True,
    ),
    "standard": Profile(
        name="standard",
        max_angle_deg=60,
        max_hold_s=120,
        max_session_inverted_s=600,
    ),
}
DEFAULT_PROFILE = "beginner"
PROFILE_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
"""A profile's name over the network: lower-case letters, digits, ``_`` and ``-`` (never a
path: no ``/`` or ``.``)."""
MAX_PROFILE_BYTES = 16_384
"""The largest profile TOML accepted as text (an uploaded one)."""


def is_name(text: str) -> bool:
    """Whether ``text`` is a profile name (as opposed to a file path)."""
    return re.fullmatch(PROFILE_NAME, text) is not None


def stored_key(name: str) -> str:
    """The store setting that holds the TOML text of the stored profile ``name``."""
    return f"profile.{name}"


def _describe(exc: ValidationError, source: str) -> str:
    found = validation.problems(exc, "profile", missing="required key missing")
    return f"{source}: " + "; ".join(found)


def profile_from_mapping(data: dict[str, Any], source: str) -> Profile:
    """A profile from parsed TOML: ``base`` (a built-in name) plus overrides."""
    values = dict(data)
    base_name = values.pop("base", DEFAULT_PROFILE)
    if base_name not in BUILTIN:
        known = ", ".join(BUILTIN)
        raise ProfileError(f"{source}: base: unknown profile {base_name!r} (built in: {known})")
    merged = BUILTIN[base_name].model_dump()
    merged["name"] = Path(source).stem if "name" not in values else values["name"]
    merged.update(values)
    try:
        return Profile.model_validate(merged)
    except ValidationError as exc:
        raise ProfileError(_describe(exc, source)) from None


def profile_from_toml(text: str, source: str) -> Profile:
    """A profile from the TOML text of a file named ``source`` (the shell reads the file:
    :func:`monitor.settings.load_profile`); errors name ``source`` and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    return profile_from_mapping(data, source)


def profile_from_text(text: str, name: str) -> Profile:
    """A profile from TOML text (an upload) named ``name``; errors name the key, never a file.
    The text's own ``name`` key, if any, must agree."""
    if not is_name(name):
        raise ProfileError(f"profile name {name[:60]!r}: use a-z, 0-9, _ and - (40 at most)")
    if len(text.encode("utf-8", "replace")) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{name}: a profile is at most {MAX_PROFILE_BYTES} bytes of TOML")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{name}: not valid TOML: {exc}") from None
    if data.get("name", name) != name:
        raise ProfileError(f"{name}: name: the text names another profile")
    return profile_from_mapping({**data, "name": name}, name)
