"""Configuration: TOML plus environment, ``spotter init`` and ``spotter config check``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.settings import ConfigError, load_settings

SPOTTER = [sys.executable, "-m", "monitor.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    env.update(extra)
    return env


def test_init_writes_a_commented_private_file_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "spotter.toml"
    result = subprocess.run(
        [*SPOTTER, "init", "--path", str(target), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    assert text.count("#") > 10
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    settings = load_settings(target)
    assert settings.station.data_path == tmp_path / "data"
    again = subprocess.run(
        [*SPOTTER, "init", "--path", str(target)], capture_output=True, env=clean_env(), timeout=60
    )
    assert again.returncode == 1
    assert b"exists" in again.stderr


def test_config_check_names_every_bad_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[station]\nname = "has space"\ncolour = "red"\n\n[ble]\nbackend = "radio"\n'
        'scan_timeout_s = -1\n\n[sensors.tilt]\nkind = "gyro"\n'
    )
    result = subprocess.run(
        [*SPOTTER, "config", "check", "--config", str(path)],
        capture_output=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert str(path) in err
    for key in (
        "station.name",
        "station.colour: unknown key",
        "ble.backend",
        "ble.scan_timeout_s",
        "sensors.tilt.kind",
    ):
        assert key in err, key


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "spotter.toml"
    path.write_text('[station]\nname = "home"\n[ble]\nbackend = "bleak"\n')
    monkeypatch.setenv("SPOTTER_BLE__BACKEND", "sim")
    monkeypatch.setenv("SPOTTER_BLE__SIM_HUB", "tcp-client:127.0.0.1:7100")
    monkeypatch.setenv("SPOTTER_STATION__AGE", "61")
    settings = load_settings(path)
    assert settings.ble.backend == "sim"
    assert settings.ble.sim_hub == "tcp-client:127.0.0.1:7100"
    assert settings.station.age == 61
    assert settings.station.name == "home"


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[station\n")
    with pytest.raises(ConfigError, match=f"{broken}: not valid TOML"):
        load_settings(broken)


def test_two_tilt_sensors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text('[sensors.a]\nkind = "spotter_tilt"\n[sensors.b]\nkind = "witmotion"\n')
    with pytest.raises(ConfigError, match="at most one tilt sensor"):
        load_settings(path)


def test_config_check_refuses_what_run_refuses(tmp_path: Path) -> None:
    """A misspelt profile and a certificate file that is not there: config check names both
    (with the file), and spotter run refuses the same file with the same words."""
    path = tmp_path / "typo.toml"
    path.write_text(
        f'[station]\nprofile = "beginer"\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[dashboard]\ncert_file = "{tmp_path / "none.pem"}"\nkey_file = "{tmp_path / "k.pem"}"\n'
    )
    said = {}
    for name, args in (("check", ["config", "check"]), ("run", ["run", "--for", "1"])):
        result = subprocess.run(
            [*SPOTTER, *args, "--config", str(path)],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert result.returncode == 2, result
        said[name] = result.stderr
    for err in said.values():
        assert str(path) in err
        assert "station.profile: beginer: no such built-in profile" in err
        assert "(did you mean 'beginner'?)" in err
        assert f"dashboard.cert_file: {tmp_path / 'none.pem'}: no such file" in err
    assert not (tmp_path / "data").exists()  # refused before anything was written

    good = tmp_path / "good.toml"
    good.write_text(f'[station]\nprofile = "standard"\ndata_dir = "{tmp_path / "data"}"\n')
    ok = subprocess.run(
        [*SPOTTER, "config", "check", "--config", str(good)],
        capture_output=True,
        text=True,
        env=clean_env(COLUMNS="200"),
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "spotter run would accept it" in ok.stdout


def test_session_check_says_it_starts_nothing(tmp_path: Path) -> None:
    env = clean_env(SPOTTER_STATION__DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))

    def spotter(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SPOTTER, *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert spotter("user", "add", "anna", "--age", "52").returncode == 0
    assert spotter("user", "screen", "anna", "--none").returncode == 0
    checked = spotter(
        "session", "check", "--user", "anna", "--ankle-clamps-locked", "--spotter-present"
    )
    assert checked.returncode == 1  # no warm-up: blocked, and says why
    assert "blocked:" in checked.stdout
    allowed = spotter(
        "session", "check", "--user", "anna", "--ankle-clamps-locked", "--spotter-present",
        "--warm-up-done", "--pain", "4",
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert "anna may start (nothing started yet" in allowed.stdout
    assert spotter("session", "start", "--user", "anna").returncode == 2  # renamed: no such
    history = spotter("history")
    assert history.returncode == 0, history.stderr
    assert not [r for r in history.stdout.splitlines() if r.startswith("│ 1 ")]  # none started
