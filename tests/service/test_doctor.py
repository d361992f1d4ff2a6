"""monitor.cli.doctor: every check says what it found and, when not ok, what to fix.

The machine is reached through injectable commands, paths and scans; where the real thing is
deterministic anyway (no Bluetooth bus at a path that does not exist, a D-Bus with no BlueZ,
a bus that never answers) the real bleak code runs.
"""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)
from rich.console import Console

from monitor.cli.doctor import (
    CheckResult,
    CommandOutput,
    RunCommand,
    Status,
    bluetooth_problem,
    check_bluetooth,
    check_config,
    check_data_dir,
    check_permissions,
    check_sensors,
    check_service,
    check_sound,
    check_speech,
    check_store,
    exit_code,
    redact,
    render,
    run_checks,
    run_command,
)
from monitor.settings import BleConfig, load_settings

SECRET = "pover://u5er@t0ken-very-secret"
GOOD = """
[station]
name = "home"
data_dir = "{data}"

[sensors.tilt]
kind = "spotter_tilt"
address = "C4:7F:51:0A:12:34"

[sensors.hr]
kind = "heart_rate"
address = "F0:1D:4E:88:90:AB"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SPOTTER_* from the machine, no default config file, no real system bus."""
    for key in list(os.environ):
        if key.startswith("SPOTTER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def not_ok_have_fixes(results: Sequence[CheckResult]) -> None:
    for r in results:
        if r.status in (Status.WARN, Status.FAIL):
            assert r.fix.strip(), r


# -- configuration ---------------------------------------------------------------------


def test_a_good_configuration_is_summarised(tmp_path: Path) -> None:
    path = write(tmp_path / "spotter.toml", GOOD.format(data=tmp_path / "data"))
    result, settings = check_config(path)
    assert result.status is Status.OK, result
    assert settings is not None
    assert path in result.found
    assert "tilt (spotter_tilt, C4:7F:51:0A:12:34)" in result.found


def test_every_bad_key_is_named_and_no_secret_is_printed(tmp_path: Path) -> None:
    path = write(
        tmp_path / "spotter.toml",
        f'[station]\nnmae = "x"\n\n[ble]\nbackend = "radio"\n\n[push]\nurls = ["{SECRET}"]\n'
        'colour = "red"\n',
    )
    result, settings = check_config(path)
    assert settings is None
    assert result.status is Status.FAIL
    for key in ("station.nmae", "ble.backend", "push.colour"):
        assert key in result.found
    assert path in result.fix
    shown = render_text([result])
    assert "t0ken" not in shown
    assert "u5er" not in shown


def test_broken_toml_names_the_file_and_hides_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "spotter.toml", f'[push]\nurl = "{SECRET}\n')
    result, _ = check_config(path)
    assert result.status is Status.FAIL
    assert "not valid TOML" in result.found
    assert path in result.found
    assert "t0ken" not in result.found + result.fix


def test_a_missing_file_and_no_file_at_all(tmp_path: Path) -> None:
    result, _ = check_config(str(tmp_path / "nope.toml"))
    assert result.status is Status.FAIL
    assert "spotter init --path" in result.fix

    result, settings = check_config(None)  # no SPOTTER_CONFIG, no default file
    assert result.status is Status.WARN
    assert settings is not None
    assert "spotter init" in result.fix


def test_sensors_without_an_address_are_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "spotter.toml", '[station]\nname = "home"\n')
    result, settings = check_config(path)
    assert settings is not None
    assert result.status is Status.WARN
    assert "spotter scan" in result.fix
    assert "sensors.tilt.address" in result.fix
    assert "sensors.hr.address" in result.fix


def test_redact_hides_everything_after_the_scheme() -> None:
    assert redact(f"urls = ['{SECRET}', 'ntfy://topic']") == "urls = ['pover://…', 'ntfy://…']"
    assert redact("no url here: a.b = 3") == "no url here: a.b = 3"


# -- Bluetooth ---------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_no_dbus_system_bus_is_named_within_the_timeout() -> None:
    result = check_bluetooth(BleConfig(), scan_s=0.5, timeout_s=5.0)  # a hang: the test timeout
    assert result.status is Status.FAIL
    assert "no D-Bus system bus" in result.found
    assert "bluez" in result.fix
    assert "systemctl enable --now" in result.fix


@pytest.fixture
def bus_without_bluez(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real dbus-daemon on which nobody provides org.bluez."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon is not installed")
    address = f"unix:path={tmp_path}/bus"
    config = write(
        tmp_path / "bus.conf",
        f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""",
    )
    proc = subprocess.Popen(
        [daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("unix:")  # listening
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.timeout(30)
def test_dbus_without_bluez_says_bluez_is_not_running(bus_without_bluez: str) -> None:
    result = check_bluetooth(BleConfig(), scan_s=0.5, timeout_s=5.0)
    assert result.status is Status.FAIL
    assert "BlueZ not running" in result.found
    assert "sudo systemctl enable --now bluetooth" in result.fix


@pytest.fixture
def silent_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A socket that takes the connection and never says a word (a hung bus)."""
    path = tmp_path / "silent"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        server.listen(4)
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={path}")
        yield
    finally:
        server.close()


@pytest.mark.timeout(30)
def test_a_bus_that_never_answers_times_out(silent_bus: None) -> None:
    result = check_bluetooth(BleConfig(), scan_s=0.5, timeout_s=1.0)  # a hang: the test timeout
    assert result.status is Status.FAIL
    assert "did not answer within 1 s" in result.found
    assert "restart bluetooth" in result.fix


@pytest.mark.timeout(30)
def test_a_scan_that_blocks_its_loop_still_times_out() -> None:
    unblocked = threading.Event()

    async def stuck(scan_s: float) -> Sequence[object]:
        unblocked.wait(60)  # the point: a scan that blocks its loop (until the test says)
        return []

    result = check_bluetooth(None, discover=stuck, timeout_s=0.5)
    assert not unblocked.is_set()  # it answered while the scan was still blocked
    unblocked.set()
    assert result.status is Status.FAIL
    assert "did not answer" in result.found


@pytest.mark.timeout(30)
def test_an_adapter_that_scans_is_ok() -> None:
    async def three(scan_s: float) -> Sequence[object]:
        await asyncio.sleep(0)
        return ["a", "b", "c"]

    result = check_bluetooth(BleConfig(), discover=three, scan_s=1.0)
    assert result.status is Status.OK
    assert "3 BLE devices" in result.found


def test_the_simulated_radio_is_skipped_with_a_note() -> None:
    async def never(scan_s: float) -> Sequence[object]:
        raise AssertionError("no scan for the simulator")

    ble = BleConfig(backend="sim", sim_hub="tcp-client:127.0.0.1:7100")
    result = check_bluetooth(ble, discover=never)
    assert result.status is Status.SKIP
    assert "sim" in result.found
    assert "127.0.0.1:7100" in result.found


class Case(NamedTuple):
    error: BaseException
    found: str
    fix: str


@pytest.mark.parametrize(
    "case",
    [
        Case(
            FileNotFoundError(2, "No such file or directory"), "no D-Bus", "apt-get install bluez"
        ),
        Case(ConnectionRefusedError(111, "Connection refused"), "no D-Bus", "enable --now dbus"),
        Case(PermissionError(13, "Permission denied"), "not allowed", "usermod -aG bluetooth"),
        Case(
            BleakDBusError(
                "org.freedesktop.DBus.Error.ServiceUnknown",
                ["The name org.bluez was not provided by any .service files"],
            ),
            "BlueZ not running",
            "systemctl enable --now bluetooth",
        ),
        Case(
            BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", ["Rejected send message"]),
            "refused",
            "usermod -aG bluetooth",
        ),
        Case(
            BleakBluetoothNotAvailableError(
                "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
            ),
            "no Bluetooth adapter",
            "rfkill",
        ),
        Case(
            BleakBluetoothNotAvailableError(
                "No powered Bluetooth adapters found.",
                BleakBluetoothNotAvailableReason.POWERED_OFF,
            ),
            "switched off",
            "bluetoothctl power on",
        ),
        Case(
            BleakBluetoothNotAvailableError(
                "denied", BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM
            ),
            "denied",
            "usermod -aG bluetooth",
        ),
        Case(BleakError("something odd"), "something odd", "restart bluetooth"),
    ],
    ids=lambda case: type(case.error).__name__,
)
@pytest.mark.timeout(30)
def test_each_bluetooth_failure_says_what_is_missing_and_what_to_do(case: Case) -> None:
    async def failing(scan_s: float) -> Sequence[object]:
        raise case.error

    result = check_bluetooth(BleConfig(), discover=failing, timeout_s=5.0)
    assert result.status is Status.FAIL
    assert case.found in result.found
    assert case.fix in result.fix
    assert bluetooth_problem(case.error) == (result.found, result.fix)


# -- permissions -------------------------------------------------------------------------

BT, AUDIO = 112, 29


def groups(
    bluetooth: list[str] | None, audio: list[str] | None = None
) -> Callable[[str], grp.struct_group | None]:
    table = {
        "bluetooth": None
        if bluetooth is None
        else grp.struct_group(("bluetooth", "x", BT, bluetooth)),
        "audio": None if audio is None else grp.struct_group(("audio", "x", AUDIO, audio)),
    }
    return table.get


def test_root_may_use_bluetooth() -> None:
    assert check_permissions(uid=0, group=groups(None)).status is Status.OK


def test_a_member_of_bluetooth_and_audio_is_ok() -> None:
    result = check_permissions(uid=4242, gids={BT, AUDIO}, group=groups([], []))
    assert result.status is Status.OK, result


def test_not_in_bluetooth_fails_with_the_usermod_line() -> None:
    result = check_permissions(uid=4242, gids={AUDIO}, group=groups([], []))
    assert result.status is Status.FAIL
    assert "not in bluetooth" in result.found
    assert "sudo usermod -aG bluetooth 4242" in result.fix


def test_added_but_not_logged_in_again_is_a_warning() -> None:
    result = check_permissions(uid=4242, gids={AUDIO}, group=groups(["4242"], []))
    assert result.status is Status.WARN
    assert "log out and in again" in result.fix


def test_not_in_audio_is_a_warning() -> None:
    result = check_permissions(uid=4242, gids={BT}, group=groups([], []))
    assert result.status is Status.WARN
    assert "usermod -aG audio" in result.fix


def test_no_bluetooth_group_means_no_bluez() -> None:
    result = check_permissions(uid=4242, gids={AUDIO}, group=groups(None, []))
    assert result.status is Status.FAIL
    assert "sudo apt-get install bluez" in result.fix


def test_the_real_process_gets_a_result() -> None:
    result = check_permissions()
    not_ok_have_fixes([result])


# -- sound and speech ------------------------------------------------------------------

APLAY_CARD = (
    "**** List of PLAYBACK Hardware Devices ****\n"
    "card 0: Headphones [bcm2835 Headphones], device 0: bcm2835 Headphones [bcm2835 Headphones]\n"
    "  Subdevices: 8/8\n"
)
APLAY_NONE = "aplay: device_list:274: no soundcards found...\n"


def replies(output: CommandOutput) -> RunCommand:
    calls: list[list[str]] = []

    def run(argv: Sequence[str], timeout_s: float) -> CommandOutput:
        calls.append(list(argv))
        return output

    return run


@pytest.mark.timeout(30)
def test_no_sound_device_here_fails_with_a_fix() -> None:
    if Path("/dev/snd").is_dir():
        pytest.skip("this machine has /dev/snd")
    result = check_sound()
    assert result.status is Status.FAIL
    assert "no sound card" in result.found or "aplay" in result.found
    assert result.fix


def test_a_listed_card_is_ok(tmp_path: Path) -> None:
    (tmp_path / "snd").mkdir()
    result = check_sound(dev_snd=tmp_path / "snd", run=replies(CommandOutput(0, APLAY_CARD)))
    assert result.status is Status.OK
    assert result.found.startswith("card 0: Headphones")


def test_aplay_exits_0_with_no_card_and_that_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "snd").mkdir()
    result = check_sound(dev_snd=tmp_path / "snd", run=replies(CommandOutput(0, APLAY_NONE)))
    assert result.status is Status.FAIL
    assert "no card listed" in result.found
    assert "no soundcards found" in result.found


def test_no_dev_snd_fails_even_if_aplay_lists_a_card(tmp_path: Path) -> None:
    result = check_sound(dev_snd=tmp_path / "snd", run=replies(CommandOutput(0, APLAY_CARD)))
    assert result.status is Status.FAIL
    assert "missing" in result.found


def test_no_aplay_means_installing_alsa_utils(tmp_path: Path) -> None:
    missing = CommandOutput(None, "", "cannot run aplay: No such file or directory", False)
    result = check_sound(dev_snd=tmp_path, run=replies(missing))
    assert result.status is Status.FAIL
    assert result.fix == "sudo apt-get install alsa-utils"

    result = check_sound(dev_snd=tmp_path / "snd", run=replies(missing))
    assert f"{tmp_path / 'snd'} is missing" in result.found
    assert result.fix.startswith("sudo apt-get install alsa-utils; connect a speaker")


def test_a_hanging_aplay_is_reported(tmp_path: Path) -> None:
    hung = CommandOutput(None, "", "aplay did not finish within 5 s")
    result = check_sound(dev_snd=tmp_path, run=replies(hung))
    assert result.status is Status.FAIL
    assert "did not finish" in result.found


def test_speech_needs_espeak_ng() -> None:
    result = check_speech(which=lambda name: None)
    assert result.status is Status.WARN
    assert "apt-get install espeak-ng" in result.fix
    assert check_speech(which=lambda name: f"/usr/bin/{name}").status is Status.OK


@pytest.mark.timeout(30)
def test_run_command_reads_output_not_exit_codes_and_never_hangs() -> None:
    both = run_command(["sh", "-c", "echo out; echo err >&2; exit 3"], 5.0)
    assert both.returncode == 3
    assert "out" in both.output
    assert "err" in both.output

    missing = run_command(["no-such-command-for-spotter"], 5.0)
    assert not missing.started
    assert missing.returncode is None

    started = time.monotonic()
    hung = run_command(["sh", "-c", "sleep 30 & sleep 30"], 0.5)  # a grandchild too
    assert time.monotonic() - started < 30  # not waited for, however busy the machine
    assert hung.returncode is None
    assert "did not finish within 0.5 s" in str(hung.problem)


# -- data folder and store -------------------------------------------------------------


class Usage(NamedTuple):
    total: int
    used: int
    free: int


def free(n_bytes: int) -> Callable[[Path], Usage]:
    return lambda path: Usage(10 * n_bytes, 9 * n_bytes, n_bytes)


def test_a_writable_data_folder_with_room_is_ok(tmp_path: Path) -> None:
    result = check_data_dir(tmp_path, disk_usage=free(20_000_000_000))
    assert result.status is Status.OK
    assert "20 GB free" in result.found


def test_little_room_warns_and_almost_none_fails(tmp_path: Path) -> None:
    warn = check_data_dir(tmp_path, disk_usage=free(200_000_000))
    assert warn.status is Status.WARN
    assert "200 MB free" in warn.found
    assert warn.fix
    fail = check_data_dir(tmp_path, disk_usage=free(20_000_000))
    assert fail.status is Status.FAIL
    assert "20 MB free" in fail.found
    assert fail.fix


def test_a_folder_that_can_be_created_is_ok(tmp_path: Path) -> None:
    result = check_data_dir(tmp_path / "a" / "b", disk_usage=free(10**10))
    assert result.status is Status.OK
    assert "created on the first run" in result.found
    assert not (tmp_path / "a").exists()  # the doctor looks, it does not touch


def test_an_unwritable_or_uncreatable_folder_fails(tmp_path: Path) -> None:
    def denied(path: Path, mode: int) -> bool:
        return False

    result = check_data_dir(tmp_path, access=denied)
    assert result.status is Status.FAIL
    assert "chown" in result.fix
    result = check_data_dir(tmp_path / "new", access=denied)
    assert result.status is Status.FAIL
    assert "install -d" in result.fix


def test_a_file_where_the_folder_should_be_fails(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    result = check_data_dir(tmp_path / "data")
    assert result.status is Status.FAIL
    assert "not a folder" in result.found


def test_the_store_file_is_checked_if_present(tmp_path: Path) -> None:
    db = tmp_path / "spotter.db"
    assert check_store(db).status is Status.OK  # none yet

    db.write_bytes(b"SQLite format 3\0")
    db.chmod(0o600)
    assert check_store(db).status is Status.OK

    db.chmod(0o644)
    result = check_store(db)
    assert result.status is Status.WARN
    assert "0644" in result.found
    assert result.fix == f"chmod 600 {db}"

    result = check_store(db, access=lambda path, mode: False)
    assert result.status is Status.FAIL
    assert "chown spotter:spotter" in result.fix


def test_a_folder_named_like_the_store_fails(tmp_path: Path) -> None:
    (tmp_path / "spotter.db").mkdir()
    assert check_store(tmp_path / "spotter.db").status is Status.FAIL


# -- the systemd unit ------------------------------------------------------------------


def systemctl(is_enabled: str, is_active: str = "") -> RunCommand:
    def run(argv: Sequence[str], timeout_s: float) -> CommandOutput:
        assert argv[0] == "systemctl"
        text = is_enabled if argv[1] == "is-enabled" else is_active
        return CommandOutput(0 if text in ("enabled", "active") else 1, text + "\n")

    return run


def on_path(name: str) -> str:
    return f"/usr/bin/{name}"


@pytest.mark.parametrize(
    ("is_enabled", "is_active", "status", "fix"),
    [
        (
            "Failed to get unit file state for spotter.service: No such file or directory",
            "",
            Status.WARN,
            "install-pi.sh",
        ),
        ("disabled", "", Status.WARN, "systemctl enable --now"),
        ("enabled", "active", Status.OK, ""),
        ("enabled", "activating", Status.OK, ""),
        ("enabled", "failed", Status.FAIL, "journalctl -u spotter.service"),
        ("enabled", "inactive", Status.WARN, "systemctl start"),
        (
            "enabled",
            "System has not been booted with systemd as init system (PID 1). Can't operate.",
            Status.WARN,
            "boot with systemd",
        ),
    ],
)
def test_the_unit_installed_enabled_running(
    is_enabled: str, is_active: str, status: Status, fix: str
) -> None:
    result = check_service(run=systemctl(is_enabled, is_active), which=on_path)
    assert result.status is status, result
    assert fix in result.fix


def test_no_systemctl_is_skipped() -> None:
    result = check_service(which=lambda name: None)
    assert result.status is Status.SKIP


# -- all of it -------------------------------------------------------------------------


def render_text(results: Sequence[CheckResult]) -> str:
    console = Console(record=True, width=240, color_system=None)
    console.print(render(results))
    return console.export_text()


@pytest.mark.timeout(30)
def test_run_checks_here_every_problem_has_a_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = write(tmp_path / "spotter.toml", GOOD.format(data=data))
    results = run_checks(path)  # every check has its own timeout; a hang: the test's
    assert [r.name for r in results] == [
        "configuration",
        "permissions",
        "bluetooth",
        "sound",
        "speech",
        "sensors",
        "data folder",
        "store",
        "service",
    ]
    not_ok_have_fixes(results)
    by_name = {r.name: r for r in results}
    assert by_name["configuration"].status is Status.OK
    assert by_name["bluetooth"].status is Status.FAIL  # no system bus (see clean_env)
    assert "no D-Bus" in by_name["bluetooth"].found
    assert str(data) in by_name["data folder"].found
    assert exit_code(results) == 1
    shown = render_text(results)
    for r in results:
        assert r.name in shown


@pytest.mark.timeout(30)
def test_a_broken_configuration_skips_what_depends_on_it(tmp_path: Path) -> None:
    path = write(tmp_path / "spotter.toml", "[station]\nbogus = 1\n")
    results = {r.name: r for r in run_checks(path)}
    assert results["configuration"].status is Status.FAIL
    assert "station.bogus" in results["configuration"].found
    assert results["data folder"].status is Status.SKIP
    assert results["store"].status is Status.SKIP


def test_exit_code_fails_only_on_failures() -> None:
    ok = CheckResult("a", Status.OK, "fine")
    warn = CheckResult("b", Status.WARN, "meh", "do this")
    skip = CheckResult("c", Status.SKIP, "not here")
    fail = CheckResult("d", Status.FAIL, "broken", "do that")
    assert exit_code([ok, warn, skip]) == 0
    assert exit_code([ok, warn, skip, fail]) == 1


def test_a_problem_without_a_fix_is_refused() -> None:
    with pytest.raises(ValueError, match="fix"):
        CheckResult("a", Status.WARN, "meh")


def test_the_table_shows_values_verbatim() -> None:
    result = CheckResult("data folder", Status.FAIL, "[station] data_dir", "set [bold]x[/bold]")
    shown = render_text([result])
    assert "[station] data_dir" in shown
    assert "[bold]x[/bold]" in shown


@pytest.mark.timeout(30)
def test_sensors_check_with_an_unreachable_virtual_radio_says_what_to_start(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sim = f'\n[ble]\nbackend = "sim"\nsim_hub = "tcp-client:127.0.0.1:{port}"\n'
    path = write(tmp_path / "spotter.toml", GOOD.format(data=tmp_path) + sim)
    result = check_sensors(load_settings(path), scan_s=0.5)
    assert result.status is Status.SKIP
    assert "cannot reach the virtual radio" in result.found
    assert "spotter sim radio" in result.fix


def test_the_doctor_never_cuts_a_fix(tmp_path: Path) -> None:
    """Piped: plain lines, whole; on a narrow terminal: the table folds long words."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "spotter.toml"
    deep.parent.mkdir(parents=True)
    deep.write_text('[station]\nprofile = "beginer"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    piped = subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", "doctor", "--config", str(deep)],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "60"},
        timeout=120,
    )
    assert piped.returncode == 1, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[0] == "configuration: fail"
    assert "  found: station.profile: beginer: no such built-in profile" in lines[1]
    assert (
        lines[2]
        == f"  fix: edit {deep}: correct each key named (spotter config check says the same)"
    )
    assert "…" not in piped.stdout

    results = [CheckResult("configuration", Status.FAIL, "x", f"edit {deep}")]
    console = Console(record=True, width=60, color_system=None)
    console.print(render(results))
    table = console.export_text()
    assert "…" not in table
    fix = "".join(
        line.split("│")[-2].strip() for line in table.splitlines() if line.count("│") == 5
    )
    assert fix == f"edit{deep}"  # folded over lines (the space at a fold), every character
