"""Fixtures for tests that run the station against simulated sensors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SPOTTER = [sys.executable, "-m", "monitor.cli"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}


@pytest.fixture
def hub() -> Iterator[int]:
    proc = subprocess.Popen(
        [*SPOTTER, "sim", "radio", "--port", "0"], stdout=subprocess.PIPE, env=env()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("hub listening on "), line
        yield int(line.split()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def write_config(tmp_path: Path, port: int, profile: str = "beginner") -> Path:
    config = tmp_path / "spotter.toml"
    config.write_text(
        f"""
[station]
name = "xproc"
data_dir = "{tmp_path}"
profile = "{profile}"

[ble]
backend = "sim"
sim_hub = "tcp-client:127.0.0.1:{port}"
scan_timeout_s = 1.0
max_backoff_s = 1.0

[sensors.tilt]
kind = "spotter_tilt"

[sensors.hr]
kind = "heart_rate"
"""
    )
    return config
