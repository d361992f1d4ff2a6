"""``spotter bench startup`` reports what it measured (the figures are for the README: no test
judges a time here); and the start-up stays lean: what ``--help`` must not load."""

from __future__ import annotations

import json
import subprocess
import sys

from monitor.bench.startup import SHORT_TRACE_S, TARGETS_S, short_trace
from monitor.core.trace import TraceReader

SPOTTER = [sys.executable, "-m", "monitor.cli.main"]


def test_bench_startup_prints_every_figure_beside_its_target() -> None:
    done = subprocess.run(
        [*SPOTTER, "bench", "startup", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["benchmark"] == "startup"
    assert report["runs"] == 1
    assert set(report["figures"]) == set(TARGETS_S)
    for name, figure in report["figures"].items():
        assert set(figure) == {"value", "target", "met", "cpu_s"}
        assert figure["target"] == TARGETS_S[name]
        assert figure["value"] > 0
        assert figure["cpu_s"] >= 0
        if figure["target"] is None:
            assert figure["met"] is None
        else:
            assert figure["met"] is (figure["value"] <= figure["target"])
    assert len(report["load_average"]) == 3


def test_the_short_trace_is_ten_seconds_of_both_sensors() -> None:
    import io

    reader = TraceReader(io.StringIO(short_trace()), "short")
    records = list(reader)
    assert {s.kind.value for s in reader.header.sensors.values()} == {"spotter_tilt", "heart_rate"}
    assert max(r.t for r in records) <= SHORT_TRACE_S
    assert len(records) > 900  # tilt at 100 Hz for 10 s


def test_help_and_the_core_load_none_of_the_heavy_libraries() -> None:
    probe = (
        "import sys, io, contextlib\n"
        "from monitor.cli.main import app\n"
        "import monitor.core.engine\n"
        "sys.argv = ['spotter', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        app()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ['numpy', 'aiomqtt', 'fastapi', 'pydantic_settings', 'bleak', 'sqlite3',\n"
        "         'asyncio', 'pydantic', 'monitor.sinks.sound', 'monitor.settings', 'dashboard']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_cli_default_profile_is_the_profiles_default() -> None:
    from monitor.cli import main
    from monitor.core import profiles

    assert main.DEFAULT_PROFILE == profiles.DEFAULT_PROFILE
