"""``spotter bench all``: every benchmark in one run, each figure beside its target and floor.

Runs, in order: start-up, replay (whole process and in-process, each beside the parse-only
floor of the same file, over several session lengths), the station over the virtual radio
(CPU and peak RSS at 10-200 Hz tilt, beside a receive-only station), the dashboard (alarm
committed -> phone DOM p99 against the number of pages) and the clinic hub (commit -> hub
store p99 and CPU against the number of stations, beside a bare subscriber). Each benchmark
that has its own command runs as that command in a process of its own, so its CPU and RSS are
its own. Writes the JSON (also printed), ``docs/performance.md`` made from that JSON, the PNG
plots beside it, and the README's performance table. Measures; never asserts a time.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.bench.profiling import IDLE, part, profile, top_functions

SCHEMA = 1
PLOTS = ("replay.png", "station.png", "dashboard.png", "hub.png")
README_BEGIN = "<!-- bench-all:begin (spotter bench all writes this table) -->"
README_END = "<!-- bench-all:end -->"


@dataclass(frozen=True)
class Plan:
    """How much of each benchmark a run does."""

    replay_lengths_s: tuple[float, ...]
    headline_replay_s: float
    replay_runs: int
    startup_runs: int
    station_rates_hz: tuple[int, ...]
    station_s: float
    dashboard_clients: tuple[int, ...]
    dashboard_s: float
    hub_stations: tuple[int, ...]
    hub_s: float


FULL = Plan(
    replay_lengths_s=(150.0, 300.0, 600.0, 1200.0),
    headline_replay_s=600.0,
    replay_runs=5,
    startup_runs=7,
    station_rates_hz=(10, 50, 100, 200),
    station_s=20.0,
    dashboard_clients=(1, 5, 20, 50),
    dashboard_s=30.0,
    hub_stations=(10, 50, 100, 200, 500),
    hub_s=20.0,
)
QUICK = Plan(
    replay_lengths_s=(20.0, 40.0),
    headline_replay_s=40.0,
    replay_runs=1,
    startup_runs=1,
    station_rates_hz=(100,),
    station_s=3.0,
    dashboard_clients=(1,),
    dashboard_s=11.0,
    hub_stations=(5,),
    hub_s=8.0,
)
"""What the test runs: every section, as short as each allows (its figures mean nothing)."""

HEADLINE_RATE_HZ = 100
HEADLINE_CLIENTS = 20
HEADLINE_STATIONS = 500


# -- running things --------------------------------------------------------------------------


def spotter_command() -> list[str]:
    """How to run ``spotter`` as a user does: the installed script beside this interpreter."""
    script = Path(sys.executable).with_name("spotter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]


def _wall(argv: Sequence[str], runs: int) -> float:
    """The shortest wall time of ``runs`` runs of a command (its output discarded)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        best = min(best, time.perf_counter() - started)
    return best


def _json_of(argv: Sequence[str], timeout_s: float) -> Any:
    """The JSON a benchmark command prints on stdout."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(argv[-6:])} exited {done.returncode}: {tail}")
    return json.loads(done.stdout)


def _best(f: Callable[[], float], runs: int) -> float:
    return min(f() for _ in range(runs))


# -- the sections ----------------------------------------------------------------------------


def startup(runs: int, short_trace: Path) -> dict[str, Any]:
    """Start-up, whole process: ``spotter bench startup``'s figures (``spotter --help``,
    ``spotter replay`` of a short trace, ``import monitor.core``; minimum of ``runs``, beside
    a bare interpreter). ``short_trace`` is counted for the page; the startup bench makes its
    own trace of the same kind."""
    from monitor.bench.startup import bench_startup

    report = bench_startup(runs)
    f = report["figures"]
    return {
        "spotter_help_s": round(f["help_s"]["value"], 3),
        "spotter_replay_short_s": round(f["replay_s"]["value"], 3),
        "import_core_ms": round(f["import_core_s"]["value"] * 1000, 1),
        "import_engine_ms": round(f["import_engine_s"]["value"] * 1000, 1),
        "bare_python_s": round(f["python_s"]["value"], 3),
        "runs": runs,
        "short_trace_lines": sum(1 for _ in short_trace.open(encoding="utf-8")),
        "startup_bench": report,
    }


def replay_section(plan: Plan, folder: Path) -> dict[str, Any]:
    """Replay time against session length, whole process and in-process, with the floors."""
    from monitor.bench.floor import parse_floor
    from monitor.bench.runs import bench_replay, bench_trace

    spotter = spotter_command()
    points = []
    for length_s in plan.replay_lengths_s:
        text = bench_trace(length_s)
        trace = folder / f"replay-{length_s:g}s.jsonl"
        trace.write_text(text, encoding="utf-8")
        lines = text.splitlines()

        def floor_once(lines: list[str] = lines) -> float:
            started = time.perf_counter()
            parse_floor(lines)
            return time.perf_counter() - started

        inproc = bench_replay(plan.replay_runs, text)
        whole = _wall([*spotter, "replay", str(trace), "--profile", "standard"], plan.replay_runs)
        floor_whole = _wall(
            [sys.executable, "-m", "monitor.bench.floor", str(trace)], plan.replay_runs
        )
        floor_in = _best(floor_once, plan.replay_runs)
        session_s = inproc["session_s"]
        points.append(
            {
                "session_s": session_s,
                "lines": len(lines),
                "notifications": inproc["notifications"],
                "alarm_events": inproc["alarm_events"],
                "in_process_s": inproc["seconds"],
                "in_process_realtime": round(session_s / inproc["seconds"], 1),
                "floor_in_process_s": round(floor_in, 4),
                "floor_in_process_realtime": round(session_s / floor_in, 1),
                "whole_process_s": round(whole, 4),
                "whole_process_realtime": round(session_s / whole, 1),
                "floor_whole_process_s": round(floor_whole, 4),
                "floor_whole_process_realtime": round(session_s / floor_whole, 1),
            }
        )
    per_s = [p["in_process_s"] / p["session_s"] * 1e6 for p in points]
    return {
        "points": points,
        "runs": plan.replay_runs,
        "trace": "bench_trace(): noisy tilt 100 Hz with acceleration, HR 1 Hz, holds and rests",
        "in_process_us_per_session_s": [round(x, 1) for x in per_s],
        "linearity_max_over_min": round(max(per_s) / min(per_s), 3),
    }


def station_section(plan: Plan) -> dict[str, Any]:
    """Station CPU and peak RSS against the tilt rate, each beside a receive-only station."""
    spotter = spotter_command()
    timeout = plan.station_s + 120
    points = []
    for rate in plan.station_rates_hz:
        base = [*spotter, "bench", "live", "--seconds", f"{plan.station_s:g}"]
        real = _json_of([*base, "--rate-hz", str(rate)], timeout)
        floor = _json_of([*base, "--rate-hz", str(rate), "--receive-only"], timeout)
        points.append(
            {
                "tilt_rate_hz": rate,
                "cpu_percent": real["cpu_percent_of_one_core"],
                "floor_cpu_percent": floor["cpu_percent_of_one_core"],
                "peak_rss_mb": real["peak_rss_mb"],
                "floor_peak_rss_mb": floor["peak_rss_mb"],
                "notifications_per_s": real["notifications_per_s"],
                "latency_p99_ms": real["latency_ms"]["p99"],
                "alarm_events_measured": real["alarm_events_measured"],
            }
        )
    rss_floor = _json_of(
        [
            sys.executable,
            "-c",
            "import bleak, firmware_sim.bleak_backend\n"  # (VmHWM as in peak_rss_mb)
            "for line in open('/proc/self/status'):\n"
            "    if line.startswith('VmHWM:'): print(int(line.split()[1]) / 1024)",
        ],
        60,
    )
    return {
        "points": points,
        "seconds_each": plan.station_s,
        "bare_interpreter_bleak_radio_rss_mb": round(float(rss_floor), 1),
        "note": "daemon in a process of its own (the station's imports, not the CLI's), radio "
        "hub and simulated sensors in two others; the floor is the same station with a core "
        "that discards every notification",
    }


def dashboard_section(plan: Plan) -> dict[str, Any]:
    """Alarm committed -> phone DOM p99 against the number of pages (real Chromium)."""
    argv = [*spotter_command(), "bench", "dashboard", "--seconds", f"{plan.dashboard_s:g}"]
    for n in plan.dashboard_clients:
        argv += ["--clients", str(n)]
    out = _json_of(argv, 600 + 60 * len(plan.dashboard_clients))
    return {"runs": out["runs"], "seconds_each": plan.dashboard_s, "scenario": out["scenario"]}


def hub_section(plan: Plan) -> dict[str, Any]:
    """Commit -> hub store p99 and hub CPU against stations, beside a bare subscriber."""
    base = [*spotter_command(), "bench", "hub", "--seconds", f"{plan.hub_s:g}"]
    points = []
    for n in plan.hub_stations:
        real = _json_of([*base, "--stations", str(n)], plan.hub_s + 180)
        floor = _json_of([*base, "--stations", str(n), "--floor"], plan.hub_s + 180)
        points.append(
            {
                "stations": n,
                "p99_ms": real["alarm_latency_ms"]["p99"],
                "p50_ms": real["alarm_latency_ms"]["p50"],
                "cpu_percent": real["hub_cpu_percent_of_one_core"],
                "peak_rss_mb": real["hub_peak_rss_mb"],
                "alarm_events_measured": real["alarm_events_measured"],
                "messages_per_s": real["messages_to_hub_per_s"],
                "floor_p99_ms": floor["alarm_latency_ms"]["p99"],
                "floor_cpu_percent": floor["hub_cpu_percent_of_one_core"],
            }
        )
    # Where the hub's time goes, at the most stations: one more run under cProfile, apart from
    # the measured ones (the profiler's own cost must not weigh on the figures).
    with tempfile.TemporaryDirectory(prefix="spotter-hub-profile-") as folder:
        stats = str(Path(folder) / "hub.prof")
        profiled = _json_of([*base, "--stations", str(n), "--profile", stats], plan.hub_s + 180)
    if isinstance(profiled.get("profile"), dict):
        points[-1]["profile"] = profiled["profile"]
    return {"points": points, "seconds_each": plan.hub_s, "note": real["note"]}


def replay_profile(length_s: float, top: int = 14) -> dict[str, Any]:
    """Where in-process replay spends its time: cProfile's functions by own time."""
    from monitor.bench.runs import bench_trace
    from monitor.core.profiles import BUILTIN
    from monitor.core.replay import core_for, replay
    from monitor.core.trace import TraceReader

    text = bench_trace(length_s)
    reader = TraceReader(io.StringIO(text), "bench")
    core = core_for(reader, BUILTIN["standard"], None)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in replay(reader, core):
        pass
    profiler.disable()
    return profile(
        "cProfile",
        f"in-process replay of the {length_s / 60:.3g}-min bench trace, by own time",
        top=top_functions(pstats.Stats(profiler), top),
    )


def station_profile(seconds: float, folder: Path, top: int = 14) -> dict[str, Any]:
    """Where the live station's process spends its CPU (cProfile over ``bench live``)."""
    from monitor.bench.runs import PROFILE_ENV

    out = folder / "station.prof"
    argv = [*spotter_command(), "bench", "live", "--seconds", f"{seconds:g}"]
    env = {**os.environ, PROFILE_ENV: str(out)}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"bench live exited {done.returncode}: {done.stderr[-500:]}")
    return profile(
        "cProfile",
        f"the live station at {HEADLINE_RATE_HZ} Hz, the {seconds:g} s run's measured span only "
        "(`bench live`: streaming; start-up and shutdown left out, as in the CPU figure; the "
        "event loop's idle wait in epoll left out, own % of the rest)",
        top=top_functions(pstats.Stats(str(out)), top),
    )


def import_profile(short_trace: Path, top: int = 14) -> dict[str, Any]:
    """Where ``spotter replay``'s start-up goes: the imports with the largest cumulative time
    (``python -X importtime``, one run; top-level packages and Spotter's own modules)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor.cli", "replay", str(short_trace)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[dict[str, Any]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, own, cumulative, name = re.split(r"[:|]", line, maxsplit=3)
        own, cumulative = own.strip(), cumulative.strip()
        if not own.isdigit():
            continue
        module = name.strip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2  # one space after the bar, 2 a level
        if depth == 0 or module.startswith(("monitor", "dashboard", "firmware_sim")):
            rows.append(
                {
                    "function": f"import {module}",
                    "calls": 1,
                    "own_s": round(int(own) / 1e6, 4),
                    "cum_s": round(int(cumulative) / 1e6, 4),
                }
            )
    rows.sort(key=lambda r: -float(r["cum_s"]))
    return profile(
        "python -X importtime",
        "start-up of `spotter replay` (one run): the imports that cost most, cumulative "
        "(top-level packages and Spotter's modules)",
        top=rows[:top],
    )


RSS_STEPS: tuple[tuple[str, str], ...] = (
    ("bleak", "bleak"),
    ("the simulated radio's client (bumble; a station has BlueZ's)", "firmware_sim.bleak_backend"),
    ("the safety core", "monitor.core.engine"),
    ("settings (pydantic models)", "monitor.settings"),
    ("the store (sqlite3)", "monitor.store.station_store"),
    ("the station and its BLE links", "monitor.station.station,monitor.ble.link"),
    ("the bench module", "monitor.bench.runs"),
)
"""What the station's process loads, in the order it builds on, for the RSS breakdown."""
RUN_EXTRA_STEPS: tuple[tuple[str, str], ...] = (
    ("the alarm sound (numpy, for the tones)", "monitor.sinks.sound"),
    ("the dashboard (FastAPI, uvicorn)", "dashboard.server"),
    ("the MQTT bridge", "monitor.mqtt.bridge"),
    ("the daemon's assembly", "monitor.station.daemon"),
)
"""What ``spotter run`` loads besides (not in the bench's station, so not in its figure)."""

_RSS_SCRIPT = """
import importlib, json, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
sizes = [rss()]
for step in sys.argv[1:]:
    for module in step.split(','):
        importlib.import_module(module)
    sizes.append(rss())
print(json.dumps(sizes))
"""


def rss_profile(station: dict[str, Any]) -> dict[str, Any]:
    """What the station's peak RSS is made of: a fresh interpreter importing what the station
    loads, one step at a time (each step's VmRSS growth), then what the live station at the
    headline rate adds on top while running (its VmHWM minus all of that), beside the
    receive-only station's."""
    steps = [modules for _, modules in RSS_STEPS + RUN_EXTRA_STEPS]
    sizes = [float(x) for x in _json_of([sys.executable, "-c", _RSS_SCRIPT, *steps], 120)]
    rows = [part("bare interpreter", sizes[0], "MB", sizes[0])]
    for (name, _), before, after in zip(RSS_STEPS, sizes, sizes[1:], strict=False):
        rows.append(part(f"+ {name}", after - before, "MB", after))
    p = _at(station["points"], "tilt_rate_hz", HEADLINE_RATE_HZ)
    loaded = sizes[len(RSS_STEPS)]
    rows.append(
        part(
            f"+ running at {p['tilt_rate_hz']} Hz (peak VmHWM minus the imports)",
            p["peak_rss_mb"] - loaded,
            "MB",
            p["peak_rss_mb"],
        )
    )
    rows.append(
        part(
            "receive-only station, same run: + running (peak minus the imports)",
            p["floor_peak_rss_mb"] - loaded,
            "MB",
            p["floor_peak_rss_mb"],
        )
    )
    tail = sizes[len(RSS_STEPS) :]
    for (name, _), before, after in zip(RUN_EXTRA_STEPS, tail, tail[1:], strict=False):
        rows.append(part(f"`spotter run` also loads: + {name}", after - before, "MB", after))
    return profile(
        "/proc/self/status VmRSS",
        "the station's peak RSS by what is loaded: each import step's growth in a fresh "
        "interpreter (total: VmRSS after it), then the running station's peak; last, what "
        "`spotter run` loads besides (not in the bench's figure)",
        breakdown=rows,
    )


def dashboard_profile_section(plan: Plan, section: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's profile at the headline number of pages (or the nearest measured)."""
    from monitor.bench.dashboard import dashboard_profile

    runs = section.get("runs") or [{"clients": plan.dashboard_clients[-1]}]
    clients = int(_at(runs, "clients", HEADLINE_CLIENTS)["clients"])
    return dashboard_profile(clients, plan.dashboard_s)


def _as_profile(name: str, value: Any) -> dict[str, Any]:
    """A profile of a run from before profiles had one shape (a bare list of rows)."""
    if isinstance(value, dict):
        return value
    rows = []
    for r in value:
        if "module" in r:
            rows.append(
                {
                    "function": f"import {r['module']}",
                    "calls": 1,
                    "own_s": round(float(r["own_ms"]) / 1000, 4),
                    "cum_s": round(float(r["cumulative_ms"]) / 1000, 4),
                }
            )
        else:
            rows.append({**r, "cum_s": r.get("cum_s", r.get("cumulative_s"))})
    what = {
        "replay": "in-process replay of the headline session, by own time",
        "station": "the live station's whole process at 100 Hz, start-up included (`bench "
        "live`; the event loop's idle wait in epoll left out, own % of the rest)",
        "startup_imports": "start-up of `spotter replay` (one run): the imports that cost most, "
        "cumulative (top-level packages and Spotter's modules)",
    }.get(name, name)
    tool = "python -X importtime" if name == "startup_imports" else "cProfile"
    return profile(tool, what, rows)


# -- figures beside targets ------------------------------------------------------------------


def _row(
    figure: str,
    measured: Any,
    unit: str,
    op: str,
    target: float,
    floor: str,
    profiles: Sequence[str] = (),
) -> dict[str, Any]:
    """A figure beside its target; ``profiles``: the names (in the report's ``profiles``) of
    the profiles that show where its time (or memory) goes."""
    met = None
    if isinstance(measured, int | float):
        met = measured >= target if op == ">=" else measured <= target
    return {
        "figure": figure,
        "measured": measured,
        "unit": unit,
        "target": f"{op} {target:g}",
        "floor": floor,
        "met": met,
        "profiles": list(profiles),
    }


def _at(points: list[dict[str, Any]], key: str, value: float) -> dict[str, Any]:
    """The point measured at ``value`` (or nearest it: a quick run measures fewer)."""
    return min(points, key=lambda p: abs(float(p[key]) - value))


def figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every headline figure beside its target and its floor (issue 11's table): the rows of
    each section that ran, in the order start-up, replay, station, dashboard, hub."""
    s = report["sections"]
    rows: list[dict[str, Any]] = []
    if "error" not in s["startup"]:
        rows += _startup_figures(s["startup"])
    if "error" not in s["replay"]:
        rows += _replay_figures(s["replay"], report["plan"]["headline_replay_s"])
    if "error" not in s["station"]:
        rows += _station_figures(s["station"])
    if "error" not in s["dashboard"]:
        rows += _dashboard_figures(s["dashboard"])
    if "error" not in s["hub"]:
        rows += _hub_figures(s["hub"])
    return rows


def _startup_figures(st: dict[str, Any]) -> list[dict[str, Any]]:
    """``spotter --help``, ``spotter replay`` of a short trace, ``import monitor.core``."""
    bare = f"bare interpreter {st['bare_python_s']:.3f} s"
    imports = ("startup_imports",)
    return [
        _row("start-up: spotter --help", st["spotter_help_s"], "s", "<=", 0.25, bare, imports),
        _row(
            "start-up: spotter replay (short)",
            st["spotter_replay_short_s"],
            "s",
            "<=",
            0.25,
            bare,
            imports,
        ),
        _row(
            "start-up: import monitor.core",
            st["import_core_ms"],
            "ms",
            "<=",
            30.0,
            bare,
            imports,
        ),
    ]


def _replay_figures(r: dict[str, Any], headline_s: float) -> list[dict[str, Any]]:
    """Replay speed at the headline session length (whole process, in-process) and its
    linearity over the session lengths."""
    p = _at(r["points"], "session_s", headline_s)
    minutes = f"{p['session_s'] / 60:.3g}-min session"
    return [
        _row(
            f"replay whole process, {minutes} (x real time)",
            p["whole_process_realtime"],
            "x",
            ">=",
            1000,
            f"parse-only floor {p['floor_whole_process_realtime']:g}x "
            f"({p['floor_whole_process_s']:.3f} s vs {p['whole_process_s']:.3f} s)",
            ("replay", "startup_imports"),
        ),
        _row(
            f"replay in-process, {minutes} (x real time)",
            p["in_process_realtime"],
            "x",
            ">=",
            2000,
            f"parse-only floor {p['floor_in_process_realtime']:g}x "
            f"({p['floor_in_process_s']:.3f} s vs {p['in_process_s']:.3f} s)",
            ("replay",),
        ),
        _row(
            "replay time per session second, longest / shortest session",
            r["linearity_max_over_min"],
            "ratio",
            "<=",
            1.25,
            "1.0 is exactly linear",
            ("replay",),
        ),
    ]


def _station_figures(st: dict[str, Any]) -> list[dict[str, Any]]:
    """Station CPU (alone and over the receive-only station's) and peak RSS at the headline
    tilt rate."""
    p = _at(st["points"], "tilt_rate_hz", HEADLINE_RATE_HZ)
    rate = f"{p['tilt_rate_hz']} Hz tilt + 1 Hz HR"
    ratio = round(p["cpu_percent"] / p["floor_cpu_percent"], 2) if p["floor_cpu_percent"] else None
    return [
        _row(
            f"station CPU, {rate} (% of one core)",
            p["cpu_percent"],
            "%",
            "<=",
            2.5,
            f"receive-only station {p['floor_cpu_percent']:g} %",
            ("station",),
        ),
        _row(
            f"station CPU / receive-only CPU, {rate}",
            ratio,
            "ratio",
            "<=",
            1.5,
            "1.0: the core costs nothing",
            ("station",),
        ),
        _row(
            "station peak RSS",
            p["peak_rss_mb"],
            "MB",
            "<=",
            60,
            f"interpreter + bleak + radio client "
            f"{st['bare_interpreter_bleak_radio_rss_mb']:g} MB; "
            f"receive-only station {p['floor_peak_rss_mb']:g} MB",
            ("station_rss",),
        ),
    ]


def _dashboard_figures(d: dict[str, Any]) -> list[dict[str, Any]]:
    """Alarm committed -> phone DOM p99 at the headline number of pages (none if no run
    measured a p99)."""
    runs = [r for r in d["runs"] if "p99_ms" in r]
    if not runs:
        return []
    p = _at(runs, "clients", HEADLINE_CLIENTS)
    one = _at(runs, "clients", 1)
    return [
        _row(
            f"alarm committed -> phone DOM p99, {p['clients']} clients",
            p["p99_ms"],
            "ms",
            "<=",
            100,
            f"1 client {one['p99_ms']:g} ms",
            ("dashboard",),
        )
    ]


def _hub_figures(h: dict[str, Any]) -> list[dict[str, Any]]:
    """Commit -> hub store p99 and hub CPU at the headline number of stations."""
    p = _at(h["points"], "stations", HEADLINE_STATIONS)
    return [
        _row(
            f"hub: commit -> hub store p99, {p['stations']} stations",
            p["p99_ms"],
            "ms",
            "<=",
            50,
            f"bare subscriber {p['floor_p99_ms']} ms",
            ("hub",),
        ),
        _row(
            f"hub CPU, {p['stations']} stations (% of one core)",
            p["cpu_percent"],
            "%",
            "<=",
            50,
            f"bare subscriber {p['floor_cpu_percent']:g} %",
            ("hub",),
        ),
    ]


# -- the report -------------------------------------------------------------------------------


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


SECTIONS = ("startup", "replay", "station", "dashboard", "hub")


def run_all(plan: Plan, folder: Path, note: str = "") -> dict[str, Any]:
    """Run every benchmark; a section that fails is reported with its error (the run goes on
    and ``ok`` is false)."""
    from monitor.bench.runs import bench_trace

    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "benchmark": "all",
        "quick": plan is QUICK,
        "commit": _commit(),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": _machine(),
        "note": note,
        "plan": asdict(plan),
        "sections": {},
        "profiles": {},
    }
    short = folder / "startup-short.jsonl"
    short.write_text(bench_trace(10.0), encoding="utf-8")
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "startup": lambda: startup(plan.startup_runs, short),
        "replay": lambda: replay_section(plan, folder),
        "station": lambda: station_section(plan),
        "dashboard": lambda: dashboard_section(plan),
        "hub": lambda: hub_section(plan),
    }
    for name in SECTIONS:
        print(f"bench all: {name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            report["sections"][name] = steps[name]()
        except Exception as exc:  # reported in the JSON and the doc, and the run fails
            report["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        report["sections"][name]["wall_s"] = round(time.perf_counter() - began, 1)
    profiles: dict[str, Callable[[], dict[str, Any] | None]] = {
        "replay": lambda: replay_profile(plan.headline_replay_s),
        "station": lambda: station_profile(plan.station_s, folder),
        "startup_imports": lambda: import_profile(short),
        "station_rss": lambda: rss_profile(report["sections"]["station"]),
        "dashboard": lambda: dashboard_profile_section(plan, report["sections"]["dashboard"]),
        "hub": lambda: _hub_profile(report["sections"]["hub"]),
    }
    for name, make in profiles.items():
        print(f"bench all: profile {name} ...", file=sys.stderr, flush=True)
        try:
            made = make()
        except Exception as exc:  # the page says the profile is missing, and why
            made = {"tool": "-", "what": "-", "error": f"{type(exc).__name__}: {exc}"}
        if made is not None:
            report["profiles"][name] = made
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["figures"] = figures(report)
    report["ok"] = all("error" not in report["sections"][n] for n in SECTIONS)
    report["all_targets_met"] = report["ok"] and all(r["met"] for r in report["figures"])
    return report


def _hub_profile(section: dict[str, Any]) -> dict[str, Any] | None:
    """The profile the hub bench attached at the headline number of stations, if any."""
    if "points" not in section:
        return None
    found = _at(section["points"], "stations", HEADLINE_STATIONS).get("profile")
    return found if isinstance(found, dict) else None


# -- plots and the document -------------------------------------------------------------------


def plot(report: dict[str, Any], folder: Path) -> list[Path]:
    """The four PNGs (matplotlib, from the ``bench`` extra), one drawing function each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    s = report["sections"]
    made = []
    drawings: tuple[tuple[str, Callable[[Any, dict[str, Any]], Any]], ...] = (
        ("replay.png", _plot_replay),
        ("station.png", _plot_station),
        ("dashboard.png", _plot_dashboard),
        ("hub.png", _plot_hub),
    )
    for name, draw in drawings:
        fig = draw(plt, s)
        fig.tight_layout()
        path = folder / name
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)
    return made


def _plot_replay(plt: Any, s: dict[str, Any]) -> Any:
    """Replay time against session length, whole process and in-process, with the floors."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    if "points" in s["replay"]:
        pts = s["replay"]["points"]
        x = [p["session_s"] / 60 for p in pts]
        for key, label, style in (
            ("whole_process_s", "spotter replay (whole process)", "o-"),
            ("floor_whole_process_s", "parse-only floor (whole process)", "o--"),
            ("in_process_s", "replay in-process", "s-"),
            ("floor_in_process_s", "parse-only floor (in-process)", "s--"),
        ):
            ax.plot(x, [p[key] for p in pts], style, label=label)
    ax.set(xlabel="session length (min)", ylabel="seconds", title="Replay time vs session length")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig


def _plot_station(plt: Any, s: dict[str, Any]) -> Any:
    """Station CPU against the tilt rate, beside the receive-only station, and the target."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    if "points" in s["station"]:
        pts = s["station"]["points"]
        x = [p["tilt_rate_hz"] for p in pts]
        ax.plot(x, [p["cpu_percent"] for p in pts], "o-", label="station")
        ax.plot(x, [p["floor_cpu_percent"] for p in pts], "o--", label="receive-only station")
    ax.axhline(2.5, color="grey", linestyle=":", label="target at 100 Hz (2.5 %)")
    ax.set(xlabel="tilt rate (Hz), HR 1 Hz", ylabel="% of one core", title="Station CPU")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig


def _plot_dashboard(plt: Any, s: dict[str, Any]) -> Any:
    """Alarm committed -> phone DOM p99 and p50 against the number of pages, and the target."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    if "runs" in s["dashboard"]:
        runs = [r for r in s["dashboard"]["runs"] if "p99_ms" in r]
        x = [r["clients"] for r in runs]
        ax.plot(x, [r["p99_ms"] for r in runs], "o-", label="p99")
        ax.plot(x, [r["p50_ms"] for r in runs], "s--", label="p50")
    ax.axhline(100, color="grey", linestyle=":", label="target p99 at 20 clients")
    ax.set(xlabel="phones (pages) connected", ylabel="ms", title="Alarm committed -> phone DOM")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig


def _plot_hub(plt: Any, s: dict[str, Any]) -> Any:
    """Commit -> hub store p99 (left) and hub CPU (right) against stations, beside a bare
    subscriber, and the targets."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    if "points" in s["hub"]:
        pts = s["hub"]["points"]
        x = [p["stations"] for p in pts]
        left.plot(x, [p["p99_ms"] for p in pts], "o-", label="hub")
        left.plot(x, [p["floor_p99_ms"] for p in pts], "o--", label="bare subscriber")
        right.plot(x, [p["cpu_percent"] for p in pts], "o-", label="hub")
        right.plot(x, [p["floor_cpu_percent"] for p in pts], "o--", label="bare subscriber")
    left.axhline(50, color="grey", linestyle=":", label="target (500 stations)")
    right.axhline(50, color="grey", linestyle=":", label="target (500 stations)")
    left.set(xlabel="stations", ylabel="ms", title="Commit -> hub store p99")
    right.set(xlabel="stations", ylabel="% of one core", title="Hub CPU")
    for ax in (left, right):
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    return fig


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _speed(seconds: float, realtime: float) -> str:
    return f"{seconds:.3f} s ({realtime:g}x)"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


def figures_table(report: dict[str, Any]) -> list[str]:
    """The headline table (also the README's)."""
    verdict = {True: "**met**", False: "**not met**", None: "-"}
    return _table(
        ["figure", "measured", "target", "floor / reference, same run", ""],
        [
            (
                r["figure"],
                f"{_fmt(r['measured'])} {r['unit']}",
                r["target"],
                r["floor"],
                verdict[r["met"]],
            )
            for r in report["figures"]
        ],
    )


def render(report: dict[str, Any], plots: str = "performance") -> str:
    """``docs/performance.md`` from the JSON of a run: the header, the headline table, then a
    section for each benchmark that ran, then where the time goes."""
    s = report["sections"]
    lines = [*_render_header(report), *_render_failures(s)]
    if "points" in s["replay"]:
        lines += _render_replay(s["replay"], plots)
    if "startup" in s and "error" not in s["startup"]:
        lines += _render_startup(s["startup"])
    if "points" in s["station"]:
        lines += _render_station(s["station"], plots)
    if "runs" in s["dashboard"]:
        lines += _render_dashboard(s["dashboard"], plots)
    if "points" in s["hub"]:
        lines += _render_hub(s["hub"], plots)
    lines += where_the_time_goes(report)
    return "\n".join(lines)


def _render_header(report: dict[str, Any]) -> list[str]:
    """The page's title, the run's commit and machine, and the headline table."""
    m = report["machine"]
    lines = [
        "# Performance",
        "",
        "Generated by `spotter bench all` from `performance.json` beside this file: do not edit by "
        "hand, re-run the command (it rewrites this page, the plots and the README's table).",
        "",
        f"- commit `{report['commit']}`, run started {report['started_at']}"
        + (" (a **--quick** run: its figures mean nothing)" if report["quick"] else ""),
        f"- machine: {m['cpu']}, {m['cpus']} cores, {m['system']}, Python {m['python']}; load "
        f"average {m['load_average_at_start']} at the start, {m.get('load_average_at_end')} at "
        "the end",
    ]
    if report["note"]:
        lines.append(f"- note: {report['note']}")
    lines += ["", "## Every figure beside its target and its floor", "", *figures_table(report)]
    lines += [""]
    return lines


def _render_failures(s: dict[str, Any]) -> list[str]:
    """A line for each section that failed, with its error."""
    lines: list[str] = []
    for name in SECTIONS:
        if "error" in s[name]:
            lines += [f"**{name} failed:** `{s[name]['error']}`", ""]
    return lines


def _render_replay(r: dict[str, Any], plots: str) -> list[str]:
    """Replay time against session length, whole process and in-process, with the floors."""
    return [
        "## Replay",
        "",
        f"The trace: {r['trace']} (`monitor.bench.bench_trace`). Whole process is "
        "`spotter replay TRACE --profile standard` as a user runs it, start-up included; "
        "in-process is the reader and the core on the text in memory. The floor is "
        "`monitor/bench/floor.py`: stdlib `json.loads` + `bytes.fromhex` + one `struct` "
        f"unpack per line, nothing else. Best of {r['runs']} runs.",
        "",
        *_table(
            [
                "session",
                "lines",
                "alarm events",
                "whole process",
                "its floor",
                "in-process",
                "its floor",
            ],
            [
                (
                    f"{p['session_s'] / 60:.3g} min",
                    p["lines"],
                    p["alarm_events"],
                    _speed(p["whole_process_s"], p["whole_process_realtime"]),
                    _speed(p["floor_whole_process_s"], p["floor_whole_process_realtime"]),
                    _speed(p["in_process_s"], p["in_process_realtime"]),
                    _speed(p["floor_in_process_s"], p["floor_in_process_realtime"]),
                )
                for p in r["points"]
            ],
        ),
        "",
        f"In-process cost per session second: {r['in_process_us_per_session_s']} µs "
        f"(longest / shortest {r['linearity_max_over_min']}: linear when close to 1).",
        "",
        f"![replay time vs session length]({plots}/replay.png)",
        "",
    ]


def _render_startup(st: dict[str, Any]) -> list[str]:
    """Start-up, whole process, beside a bare interpreter."""
    return [
        "## Start-up",
        "",
        f"Minimum of {st['runs']} runs, whole process: `spotter --help` "
        f"{st['spotter_help_s']} s, `spotter replay` of a {st['short_trace_lines']}-line "
        f"trace {st['spotter_replay_short_s']} s, `import monitor.core` "
        f"{st['import_core_ms']} ms (`import monitor.core.engine` "
        f"{st['import_engine_ms']} ms), "
        f"a bare `python -c pass` {st['bare_python_s']} s (`spotter bench startup`).",
        "",
    ]


def _render_station(st: dict[str, Any], plots: str) -> list[str]:
    """Station CPU and peak RSS against the tilt rate, beside a receive-only station."""
    return [
        "## Station",
        "",
        f"{st['note']}; {st['seconds_each']:g} s at each rate.",
        "",
        *_table(
            [
                "tilt rate",
                "notifications/s",
                "CPU (one core)",
                "receive-only CPU",
                "peak RSS",
                "receive-only RSS",
                "notification -> alarm p99",
            ],
            [
                (
                    f"{p['tilt_rate_hz']} Hz",
                    p["notifications_per_s"],
                    f"{p['cpu_percent']} %",
                    f"{p['floor_cpu_percent']} %",
                    f"{p['peak_rss_mb']} MB",
                    f"{p['floor_peak_rss_mb']} MB",
                    f"{_fmt(p['latency_p99_ms'])} ms",
                )
                for p in st["points"]
            ],
        ),
        "",
        f"A bare interpreter that imports bleak and the radio client peaks at "
        f"{st['bare_interpreter_bleak_radio_rss_mb']} MB.",
        "",
        f"![station CPU vs tilt rate]({plots}/station.png)",
        "",
    ]


def _render_dashboard(d: dict[str, Any], plots: str) -> list[str]:
    """Alarm committed -> phone DOM latency against the number of pages."""
    return [
        "## Dashboard",
        "",
        "Alarm event committed by the daemon -> its element in each page's DOM (real "
        f"headless Chromium), {d['scenario']['theta']}, {d['seconds_each']:g} s of swings "
        "for each number of pages.",
        "",
        *_table(
            ["pages", "events", "samples", "missing", "p50", "p99", "max"],
            [
                (
                    r["clients"],
                    r["events"],
                    r["samples"],
                    r["missing"],
                    f"{_fmt(r.get('p50_ms'))} ms",
                    f"{_fmt(r.get('p99_ms'))} ms",
                    f"{_fmt(r.get('max_ms'))} ms",
                )
                for r in d["runs"]
            ],
        ),
        "",
        f"![dashboard p99 vs clients]({plots}/dashboard.png)",
        "",
    ]


def _render_hub(h: dict[str, Any], plots: str) -> list[str]:
    """Commit -> hub store latency and hub CPU against stations, beside a bare subscriber."""
    return [
        "## Clinic hub",
        "",
        f"{h['note']}; {h['seconds_each']:g} s each. The floor puts a bare subscriber (the "
        "same subscriptions, nothing stored) in the hub's place.",
        "",
        *_table(
            [
                "stations",
                "messages to hub/s",
                "p50",
                "p99",
                "bare subscriber p99",
                "hub CPU",
                "bare subscriber CPU",
                "hub RSS",
            ],
            [
                (
                    p["stations"],
                    p["messages_per_s"],
                    f"{_fmt(p['p50_ms'])} ms",
                    f"{_fmt(p['p99_ms'])} ms",
                    f"{_fmt(p['floor_p99_ms'])} ms",
                    f"{p['cpu_percent']} %",
                    f"{p['floor_cpu_percent']} %",
                    f"{p['peak_rss_mb']} MB",
                )
                for p in h["points"]
            ],
        ),
        "",
        f"![hub p99 and CPU vs stations]({plots}/hub.png)",
        "",
    ]


def render_profile(found: dict[str, Any]) -> list[str]:
    """One profile (the shared shape, ``monitor/bench/profiling.py``) as Markdown."""
    if "error" in found:
        return [f"The profile failed in this run: `{found['error']}`", ""]
    lines = [f"{found['what']} ({found['tool']}):", ""]
    if found.get("breakdown"):
        with_total = any("total" in r for r in found["breakdown"])
        lines += _table(
            ["part", "value", "total after it"] if with_total else ["part", "value"],
            [
                (r["part"], f"{_fmt(r['value'])} {r['unit']}")
                + ((f"{_fmt(r.get('total'))} {r['unit']}",) if with_total else ())
                for r in found["breakdown"]
            ],
        )
        lines += [""]
    if found.get("top"):
        percent = any("own_percent" in r for r in found["top"])
        lines += _table(
            ["function", "calls", "own s", *(["own %"] if percent else []), "cumulative s"],
            [
                (
                    f"`{r['function']}`",
                    r.get("calls"),
                    r.get("own_s"),
                    *([r.get("own_percent")] if percent else []),
                    r.get("cum_s"),
                )
                for r in found["top"]
            ],
        )
        lines += [""]
    return lines


def where_the_time_goes(report: dict[str, Any]) -> list[str]:
    """Under each figure that misses its target, the profiles that show where its time (or
    memory) goes, made in the same run; then the profiles no missed figure named."""
    profiles: dict[str, Any] = report.get("profiles", {})
    lines = ["## Where the time goes", ""]
    shown: dict[str, str] = {}  # profile -> the figure it was shown under
    missed = [r for r in report["figures"] if r["met"] is False]
    if missed:
        lines += ["Each figure that misses its target, with this run's profiles behind it.", ""]
    for row in missed:
        lines += [
            f"### {row['figure']}: {_fmt(row['measured'])} {row['unit']} (target {row['target']})",
            "",
        ]
        names = [n for n in row.get("profiles", []) if n in profiles]
        if not names:
            lines += ["**No profile was made for this figure in this run.**", ""]
        for name in names:
            if name in shown:
                lines += [f"The `{name}` profile: above, under \u201c{shown[name]}\u201d.", ""]
                continue
            lines += render_profile(profiles[name])
            shown[name] = row["figure"]
    rest = [n for n in profiles if n not in shown]
    if rest:
        lines += ["### Other profiles of this run", ""]
        for name in rest:
            lines += render_profile(profiles[name])
    return lines


def readme_table(report: dict[str, Any]) -> str:
    """The block ``spotter bench all`` keeps in the README."""
    m = report["machine"]
    return "\n".join(
        [
            README_BEGIN,
            f"From one run of `spotter bench all` at commit `{report['commit']}` on {m['cpu']} "
            f"({m['cpus']} cores, load average {m['load_average_at_start']} at the start"
            + (f"; {report['note']}" if report["note"] else "")
            + "); every figure, plot and profile is in `docs/performance.md`.",
            "",
            *figures_table(report),
            README_END,
        ]
    )


def update_readme(path: Path, report: dict[str, Any]) -> None:
    """Replace the table between the markers (which must be there) with this run's."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no {README_BEGIN!r} ... {README_END!r} block to replace")
    path.write_text(pattern.sub(lambda _: readme_table(report), text), encoding="utf-8")


def _leave_out_idle(rows: list[dict[str, Any]]) -> None:
    """A station profile of a run made before the idle wait was left out: leave it out now,
    and make each own % a share of the rest (as a new run's)."""
    idle = [r for r in rows if IDLE in r["function"]]
    if not idle:
        return
    busy_share = 1 - float(idle[0]["own_percent"]) / 100
    rows[:] = [r for r in rows if IDLE not in r["function"]]
    for r in rows:
        r["own_percent"] = round(float(r["own_percent"]) / busy_share, 1)


def bench_all(
    quick: bool, out: Path, readme: Path | None, note: str = "", from_json: Path | None = None
) -> dict[str, Any]:
    """Run everything; write ``out``/performance.json, performance.md and the plots in
    ``out``/performance/, and the README's table. Returns the report. ``from_json``: run
    nothing, make the page, plots and table again from a run's JSON."""
    if from_json is not None:
        report: dict[str, Any] = json.loads(from_json.read_text(encoding="utf-8"))
        if isinstance(report["profiles"].get("station"), list):
            _leave_out_idle(report["profiles"]["station"])
        report["profiles"] = {n: _as_profile(n, v) for n, v in report["profiles"].items()}
        report["figures"] = figures(report)
    else:
        with tempfile.TemporaryDirectory(prefix="spotter-bench-all-") as tmp:
            report = run_all(QUICK if quick else FULL, Path(tmp), note)
    out.mkdir(parents=True, exist_ok=True)
    report["plots"] = [str(p.relative_to(out)) for p in plot(report, out / "performance")]
    (out / "performance.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "performance.md").write_text(render(report), encoding="utf-8")
    if readme is not None:
        update_readme(readme, report)
    return report
