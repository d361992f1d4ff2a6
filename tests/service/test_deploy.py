"""deploy/: the systemd unit (systemd-analyze verify where it exists, and its required keys)
and the Raspberry Pi installer's --dry-run, which must print every step and change nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "spotter.service"
INSTALLER = ROOT / "deploy" / "install-pi.sh"
EXEC = "/opt/spotter/.venv/bin/spotter"
TOUCHED = [
    Path("/opt/spotter"),
    Path("/etc/spotter"),
    Path("/var/lib/spotter"),
    Path("/etc/systemd/system/spotter.service"),
]


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value) in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), raw
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"key outside a section: {raw}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {raw}"
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


# -- the unit ----------------------------------------------------------------------------


def test_the_unit_has_the_keys_the_service_depends_on() -> None:
    unit = parse_unit(UNIT.read_text(encoding="utf-8"))
    head, service, install = unit["Unit"], unit["Service"], unit["Install"]
    assert "bluetooth.target" in one(head, "After").split()
    assert "bluetooth.target" in one(head, "Wants").split()

    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert one(service, "WatchdogSec") == "10"
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartSec") == "2"
    assert one(service, "User") == "spotter"
    assert one(service, "Group") == "spotter"
    assert set(one(service, "SupplementaryGroups").split()) == {"bluetooth", "audio"}
    assert "SPOTTER_CONFIG=/etc/spotter/spotter.toml" in values(service, "Environment")
    assert one(service, "ExecStart") == f"{EXEC} run --service"
    assert one(service, "StateDirectory") == "spotter"

    assert one(service, "ProtectSystem") == "strict"
    assert one(service, "ReadWritePaths") == "/var/lib/spotter"
    assert one(service, "ProtectHome") == "yes"
    assert one(service, "PrivateTmp") == "yes"
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(install, "WantedBy") == "multi-user.target"


def test_the_station_gets_the_cpu_and_the_disk_before_a_kiosk_browser() -> None:
    service = parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]
    default_weight = 100  # what a kiosk browser's unit or scope gets unless told otherwise
    assert int(one(service, "CPUWeight")) >= 10 * default_weight
    assert int(one(service, "StartupCPUWeight")) >= 10 * default_weight
    assert int(one(service, "IOWeight")) >= 10 * default_weight
    assert -20 <= int(one(service, "Nice")) < 0  # above any default-nice process
    assert one(service, "IOSchedulingClass") == "best-effort"
    assert one(service, "IOSchedulingPriority") == "0"  # the highest best-effort level
    assert one(service, "RestrictRealtime") == "yes"  # never realtime: it could freeze the Pi


def test_the_hardening_keeps_dbus_bluetooth_and_alsa() -> None:
    service = parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]
    keys = {k for k, _ in service}
    # Each of these closes /dev/snd (PrivateDevices, a device allow-list) or the bus.
    assert not keys & {"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"}
    assert values(service, "PrivateNetwork") in ([], ["no"])
    for families in values(service, "RestrictAddressFamilies"):
        assert not families.startswith("~"), "a deny-list is too easy to get wrong here"
        assert {"AF_UNIX", "AF_BLUETOOTH"} <= set(families.split())


@pytest.mark.timeout(60)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the parse tests above still ran)")
    # verify insists that ExecStart exists: stand in for the installed command.
    stand_in = tmp_path / "spotter"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "spotter.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(EXEC, str(stand_in)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "spotter" in line]
    assert done.returncode == 0, done.stderr
    assert ours == []  # no unknown key, bad value or missing file in our unit


# -- the installer -----------------------------------------------------------------------

MUTATORS = [
    "apt-get",
    "useradd",
    "usermod",
    "install",
    "find",
    "tar",
    "rm",
    "chown",
    "chmod",
    "python3",
    "runuser",
]


def fake_bin(tmp_path: Path, *, uid: int, user_exists: bool) -> tuple[dict[str, str], Path]:
    """A PATH where every command the installer may change things with only logs its call,
    and ``id`` answers as the given user; returns the environment and the log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name in MUTATORS:
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "$CALLS_LOG"\n')
        stub.chmod(0o755)
    (bin_dir / "systemctl").write_text(
        '#!/bin/sh\n[ "$1" = is-active ] && exit 3\necho "systemctl $*" >> "$CALLS_LOG"\n'
    )
    (bin_dir / "id").write_text(
        "#!/bin/sh\n"
        f'if [ "$#" = 1 ] && [ "$1" = -u ]; then echo {uid}; exit 0; fi\n'
        f"exit {0 if user_exists else 1}\n"
    )
    for name in ("systemctl", "id"):
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS_LOG": str(log)}
    return env, log


def run_installer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(
        [bash, str(INSTALLER), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


@pytest.mark.timeout(60)
def test_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path) -> None:
    env, log = fake_bin(tmp_path, uid=1000, user_exists=False)  # not root: dry runs need not be
    before = {path: path.exists() for path in TOUCHED}
    done = run_installer(env, "--dry-run")
    assert done.returncode == 0, done.stderr
    printed = commands(done.stdout)

    def index(prefix: str) -> int:
        hits = [i for i, c in enumerate(printed) if c.startswith(prefix)]
        assert hits, f"no command starting {prefix!r} in:\n" + "\n".join(printed)
        return hits[0]

    steps = [
        index("apt-get update"),
        index(
            "env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
            "python3-venv bluez espeak-ng alsa-utils"
        ),
        index("useradd --system --user-group --groups bluetooth,audio"),
        index("python3 -m venv /opt/spotter/.venv"),
        index(
            "/opt/spotter/.venv/bin/python -m pip install --quiet --disable-pip-version-check "
            "-c /opt/spotter/constraints.txt /opt/spotter"
        ),
        index("/opt/spotter/.venv/bin/spotter init --path /etc/spotter/spotter.toml"),
        index("chown root:spotter /etc/spotter/spotter.toml"),
        index("chmod 0640 /etc/spotter/spotter.toml"),
        index("install -d -m 0700 -o spotter -g spotter /var/lib/spotter"),
        index(f"install -m 0644 {ROOT}/deploy/systemd/spotter.service /etc/systemd/system/"),
        index("systemctl daemon-reload"),
        index("systemctl enable --now spotter.service"),
        index(
            "runuser -u spotter -- env SPOTTER_CONFIG=/etc/spotter/spotter.toml "
            "/opt/spotter/.venv/bin/spotter doctor"
        ),
    ]
    assert steps == sorted(steps)
    assert not any("[dev]" in c or "-e " in c for c in printed)  # no dev extras, not editable
    assert 'set [station] data_dir = "/var/lib/spotter"' in done.stdout
    assert "nothing was changed" in done.stdout

    assert not log.exists(), log.read_text()  # no command that changes anything ran
    assert {path: path.exists() for path in TOUCHED} == before


@pytest.mark.timeout(60)
def test_dry_run_for_an_existing_user_only_adds_the_groups(tmp_path: Path) -> None:
    env, log = fake_bin(tmp_path, uid=0, user_exists=True)
    done = run_installer(env, "--dry-run")
    assert done.returncode == 0, done.stderr
    printed = commands(done.stdout)
    assert "usermod --append --groups bluetooth,audio spotter" in printed
    assert not any(c.startswith("useradd") for c in printed)
    assert not log.exists()


@pytest.mark.timeout(60)
def test_a_real_run_needs_root(tmp_path: Path) -> None:
    env, log = fake_bin(tmp_path, uid=1000, user_exists=False)
    done = run_installer(env)
    assert done.returncode == 1
    assert "run as root" in done.stderr
    assert not log.exists()


@pytest.mark.timeout(60)
def test_an_unknown_argument_is_refused(tmp_path: Path) -> None:
    env, log = fake_bin(tmp_path, uid=0, user_exists=False)
    done = run_installer(env, "--dryrun")
    assert done.returncode == 2
    assert "unknown argument" in done.stderr
    assert not log.exists()


def test_local_clinic_writes_a_clinic_whose_stations_stay_up(tmp_path: Path) -> None:
    """deploy/local-clinic.sh: no word about reloading a broker that is not running yet;
    the station commands it prints keep running after their scenario (--stay); every
    configuration it writes passes spotter config check."""
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    made = subprocess.run(
        [str(repo / "deploy" / "local-clinic.sh"), str(tmp_path / "clinic"), "1999"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    said = made.stdout + made.stderr
    assert "reload the broker" not in said
    runs = [line for line in made.stdout.splitlines() if " run --config " in line]
    assert len(runs) == 2, made.stdout
    assert all(line.rstrip(")").endswith(" --stay") for line in runs), runs
    for name in ("home", "clinic2"):
        config = str(tmp_path / "clinic" / f"{name}.toml")
        checked = subprocess.run(
            [sys.executable, "-m", "monitor.cli.main", "config", "check", "--config", config],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert checked.returncode == 0, checked.stderr
