"""Profiles: built-ins, TOML files, validation (SPEC section 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.core.profiles import BUILTIN, ProfileError
from monitor.settings import load_profile


def test_builtins_carry_the_spec_numbers() -> None:
    b, s = BUILTIN["beginner"], BUILTIN["standard"]
    assert (b.max_angle_deg, b.max_hold_s, b.min_rest_s, b.max_session_inverted_s) == (
        30,
        60,
        90,
        300,
    )
    assert (s.max_angle_deg, s.max_hold_s, s.min_rest_s, s.max_session_inverted_s) == (
        60,
        120,
        90,
        600,
    )
    assert b.max_day_inverted_s == s.max_day_inverted_s == 900
    assert b.spotter_required
    assert not s.spotter_required
    assert load_profile("beginner") is b


@pytest.mark.parametrize(("age", "limit"), [(None, 150), (30, 150), (60, 141.1), (80, 129.2)])
def test_age_dependent_hr_limit(age: float | None, limit: float) -> None:
    assert BUILTIN["beginner"].hr_critical_high_bpm(age) == pytest.approx(limit)


def test_a_profile_file_overrides_its_base(tmp_path: Path) -> None:
    path = tmp_path / "anna.toml"
    path.write_text('base = "standard"\nmax_angle_deg = 45\nmax_hold_s = 90\n')
    p = load_profile(str(path))
    assert (p.name, p.max_angle_deg, p.max_hold_s, p.max_session_inverted_s) == (
        "anna",
        45,
        90,
        600,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("max_hold = 30\n", "max_hold: unknown key"),
        ("max_hold_s = 0\n", "max_hold_s: Input should be greater than 0"),
        ("max_angle_deg = 120\n", "max_angle_deg: Input should be less than or equal to 90"),
        ("max_session_inverted_s = 900\n", "max_session_inverted_s"),
        ("hr_low_bpm = 35\n", "hr_critical_low_bpm (40.0) is above hr_low_bpm"),
        ("max_hold_s = 'long'\n", "max_hold_s: Input should be a valid number"),
        ('base = "expert"\n', "base: unknown profile 'expert'"),
        ("max_hold_s = \n", "not valid TOML"),
    ],
)
def test_bad_profiles_name_the_file_and_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_an_unknown_name_is_not_a_file_either() -> None:
    with pytest.raises(ProfileError, match="no such built-in profile"):
        load_profile("heroic")
