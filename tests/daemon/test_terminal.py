"""The terminal view of ``spotter run``: whole with logging on a terminal (log records go
through rich, above the live view), plain lines as they come when stdout is a pipe (tee).

Real ``spotter run --sim`` processes: one with its stdout on a pipe, one on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from monitor.bench.harness import scenario_toml

SPOTTER = [sys.executable, "-m", "monitor.cli.main"]
ENOUGH_S = 120.0
"""A bound for a loaded machine; the tests wait on what the process prints, not on this."""


def station_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
    data.mkdir(parents=True, exist_ok=True)
    config = data / "spotter.toml"
    config.write_text("# defaults only\n")
    env.update(SPOTTER_CONFIG=str(config), SPOTTER_STATION__DATA_DIR=str(data))
    env.update(PYTHONUNBUFFERED="1", COLUMNS="120", LINES="60", TERM="xterm-256color")
    return env


def over_angle(tmp_path: Path, tilt_rate_hz: float) -> Path:
    """Beginner, 40° (limit 30°) from 8 s to 20 s; runs with --stay until stopped."""
    theta = [(0.0, 0.0), (3.0, 0.0), (8.0, 40.0), (20.0, 40.0), (26.0, 0.0), (30.0, 0.0)]
    path = tmp_path / "over-angle.toml"
    path.write_text(
        scenario_toml("over-angle", duration_s=30, theta=theta, tilt_rate_hz=tilt_rate_hz)
    )
    return path


def test_piped_output_is_plain_lines_as_they_come(tmp_path: Path) -> None:
    command = [*SPOTTER, "run", "--sim", str(over_angle(tmp_path, 50)), "--speed", "20"]
    command += ["--no-dashboard", "--stay"]
    proc = subprocess.Popen(
        command,
        env=station_env(tmp_path / "data"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    raised = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "raised" in line and "angle.over_limit" in line:
                raised.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert raised.wait(ENOUGH_S), lines
        assert proc.poll() is None  # it came while the station runs, not at the end
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        reader.join(10)
    assert proc.returncode == 0, err
    assert lines, err
    assert not [line for line in lines if "\x1b" in line], lines  # no terminal codes
    assert any(" · phase inverted · " in line for line in lines), lines
    event = next(line for line in lines if "raised" in line)
    assert "MEDIUM" in event
    assert "Angle" in event  # the message, as the station words it


def read_until(fd: int, out: bytearray, needle: bytes, count: int = 1) -> None:
    deadline = time.monotonic() + ENOUGH_S
    while out.count(needle) < count:
        assert time.monotonic() < deadline, out.decode(errors="replace")[-3000:]
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            out += chunk


def test_on_a_terminal_log_lines_go_above_the_live_view(tmp_path: Path) -> None:
    """A 20 Hz tilt sensor makes the station log a WARNING (impact detection unavailable)
    while the live view is up: rich clears the view, prints the record, redraws the view."""
    command = [*SPOTTER, "run", "--sim", str(over_angle(tmp_path, 20)), "--speed", "20"]
    command += ["--no-dashboard", "--stay"]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        command,
        env=station_env(tmp_path / "data"),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    out = bytearray()
    try:
        read_until(leader, out, b"impact detection unavailable")
        at = out.index(b"impact detection unavailable")
        read_until(leader, out, b"Spotter \xc2\xb7 t", out[:at].count(b"Spotter \xc2\xb7 t") + 2)
    finally:
        proc.send_signal(signal.SIGINT)
        with_rest = bytearray()
        read_until(leader, with_rest, b"scenario time 0")
        proc.wait(60)
        os.close(leader)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    text = out.decode(errors="replace")
    at = text.index("impact detection unavailable")
    before = text[max(0, at - 300) : at]
    assert "\x1b[2K\x1b[1A" in before, repr(before)  # the view was erased before the record
    assert "WARNING" in before[before.rindex("\x1b[2K") :]  # then rich's record, its level
    assert " WARNING monitor.station:" not in text  # never the plain formatter, into the view
    assert "Recent events" in text[at:]  # and the view redrawn whole below it
