"""``spotter bench startup``: how long the command takes to start, measured in subprocesses.

Each figure is the fastest of ``runs`` fresh interpreters (the minimum is the least disturbed
by whatever else the machine is doing) and stands beside its target (issue 10):

- ``help_s``: ``spotter --help``, wall time of the whole process;
- ``replay_s``: ``spotter replay --json`` of a short generated trace (10 s of a session, tilt
  at 100 Hz and heart rate at 1 Hz), wall time of the whole process;
- ``import_core_s``: ``import monitor.core`` inside a fresh interpreter, timed there;
- ``import_engine_s``: ``import monitor.core.engine`` (the safety core itself), timed there;
- ``python_s``: ``python -c pass``, the interpreter's own start (no target: the floor).

Each figure also carries ``cpu_s``, the CPU time (user + system) of its fastest run: wall time
on a busy machine includes waiting for a core, CPU time mostly does not. The load average is
printed with them.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TARGETS_S: dict[str, float | None] = {
    "help_s": 0.25,
    "replay_s": 0.25,
    "import_core_s": 0.030,
    "import_engine_s": 0.030,
    "python_s": None,
}
SHORT_TRACE_S = 10.0

_TIMED_IMPORT = (
    "import time; t, c = time.perf_counter(), time.process_time(); import {module}; "
    "print(time.perf_counter() - t, time.process_time() - c)"
)


def short_trace() -> str:
    """A 10-second session trace (tilt 100 Hz with acceleration, heart rate 1 Hz)."""
    from monitor.bench.runs import session_trace

    theta: list[list[float]] = [[0, 0], [3, 0], [8, 25], [SHORT_TRACE_S, 25]]
    return session_trace("bench-startup", SHORT_TRACE_S, "beginner", theta, [[0, 70], [10, 74]])


def spotter_command() -> list[str]:
    """The installed ``spotter`` script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("spotter")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "monitor.cli.main"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wall(argv: Sequence[str]) -> tuple[float, float]:
    """Wall and CPU time of one run of ``argv`` (which must succeed)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start, _children_cpu() - cpu


def _timed_import(module: str) -> tuple[float, float]:
    """Wall and CPU seconds ``import module`` takes in a fresh interpreter, timed there."""
    done = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def bench_startup(runs: int = 5) -> dict[str, Any]:
    """Every start-up figure: the fastest of ``runs``, beside its target."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    spotter = spotter_command()
    with tempfile.TemporaryDirectory(prefix="spotter-bench-") as tmp:
        trace = Path(tmp) / "short.jsonl"
        trace.write_text(short_trace(), encoding="utf-8")
        measure: dict[str, Callable[[], tuple[float, float]]] = {
            "help_s": lambda: _wall([*spotter, "--help"]),
            "replay_s": lambda: _wall([*spotter, "replay", "--json", str(trace)]),
            "import_core_s": lambda: _timed_import("monitor.core"),
            "import_engine_s": lambda: _timed_import("monitor.core.engine"),
            "python_s": lambda: _wall([sys.executable, "-c", "pass"]),
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in measure}
        for _ in range(runs):  # interleaved, so a busy spell does not hit one figure only
            for name, run in measure.items():
                samples[name].append(run())
    figures: dict[str, dict[str, Any]] = {}
    for name, values in samples.items():
        best, cpu = min(values)
        target = TARGETS_S[name]
        figures[name] = {
            "value": round(best, 4),
            "target": target,
            "met": None if target is None else best <= target,
            "cpu_s": round(cpu, 4),
        }
    return {
        "benchmark": "startup",
        "runs": runs,
        "command": spotter,
        "short_trace_s": SHORT_TRACE_S,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "figures": figures,
    }
