"""Device profiles (firmware_sim/devices) are copies of real devices, not of the product:
literal UUIDs from public evidence, no import from ``monitor``; the profile format reads,
writes and recognises; the station's WitMotion UUIDs are the real ones and old traces that
spelled them on the SIG base still replay; the tilt-rate watch; WitMotion commands."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest

from firmware_sim.devices import (
    DEVICES_DIR,
    ProfileError,
    builtin,
    builtin_names,
    builtin_profiles,
    parse_profile,
    recognise,
    render_profile,
)
from monitor.core import gatt
from monitor.core.codecs import witmotion
from monitor.core.profiles import BUILTIN
from monitor.core.ratewatch import RateWatch
from monitor.core.replay import core_for, replay
from monitor.core.trace import Notification, TraceReader

# Literal strings from public evidence (SPEC 4.2 / 4.3, the SIG's assigned numbers, Polar's
# SDK): never derived from monitor.core.gatt, so a profile that copied a wrong constant fails.
WIT_SERVICE = "0000ffe5-0000-1000-8000-00805f9a34fb"
WIT_NOTIFY = "0000ffe4-0000-1000-8000-00805f9a34fb"
WIT_WRITE = "0000ffe9-0000-1000-8000-00805f9a34fb"
HR_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
HR_MEASUREMENT = "00002a37-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFORMATION = "0000180a-0000-1000-8000-00805f9b34fb"
POLAR_PMD = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
TILT = [f"f8d7000{i}-4cbe-42f1-8950-d15fd4f1e3dc" for i in (1, 2, 3, 4)]

EXPECTED_UUIDS = {
    "witmotion_bwt901ble5": [WIT_SERVICE, WIT_NOTIFY, WIT_WRITE],
    "spotter_tilt": [*TILT, BATTERY_SERVICE, BATTERY_LEVEL],
    "polar_h10": [
        HR_SERVICE,
        HR_MEASUREMENT,
        BATTERY_SERVICE,
        BATTERY_LEVEL,
        DEVICE_INFORMATION,
        POLAR_PMD,
    ],
    "basic_strap": [HR_SERVICE, HR_MEASUREMENT, DEVICE_INFORMATION],
    "dual_strap": [HR_SERVICE, HR_MEASUREMENT, BATTERY_SERVICE, BATTERY_LEVEL],
}


def test_every_model_the_issue_names_has_a_profile() -> None:
    assert sorted(EXPECTED_UUIDS) == builtin_names()


@pytest.mark.parametrize("name", sorted(EXPECTED_UUIDS))
def test_profile_files_spell_their_uuids_literally(name: str) -> None:
    text = (DEVICES_DIR / f"{name}.toml").read_text(encoding="utf-8")
    assert text.lstrip().startswith("#"), "a profile opens with its sources"
    assert "Sources" in text.split("\n\n")[0]
    profile = builtin(name)
    table = {s.uuid for s in profile.services} | {
        c.uuid for s in profile.services for c in s.characteristics
    }
    for uuid in EXPECTED_UUIDS[name]:
        assert uuid in text, f"{name}.toml does not spell {uuid}"
        assert uuid in table, f"{name}'s GATT table lacks {uuid}"


def test_the_witmotion_profile_is_on_the_vendor_base_with_its_quirks() -> None:
    wit = builtin("witmotion_bwt901ble5")
    assert wit.advertised_services == (WIT_SERVICE,)
    assert wit.stream == WIT_NOTIFY
    assert [s.uuid for s in wit.services] == [WIT_SERVICE]  # no Battery, no Device Information
    write = wit.characteristic(WIT_WRITE)
    assert write is not None
    assert "write-without-response" in write.properties
    assert wit.notify_rate_hz == 10
    assert wit.quirks["rate_codes"]["8"] == 50
    assert wit.quirks["rate_codes"]["9"] == 100
    uuids = [s.uuid for s in wit.services] + [
        c.uuid for s in wit.services for c in s.characteristics
    ]
    assert not [u for u in uuids if u.endswith("9b34fb")]  # only the CCCD is on the SIG base


def test_the_basic_strap_has_no_battery_and_the_polar_h10_has_its_pmd_service() -> None:
    assert not builtin("basic_strap").has_service(BATTERY_SERVICE)
    assert builtin("basic_strap").quirks["contact"] == "not supported"
    assert builtin("polar_h10").has_service(POLAR_PMD)
    assert builtin("dual_strap").quirks["hidden_while_connected_to_phone"] is True


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_nothing_under_firmware_sim_devices_imports_monitor() -> None:
    files = list(DEVICES_DIR.rglob("*.py"))
    assert files
    for path in files:
        bad = [n for n in _imports(path) if n == "monitor" or n.startswith("monitor.")]
        assert not bad, f"{path} imports {bad}"


def test_peripherals_take_no_uuid_or_name_from_monitor() -> None:
    """They may encode payloads with monitor.core.codecs (bytes pinned by the SPEC's vectors)."""
    allowed = ("monitor.core.codecs", "monitor.core.sensors")
    for path in (DEVICES_DIR.parent / "peripherals").glob("*.py"):
        for name in _imports(path):
            if name == "monitor" or name.startswith("monitor."):
                assert name.startswith(allowed), f"{path} imports {name}"


def test_the_station_uses_the_real_witmotion_uuids() -> None:
    assert (gatt.WITMOTION_SERVICE, gatt.WITMOTION_NOTIFY, gatt.WITMOTION_WRITE) == (
        WIT_SERVICE,
        WIT_NOTIFY,
        WIT_WRITE,
    )
    assert gatt.canonical("0000FFE4-0000-1000-8000-00805F9B34FB") == WIT_NOTIFY
    assert gatt.canonical(HR_MEASUREMENT.upper()) == HR_MEASUREMENT


@pytest.mark.parametrize("name", sorted(EXPECTED_UUIDS))
def test_a_rendered_profile_reads_back_the_same(name: str) -> None:
    import tomllib

    profile = builtin(name)
    again = parse_profile(tomllib.loads(render_profile(profile, ["a header"])), "rendered")
    assert again.table() == profile.table()
    assert [c.value for s in again.services for c in s.characteristics] == [
        c.value for s in profile.services for c in s.characteristics
    ]
    assert (again.advertised_services, again.stream, again.name_pattern) == (
        profile.advertised_services,
        profile.stream,
        profile.name_pattern,
    )


@pytest.mark.parametrize(
    ("name", "services", "model"),
    [
        ("WT901BLE68", [WIT_SERVICE], "witmotion_bwt901ble5"),
        ("Polar H10 8C4D2A2B", [HR_SERVICE], "polar_h10"),
        ("HRM-Dual:929843", [HR_SERVICE], "dual_strap"),
        ("TICKR 1A2B", [HR_SERVICE], "dual_strap"),
        ("Any Strap", [HR_SERVICE], "basic_strap"),
        (None, [HR_SERVICE], "basic_strap"),
        ("Spotter Tilt", [TILT[0]], "spotter_tilt"),
        (None, [WIT_SERVICE], "witmotion_bwt901ble5"),
    ],
)
def test_models_are_recognised_by_name_then_services(
    name: str | None, services: list[str], model: str
) -> None:
    found = recognise(name, services, builtin_profiles())
    assert found is not None
    assert found[0] == model


def test_an_unknown_device_is_not_recognised() -> None:
    assert (
        recognise("Toothbrush", ["0000fe95-0000-1000-8000-00805f9b34fb"], builtin_profiles())
        is None
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uuid": "ffe4"}, "not a 128-bit UUID"),
        ({"descriptors": []}, "CCCD"),
        ({"properties": ["notify", "shout"]}, "unknown ['shout']"),
        ({"value": "x", "value_hex": "00"}, "not both"),
    ],
)
def test_a_broken_profile_is_refused_naming_the_field(
    change: dict[str, object], message: str
) -> None:
    char = {
        "uuid": WIT_NOTIFY,
        "properties": ["notify"],
        "descriptors": ["00002902-0000-1000-8000-00805f9b34fb"],
    }
    raw = {"model": "m", "services": [{"uuid": WIT_SERVICE, "characteristics": [char | change]}]}
    with pytest.raises(ProfileError, match=r"services\[0\]\.characteristics\[0\]") as caught:
        parse_profile(raw, "broken.toml")
    assert message in str(caught.value)


# -- traces recorded with the old spelling still replay --------------------------------------


def _witmotion_trace(char: str) -> str:
    header = {
        "spotter_trace": 1,
        "station": "old",
        "started_at": "2026-11-22T10:00:00+00:00",
        "sensors": {"tilt": {"kind": "witmotion"}},
    }
    lines = [json.dumps(header)]
    for k in range(300):  # 6 s at 50 Hz: flat for 1 s, then 40 degrees (over the 30 limit)
        angle = 0.0 if k < 50 else 40.0
        frame = witmotion.encode_frame(
            witmotion.WitMotionFrame((0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (0.0, angle, 0.0))
        )
        lines.append(json.dumps({"t": k / 50, "sensor": "tilt", "char": char, "hex": frame.hex()}))
    lines.append(json.dumps({"t": 8.0, "end": True}))
    return "\n".join(lines) + "\n"


def _replayed(text: str) -> list[tuple[str, str, float]]:
    reader = TraceReader(io.StringIO(text), "trace")
    core = core_for(reader, BUILTIN["beginner"], None)
    return [(e.id, e.event.value, e.t) for e in replay(reader, core)]


def test_a_trace_with_the_old_sig_base_spelling_replays_like_the_real_one() -> None:
    old = _witmotion_trace("0000ffe4-0000-1000-8000-00805f9b34fb")
    real = _witmotion_trace(WIT_NOTIFY)
    reader = TraceReader(io.StringIO(old), "old")
    first = next(r for r in reader if isinstance(r, Notification))
    assert first.char == WIT_NOTIFY  # the reader maps the old spelling
    events = _replayed(old)
    assert ("angle.over_limit", "raised") in [(i, e) for i, e, _ in events]
    assert events == _replayed(real)


# -- the tilt-rate watch -------------------------------------------------------------------


def _feed(watch: RateWatch, rate_hz: float, seconds: float, t0: float = 0.0, n0: int = 0) -> int:
    n = n0
    steps = round(seconds * 10)
    for tick in range(1, steps + 1):
        t = t0 + tick / 10
        n = n0 + int(tick / 10 * rate_hz)
        watch.update(t, n)
    return n


def test_a_10_hz_sensor_makes_impact_detection_unavailable() -> None:
    watch = RateWatch()
    watch.link(True, 0)
    assert watch.problem() is None  # not measured yet: nothing claimed
    _feed(watch, 10, 7)
    assert watch.rate_hz == pytest.approx(10, abs=0.5)
    assert watch.problem() == "impact detection unavailable: sensor at 10 Hz"


def test_a_100_hz_sensor_is_fine_and_a_reconnect_measures_afresh() -> None:
    watch = RateWatch()
    watch.link(True, 0)
    n = _feed(watch, 100, 7)
    assert watch.rate_hz == pytest.approx(100, abs=5)
    assert watch.problem() is None
    watch.link(False, n)
    assert watch.rate_hz is None
    watch.link(True, n)
    _feed(watch, 10, 7, t0=7.0, n0=n)
    assert watch.problem() is not None


def test_a_50_hz_sensor_counted_one_short_is_still_enough_but_20_hz_is_not() -> None:
    watch = RateWatch()
    watch.link(True, 0)
    watch.update(0.1, 1)
    watch.update(3.1, 150)  # 149 samples in 3 s: a 50 Hz sensor, a window edge between two
    assert watch.problem() is None
    watch.update(6.1, 210)
    assert watch.problem() == "impact detection unavailable: sensor at 20 Hz"


def test_the_time_before_the_first_sample_does_not_count() -> None:
    watch = RateWatch()
    watch.link(True, 0)
    for tick in range(1, 30):  # 3 s of connecting and setting the rate: no samples
        watch.update(tick / 10, 0)
    _feed(watch, 100, 4, t0=3.0)
    assert watch.rate_hz == pytest.approx(100, abs=5)


def test_a_silent_sensor_is_not_called_slow() -> None:
    """Silence is tilt.signal_lost's to report: a window the sensor fell silent in does not
    count as a slow rate (the demo's sensors stop after the scenario: not "0 Hz")."""
    watch = RateWatch()
    watch.link(True, 0)
    n = _feed(watch, 100, 4)
    for tick in range(1, 100):  # 10 s without a sample, the link still up
        watch.update(4 + tick / 10, n)
    assert watch.problem() is None
    assert watch.rate_hz == pytest.approx(100, abs=5)
    _feed(watch, 10, 7, t0=14.0, n0=n)  # it comes back slow: that is measured again
    assert watch.problem() == "impact detection unavailable: sensor at 10 Hz"


# -- WitMotion commands (SPEC 4.3) ---------------------------------------------------------


def test_witmotion_commands_are_the_vendors_bytes() -> None:
    assert witmotion.rate_command(100) == bytes.fromhex("ffaa030900")
    assert witmotion.rate_command(50) == bytes.fromhex("ffaa030800")
    assert witmotion.read_command(0x03) == bytes.fromhex("ffaa270300")
    assert bytes.fromhex("ffaa6988b5") == witmotion.UNLOCK
    with pytest.raises(ValueError, match="no WitMotion return-rate code for 30"):
        witmotion.rate_command(30)
    with pytest.raises(ValueError, match="out of range"):
        witmotion.command(0x100, 0)
