"""``spotter scan --sim`` names each model from the device profiles and prints configuration
blocks; ``spotter sensors capture ADDRESS --sim`` writes a profile of a device's table."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from firmware_sim.devices import builtin, builtin_names, load_profile
from firmware_sim.radio import RADIO_ADDRESS_PREFIX
from tests.radio.conftest import SPOTTER, env

pytestmark = [pytest.mark.radio, pytest.mark.timeout(120)]


def address(profile_name: str) -> str:
    """The in-process radio numbers one device per shipped profile, in name order."""
    n = builtin_names().index(profile_name) + 1
    return f"{RADIO_ADDRESS_PREFIX}:{n >> 8:02X}:{n & 0xFF:02X}"


def spotter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SPOTTER, *args],
        capture_output=True,
        text=True,
        timeout=100,
        env={**env(), "COLUMNS": "200"},
        check=False,
    )


def test_scan_names_the_models_and_prints_ready_sensor_blocks() -> None:
    result = spotter("scan", "--sim", "--timeout", "1.5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in builtin_names():
        assert builtin(name).model in out, name
    blocks = out.split("For the configuration (spotter.toml), one tilt sensor and one strap:")[1]
    witmotion = next(b for b in blocks.split("\n\n") if "WitMotion BWT901BLE5.0" in b)
    parsed = tomllib.loads(witmotion)
    assert parsed["sensors"]["tilt"]["kind"] == "witmotion"
    assert parsed["sensors"]["tilt"]["address"] == address("witmotion_bwt901ble5")
    polar = next(b for b in blocks.split("\n\n") if "Polar H10" in b)
    assert tomllib.loads(polar)["sensors"]["hr"] == {
        "kind": "heart_rate",
        "address": address("polar_h10"),
    }


@pytest.mark.parametrize("name", ["witmotion_bwt901ble5", "polar_h10"])
def test_capture_writes_a_profile_with_the_devices_table(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.toml"
    result = spotter("sensors", "capture", address(name), "--sim", "--timeout", "3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    captured = load_profile(out)
    assert captured.table() == builtin(name).table()
    assert out.read_text(encoding="utf-8").startswith("# Captured by `spotter sensors capture")


def test_capture_of_an_absent_address_says_what_to_check() -> None:
    result = spotter("sensors", "capture", "AA:BB:CC:DD:EE:FF", "--sim", "--timeout", "1")
    assert result.returncode == 1
    assert "not connected to a phone or watch" in result.stderr
