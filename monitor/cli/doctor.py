"""``spotter doctor``: is this machine ready to be a station, and if not, what to do.

Each check is a function returning a :class:`CheckResult` (what was found, and for a warning or
a failure what to fix). The machine is reached only through arguments with real defaults (a
command runner, paths, the Bluetooth scan, the user's groups), so tests can stand in for any of
it. Every check has a timeout and none raises: a broken machine is the expected input here.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import grp
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import threading
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)
from rich.table import Table
from rich.text import Text

from monitor.settings import (
    BleConfig,
    ConfigError,
    Settings,
    config_path,
    load_settings,
    run_problems,
)

if TYPE_CHECKING:
    from monitor.ble.scan import Found

T = TypeVar("T")

SERVICE_UNIT = "spotter.service"
MB = 1_000_000
FREE_WARN_BYTES = 500 * MB
FREE_FAIL_BYTES = 50 * MB
COMMAND_TIMEOUT_S = 5.0
SCAN_S = 3.0
BLUETOOTH_TIMEOUT_S = 10.0
_THREAD_GRACE_S = 0.5
AS_SERVICE_USER = (
    "sudo -u spotter env SPOTTER_CONFIG=/etc/spotter/spotter.toml "
    "/opt/spotter/.venv/bin/spotter doctor"
)
_RUN_AS_SERVICE = f"run the doctor as the station's user: {AS_SERVICE_USER}"


class Status(enum.StrEnum):
    """How a check came out. Only ``fail`` makes ``spotter doctor`` exit 1."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, how it came out, what it found and (unless ok) what to do."""

    name: str
    status: Status
    found: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status in (Status.WARN, Status.FAIL) and not self.fix:
            raise ValueError(f"check {self.name}: a {self.status} needs a fix text")


# -- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandOutput:
    """What a command printed (stdout and stderr together, C locale)."""

    returncode: int | None
    """None when it could not run or was killed for taking too long (see ``problem``)."""
    output: str
    problem: str | None = None
    started: bool = True
    """False when the program is not there (or not executable)."""


RunCommand = Callable[[Sequence[str], float], CommandOutput]


def run_command(argv: Sequence[str], timeout_s: float) -> CommandOutput:
    """Run ``argv`` with no input, in its own process group, killed after ``timeout_s``."""
    env = {**os.environ, "LC_ALL": "C", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandOutput(None, "", f"cannot run {argv[0]}: {exc.strerror or exc}", False)
    with proc:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                out, _ = proc.communicate(timeout=1.0)
            except subprocess.TimeoutExpired:  # something outside the group holds the pipe
                out = ""
            return CommandOutput(None, out, f"{argv[0]} did not finish within {timeout_s:g} s")
    return CommandOutput(proc.returncode, out)


def _await_in_thread(make: Callable[[], Coroutine[Any, Any, T]], timeout_s: float) -> T:
    """Run a coroutine on its own event loop in a daemon thread; TimeoutError after
    ``timeout_s`` even if the coroutine ignores cancellation or blocks its loop."""
    outcome: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(asyncio.wait_for(make(), timeout_s)))
        except BaseException as exc:  # handed to the caller below
            error.append(exc)

    thread = threading.Thread(target=target, name="spotter-doctor", daemon=True)
    thread.start()
    thread.join(timeout_s + _THREAD_GRACE_S)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if error:
        raise error[0]
    return outcome[0]


_SEVERITY = [Status.SKIP, Status.OK, Status.WARN, Status.FAIL]


def _worse(a: Status, b: Status) -> Status:
    return max(a, b, key=_SEVERITY.index)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _size(n_bytes: int) -> str:
    if n_bytes >= 10_000 * MB:
        return f"{n_bytes / 1e9:.0f} GB"
    if n_bytes >= 1000 * MB:
        return f"{n_bytes / 1e9:.1f} GB"
    return f"{n_bytes / MB:.0f} MB"


# -- configuration ---------------------------------------------------------------------

_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://[^\s'\"<>]+")


def redact(text: str) -> str:
    """Hide everything after ``scheme://`` (push targets carry tokens and passwords)."""
    return _URL.sub(r"\1://…", text)


def check_config(settings_path: str | None) -> tuple[CheckResult, Settings | None]:
    """Load the configuration as ``spotter run`` would; name every bad key, print no secret."""
    name = "configuration"
    file = config_path(settings_path)
    try:
        settings = load_settings(settings_path)
    except ConfigError as exc:
        problems = redact(str(exc)).replace("; ", "\n")
        where = file or "the SPOTTER_* environment variables"
        if "Permission denied" in problems:
            fix = f"{_RUN_AS_SERVICE} (or with sudo)"
        elif "no such configuration file" in problems:
            fix = f"spotter init --path {file}, or point SPOTTER_CONFIG at the right file"
        else:
            fix = (
                f"edit {where}: correct or remove each key named "
                "(`spotter init --path NEW.toml` writes a commented example to compare)"
            )
        return CheckResult(name, Status.FAIL, problems, fix), None
    refused = run_problems(settings)
    if refused:
        where = file or "the SPOTTER_* environment variables"
        fix = f"edit {where}: correct each key named (spotter config check says the same)"
        return CheckResult(name, Status.FAIL, redact("\n".join(refused)), fix), None
    sensors = ", ".join(
        f"{n} ({s.kind.value}, {s.address or s.name or 'any in range'})"
        for n, s in settings.sensors.items()
    )
    summary = redact(
        f"{file or 'no file: defaults and SPOTTER_* environment'}\n"
        f"station {settings.station.name}, backend {settings.ble.backend}, sensors: {sensors}"
    )
    if file is None:
        return CheckResult(
            name,
            Status.WARN,
            summary,
            "spotter init --path ~/.config/spotter/spotter.toml (or set SPOTTER_CONFIG)",
        ), settings
    unaddressed = [n for n, s in settings.sensors.items() if s.address is None and s.name is None]
    if unaddressed and settings.ble.backend == "bleak":
        keys = ", ".join(f"sensors.{n}.address" for n in unaddressed)
        return CheckResult(
            name,
            Status.WARN,
            summary + f"\nno address for {', '.join(unaddressed)}: the first sensor of that "
            "kind in range is used (a neighbour's strap, too)",
            f"run `spotter scan` and set {keys} in {file}",
        ), settings
    return CheckResult(name, Status.OK, summary), settings


# -- Bluetooth -------------------------------------------------------------------------

Discover = Callable[[float], Coroutine[Any, Any, Sequence[object]]]
"""Scan for ``scan_s`` seconds and return what answered (bleak's ``BleakScanner.discover``)."""


async def bleak_discover(scan_s: float) -> Sequence[object]:
    """The platform's Bluetooth, through bleak."""
    from bleak import BleakScanner

    return await BleakScanner.discover(timeout=scan_s)


_JOIN_BLUETOOTH = "sudo usermod -aG bluetooth $USER, then log out and in again"
_RESTART_BLUEZ = "sudo systemctl restart bluetooth; see journalctl -u bluetooth"


def bluetooth_problem(exc: BaseException) -> tuple[str, str]:
    """What a failed scan says is missing, and what to do about it."""
    text = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return (
            f"no D-Bus system bus ({text})",
            "install and start bluez and dbus: sudo apt-get install bluez dbus && "
            "sudo systemctl enable --now dbus bluetooth",
        )
    if isinstance(exc, PermissionError):
        return f"not allowed to use the D-Bus system bus ({text})", _JOIN_BLUETOOTH
    if isinstance(exc, BleakDBusError):
        if "AccessDenied" in exc.dbus_error:
            return f"BlueZ refused this user ({text})", _JOIN_BLUETOOTH
        if "org.bluez" in str(exc) or "ServiceUnknown" in exc.dbus_error:
            return (
                f"BlueZ not running ({text})",
                "sudo systemctl enable --now bluetooth (install it first: sudo apt-get "
                "install bluez)",
            )
        return f"BlueZ error ({text})", _RESTART_BLUEZ
    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason
        if reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            return (
                "the Bluetooth adapter is switched off",
                "sudo rfkill unblock bluetooth && bluetoothctl power on",
            )
        if reason is BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE:
            return "the adapter cannot act as a BLE central", "use a Bluetooth 4.0+ adapter"
        if reason is BleakBluetoothNotAvailableReason.NO_BLUETOOTH:
            return (
                "no Bluetooth adapter",
                "check `rfkill list` (sudo rfkill unblock bluetooth) and that "
                "/boot/firmware/config.txt has no dtoverlay=disable-bt; "
                "or plug in a USB Bluetooth adapter",
            )
        return f"Bluetooth denied ({text})", _JOIN_BLUETOOTH
    if isinstance(exc, BleakError | OSError):
        from monitor.ble.link import describe

        return describe(exc), _RESTART_BLUEZ
    return f"unexpected error ({text})", "report this as a Spotter bug"


def check_bluetooth(
    ble: BleConfig | None,
    *,
    discover: Discover = bleak_discover,
    scan_s: float = SCAN_S,
    timeout_s: float = BLUETOOTH_TIMEOUT_S,
) -> CheckResult:
    """Scan briefly with the configured backend (the platform's unless ``sim``)."""
    name = "bluetooth"
    if ble is not None and ble.backend == "sim":
        return CheckResult(
            name,
            Status.SKIP,
            f"ble.backend = 'sim': the station uses the virtual radio ({ble.sim_hub or 'none'})",
        )
    try:
        found = _await_in_thread(lambda: discover(scan_s), timeout_s)
    except TimeoutError:
        return CheckResult(
            name,
            Status.FAIL,
            f"Bluetooth did not answer within {timeout_s:g} s",
            _RESTART_BLUEZ + "; check `rfkill list`",
        )
    except Exception as exc:
        what, fix = bluetooth_problem(exc)
        return CheckResult(name, Status.FAIL, what, fix)
    return CheckResult(
        name, Status.OK, f"the adapter scanned: {len(found)} BLE devices in range in {scan_s:g} s"
    )


async def _scan_configured(ble: BleConfig, scan_s: float) -> Sequence[Found]:
    """What advertises, through the configured backend (the platform's or the virtual radio)."""
    from monitor.ble.backend import open_backend
    from monitor.ble.scan import scan

    backend = await open_backend(ble)
    try:
        return await scan(backend, scan_s, read_battery=False)
    finally:
        await backend.close()


ScanFound = Callable[[BleConfig, float], Coroutine[Any, Any, Sequence["Found"]]]
"""Scan through the configured backend for ``scan_s`` seconds (``monitor.ble.scan.scan``)."""


def check_sensors(
    settings: Settings,
    *,
    scan_found: ScanFound = _scan_configured,
    scan_s: float = SCAN_S,
    timeout_s: float = BLUETOOTH_TIMEOUT_S,
) -> CheckResult:
    """Is each configured sensor advertising? One that is not is most often busy with a
    phone or watch (a strap takes one central and stops advertising while it has one)."""
    from monitor.ble.backend import BackendError
    from monitor.ble.scan import not_seen

    name = "sensors"
    try:
        found = _await_in_thread(lambda: scan_found(settings.ble, scan_s), timeout_s)
    except BackendError as exc:
        return CheckResult(
            name,
            Status.SKIP,
            f"could not scan: {exc}",
            "start the virtual radio (`spotter sim radio`) or correct ble.sim_hub",
        )
    except Exception as exc:
        what, fix = bluetooth_problem(exc)
        return CheckResult(name, Status.SKIP, f"could not scan: {what}", fix)
    missing = not_seen(found, settings.sensors)
    if missing:
        return CheckResult(
            name,
            Status.WARN,
            "\n".join(missing),
            "close the phone or watch app that holds the sensor (or switch that device's "
            "Bluetooth off), wake the sensor (a strap needs skin contact), then run "
            "`spotter scan`; the station keeps trying meanwhile",
        )
    return CheckResult(
        name, Status.OK, f"every configured sensor advertises ({', '.join(settings.sensors)})"
    )


# -- permissions -------------------------------------------------------------------------


def _group(name: str) -> grp.struct_group | None:
    try:
        return grp.getgrnam(name)
    except KeyError:
        return None


def check_permissions(
    *,
    uid: int | None = None,
    gids: Collection[int] | None = None,
    group: Callable[[str], grp.struct_group | None] = _group,
) -> CheckResult:
    """Root, or a member of ``bluetooth`` (BlueZ over D-Bus); ``audio`` for the speaker."""
    name = "permissions"
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return CheckResult(name, Status.OK, "running as root")
    user = _user_name(uid)
    active = set(os.getgroups()) | {os.getegid()} if gids is None else set(gids)
    status, found, fixes = Status.OK, [], []
    for group_name, needed in (("bluetooth", Status.FAIL), ("audio", Status.WARN)):
        entry = group(group_name)
        if entry is None:
            if needed is Status.FAIL:
                status = Status.FAIL
                found.append("there is no bluetooth group (BlueZ is not installed)")
                fixes.append("sudo apt-get install bluez")
            continue
        if entry.gr_gid in active:
            found.append(f"{user} is in {group_name}")
        elif user in entry.gr_mem:
            status = _worse(status, Status.WARN)
            found.append(f"{user} was added to {group_name} after this login began")
            fixes.append(f"log out and in again (or `newgrp {group_name}`)")
        else:
            status = _worse(status, needed)
            why = "BlueZ will refuse" if group_name == "bluetooth" else "alarms may be silent"
            found.append(f"{user} is not in {group_name}: {why}")
            fixes.append(f"sudo usermod -aG {group_name} {user}, then log out and in again")
    return CheckResult(name, status, "\n".join(found), "\n".join(fixes))


# -- sound -----------------------------------------------------------------------------

_CARD = re.compile(r"^card \d+:.*$", re.MULTILINE)


def check_sound(
    *,
    dev_snd: Path = Path("/dev/snd"),
    run: RunCommand = run_command,
    timeout_s: float = COMMAND_TIMEOUT_S,
) -> CheckResult:
    """A sound card the alarms can use: ``/dev/snd`` and a card in ``aplay -l`` (read from
    its output: it exits 0 with no card at all)."""
    name = "sound"
    speaker = (
        "connect a speaker (3.5 mm jack, HDMI or USB) and check `aplay -l`; on a Raspberry "
        "Pi set dtparam=audio=on in /boot/firmware/config.txt; the user needs the audio group"
    )
    no_device = None if dev_snd.is_dir() else f"{dev_snd} is missing"
    listing = run(["aplay", "-l"], timeout_s)
    if not listing.started:
        found = "; ".join(filter(None, [listing.problem, no_device]))
        fix = "sudo apt-get install alsa-utils" + (f"; {speaker}" if no_device else "")
        return CheckResult(name, Status.FAIL, found, fix)
    cards = _CARD.findall(listing.output)
    if no_device is None and cards:
        return CheckResult(name, Status.OK, "\n".join(cards))
    said = listing.problem or " ".join(listing.output.split())[:120] or "nothing"
    return CheckResult(
        name,
        Status.FAIL,
        f"no sound card: {no_device or 'no card listed'}; aplay -l: {said}",
        speaker,
    )


def check_speech(*, which: Callable[[str], str | None] = shutil.which) -> CheckResult:
    """espeak-ng for spoken prompts (alarm tones work without it)."""
    path = which("espeak-ng")
    if path is None:
        return CheckResult(
            "speech",
            Status.WARN,
            "espeak-ng is not installed: no spoken prompts (alarm tones still sound)",
            "sudo apt-get install espeak-ng",
        )
    return CheckResult("speech", Status.OK, f"espeak-ng at {path}")


# -- data folder and store -------------------------------------------------------------


def check_data_dir(
    data_dir: Path,
    *,
    disk_usage: Callable[[Path], Any] = shutil.disk_usage,
    access: Callable[[Path, int], bool] = os.access,
    warn_below_bytes: int = FREE_WARN_BYTES,
    fail_below_bytes: int = FREE_FAIL_BYTES,
) -> CheckResult:
    """``[station] data_dir`` exists (or can be created), is writable, has room."""
    name = "data folder"
    try:
        if data_dir.exists():
            if not data_dir.is_dir():
                return CheckResult(
                    name,
                    Status.FAIL,
                    f"{data_dir} is not a folder",
                    "move it away or set [station] data_dir to a folder",
                )
            if not access(data_dir, os.W_OK | os.X_OK):
                return CheckResult(
                    name,
                    Status.FAIL,
                    f"{data_dir} is not writable by {_user_name(os.geteuid())}",
                    f"sudo chown -R spotter:spotter {data_dir}, or {_RUN_AS_SERVICE}",
                )
            where, note = data_dir, "writable"
        else:
            parent = next((p for p in data_dir.parents if p.exists()), Path.cwd())
            if not access(parent, os.W_OK | os.X_OK):
                return CheckResult(
                    name,
                    Status.FAIL,
                    f"{data_dir} does not exist and {parent} is not writable",
                    f"sudo install -d -o spotter -g spotter -m 0700 {data_dir}",
                )
            where, note = parent, "not there yet; created on the first run"
        free = int(disk_usage(where).free)
    except PermissionError as exc:
        return CheckResult(
            name, Status.FAIL, f"cannot look into {data_dir}: {exc}", _RUN_AS_SERVICE
        )
    found = f"{data_dir}: {note}; {_size(free)} free"
    if free < fail_below_bytes:
        status = Status.FAIL
    elif free < warn_below_bytes:
        status = Status.WARN
    else:
        return CheckResult(name, Status.OK, found)
    return CheckResult(
        name,
        status,
        found + f" (want {_size(warn_below_bytes)})",
        f"free disk space; old session traces in {data_dir / 'traces'} can go",
    )


def check_store(db: Path, *, access: Callable[[Path, int], bool] = os.access) -> CheckResult:
    """The store file (``[station] data_dir``/spotter.db), if there is one: readable, writable,
    mode 0600 (it holds health records). Its contents are ``monitor.store.database``'s business."""
    name = "store"
    try:
        info = db.stat()
    except FileNotFoundError:
        return CheckResult(name, Status.OK, f"{db}: none yet (the station creates it)")
    except OSError as exc:
        return CheckResult(name, Status.SKIP, f"cannot look at {db}: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return CheckResult(name, Status.FAIL, f"{db} is not a file", f"move {db} away")
    if not access(db, os.R_OK | os.W_OK):
        return CheckResult(
            name,
            Status.FAIL,
            f"{db} is not readable and writable by {_user_name(os.geteuid())}",
            f"sudo chown spotter:spotter {db}; sudo chmod 600 {db}",
        )
    mode = stat.S_IMODE(info.st_mode)
    found = f"{db}: {_size(info.st_size)}, readable and writable, mode {mode:04o}"
    if mode != 0o600:
        return CheckResult(
            name,
            Status.WARN,
            found + " (it holds health records: owner only)",
            f"chmod 600 {db}",
        )
    return CheckResult(name, Status.OK, found)


# -- the systemd unit ------------------------------------------------------------------


def check_service(
    *,
    run: RunCommand = run_command,
    which: Callable[[str], str | None] = shutil.which,
    unit: str = SERVICE_UNIT,
    timeout_s: float = COMMAND_TIMEOUT_S,
) -> CheckResult:
    """The systemd unit: installed, enabled, running (when this is a systemd machine)."""
    name = "service"
    if which("systemctl") is None:
        return CheckResult(name, Status.SKIP, "no systemctl: not a systemd machine")
    enabled = run(["systemctl", "is-enabled", unit], timeout_s)
    state = enabled.output.strip().splitlines()[-1] if enabled.output.strip() else ""
    if enabled.problem is not None:
        return CheckResult(name, Status.WARN, enabled.problem, "retry; see systemctl status")
    if "No such file" in state or "not found" in state or "not-found" in state:
        return CheckResult(
            name,
            Status.WARN,
            f"{unit} is not installed",
            "sudo deploy/install-pi.sh (see docs/raspberry-pi.md)",
        )
    if state not in ("enabled", "enabled-runtime"):
        return CheckResult(
            name,
            Status.WARN,
            f"{unit} is {state or 'unknown'}",
            f"sudo systemctl enable --now {unit}",
        )
    active = run(["systemctl", "is-active", unit], timeout_s)
    now = active.output.strip().splitlines()[-1] if active.output.strip() else ""
    if active.problem is not None or "booted with systemd" in active.output:
        said = active.problem or "systemd is not running here"
        return CheckResult(
            name, Status.WARN, f"{unit} is enabled; {said}", "boot with systemd, then check again"
        )
    if now in ("active", "reloading", "activating"):
        return CheckResult(name, Status.OK, f"{unit} is enabled and {now}")
    if now == "failed":
        return CheckResult(
            name,
            Status.FAIL,
            f"{unit} is enabled and failed",
            f"journalctl -u {unit} -n 50, fix, then sudo systemctl restart {unit}",
        )
    return CheckResult(
        name,
        Status.WARN,
        f"{unit} is enabled but {now or 'in an unknown state'}",
        f"sudo systemctl start {unit}",
    )


# -- all of it -------------------------------------------------------------------------


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as exc:
        return CheckResult(
            name,
            Status.FAIL,
            f"the check itself failed: {type(exc).__name__}: {redact(str(exc))}",
            "report this as a Spotter bug",
        )


def run_checks(settings_path: str | None) -> list[CheckResult]:
    """Every check, in the order a person would fix them."""
    settings: Settings | None = None

    def configuration() -> CheckResult:
        nonlocal settings
        result, settings = check_config(settings_path)
        return result

    results = [
        _guarded("configuration", configuration),
        _guarded("permissions", check_permissions),
        _guarded("bluetooth", lambda: check_bluetooth(settings.ble if settings else None)),
        _guarded("sound", check_sound),
        _guarded("speech", check_speech),
    ]
    if settings is None:
        skipped = "the configuration did not load"
        results += [
            CheckResult("sensors", Status.SKIP, skipped),
            CheckResult("data folder", Status.SKIP, skipped),
            CheckResult("store", Status.SKIP, skipped),
        ]
    else:
        station = settings.station
        loaded = settings
        bluetooth_ok = results[2].status is not Status.FAIL
        results += [
            _guarded("sensors", lambda: check_sensors(loaded))
            if bluetooth_ok
            else CheckResult("sensors", Status.SKIP, "Bluetooth is not working"),
            _guarded("data folder", lambda: check_data_dir(station.data_path)),
            _guarded("store", lambda: check_store(station.store_path)),
        ]
    results.append(_guarded("service", check_service))
    return results


STATUS_STYLE = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "dim",
}


def render(results: Sequence[CheckResult]) -> Table:
    """The results as a table for the terminal."""
    table = Table(title="spotter doctor", show_lines=True)
    for column in ("check", "status", "found", "fix"):  # long paths fold, never cut off
        table.add_column(column, overflow="fold")
    for r in results:
        status = Text(r.status.value, style=STATUS_STYLE[r.status])
        table.add_row(r.name, status, Text(r.found), Text(r.fix))  # Text: no markup in values
    return table


def render_plain(results: Sequence[CheckResult]) -> str:
    """The results as plain lines, for a pipe or a file: nothing cut at any width."""
    lines = []
    for r in results:
        lines.append(f"{r.name}: {r.status.value}")
        lines += [f"  found: {line}" for line in r.found.splitlines()]
        lines += [f"  fix: {line}" for line in r.fix.splitlines()]
    return "\n".join(lines)


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when nothing failed (warnings are fine), 1 otherwise."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0
