"""Benchmarks: commands that print JSON. Tests assert behaviour; these measure speed."""

from __future__ import annotations

import io
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.core import gatt
from monitor.core.profiles import BUILTIN
from monitor.core.replay import core_for, replay
from monitor.core.trace import Notification, TraceReader

if TYPE_CHECKING:
    import cProfile

REPLAY_TARGET_REALTIME = 600.0


def session_trace(
    name: str, duration_s: float, profile: str, theta: list[list[float]], hr: list[list[float]]
) -> str:
    """A generated session's trace text: tilt at 100 Hz with acceleration and angular rate,
    heart rate at 1 Hz, following the ``theta`` and ``hr`` breakpoints."""
    from firmware_sim.generate import write_trace
    from firmware_sim.scenario import parse_scenario

    scenario = parse_scenario(
        {
            "name": name,
            "duration_s": duration_s,
            "profile": profile,
            "theta": theta,
            "hr": hr,
            "sensors": {
                "tilt": {"kind": "spotter_tilt", "rate_hz": 100, "accel": True, "noise_deg": 0.1},
                "hr": {"kind": "heart_rate"},
            },
        },
        "bench",
    )
    out = io.StringIO()
    write_trace(scenario, out)
    return out.getvalue()


def _ten_minute_trace() -> str:
    return bench_trace(600.0)


def bench_trace(duration_s: float = 600.0) -> str:
    """The text of a generated session like a real one: a standard-profile user holding and
    resting (10 s lead-in, then every 180 s a 90 s hold at 45 deg and a 70 s rest), tilt at
    100 Hz with acceleration and angular rate and 0.1 deg of noise on every sample, heart rate
    at 1 Hz drifting 70 -> 85 -> 72 bpm; over ten minutes, six alarm events (angle over the
    limit, hold limit, not returning)."""
    theta: list[list[float]] = [[0, -60], [10, -60], [20, 0]]
    t = 20.0
    while t < duration_s - 40:
        theta += [[t + 10, 45], [t + 100, 45], [t + 110, 0], [t + 180, 0]]
        t += 180
    theta.append([max(duration_s, theta[-1][0]), 0])
    hr = [[0.0, 70.0], [duration_s / 2, 85.0], [duration_s, 72.0]]
    return session_trace("bench-replay", duration_s, "standard", theta, hr)


def bench_replay(repeat: int = 5, text: str | None = None) -> dict[str, Any]:
    """Replay a generated session (by default :func:`bench_trace`'s ten minutes) from its
    text through the core; best of ``repeat`` runs."""
    text = _ten_minute_trace() if text is None else text
    notifications, duration = _count(text)  # (the harness's own work: outside the timing)
    best = float("inf")
    events = 0
    for _ in range(repeat):
        reader = TraceReader(io.StringIO(text), "bench")
        core = core_for(reader, BUILTIN["standard"], None)
        started = time.perf_counter()
        events = sum(1 for _ in replay(reader, core))  # (parsing stays inside the timing)
        elapsed = time.perf_counter() - started
        best = min(best, elapsed)
    return {
        "benchmark": "replay",
        "session_s": duration,
        "notifications": notifications,
        "alarm_events": events,
        "seconds": round(best, 4),
        "notifications_per_s": round(notifications / best),
        "realtime_factor": round(duration / best, 1),
        "target_realtime_factor": REPLAY_TARGET_REALTIME,
        "runs": repeat,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _count(text: str) -> tuple[int, float]:
    """A trace's notifications and its last record's time."""
    notifications = 0
    last_t = 0.0
    for record in TraceReader(io.StringIO(text), "bench"):
        if isinstance(record, Notification):
            notifications += 1
        last_t = record.t
    return notifications, last_t


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (``VmHWM``). Not ``ru_maxrss``:
    that keeps the high-water mark of the parent's memory across fork and exec, so a
    benchmark started by a big process (``spotter bench all``) would report the parent's."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


LIVE_TARGETS = {"latency_p99_ms": 5.0, "cpu_percent": 15.0, "rss_mb": 120.0}


def _live_scenario(duration_s: float, rate_hz: int = 100) -> dict[str, Any]:
    # theta swings over the 30° limit and back every 8 s: an alarm raised and cleared each time.
    theta: list[list[float]] = [[0, 0]]
    t = 2.0
    while t + 8 <= duration_s:
        theta += [[t, 0], [t + 1, 40], [t + 4, 40], [t + 5, 0]]
        t += 8
    theta.append([duration_s, 0])
    return {
        "name": "bench-live",
        "duration_s": duration_s,
        "theta": theta,
        "hr": [[0, 70], [duration_s, 75]],
        "sensors": {
            "tilt": {"kind": "spotter_tilt", "rate_hz": rate_hz, "accel": True, "noise_deg": 0.1},
            "hr": {"kind": "heart_rate"},
        },
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _bench_live(
    duration_s: float, trace: Path, rate_hz: int, receive_only: bool
) -> dict[str, Any]:
    import asyncio

    from firmware_sim.bleak_backend import SimBackend
    from firmware_sim.scenario import parse_scenario
    from monitor.ble.backend import BleBackend
    from monitor.ble.link import SensorLink
    from monitor.settings import BleConfig, SensorConfig
    from monitor.station.station import StationClock

    scenario = parse_scenario(_live_scenario(duration_s, rate_hz), "bench-live")
    hub, sensors, port = await _radio_and_sensors(trace)
    streaming = asyncio.Event()
    probed, latencies = _probes(streaming)
    sim = await SimBackend.open_hub(port)
    try:
        backend = BleBackend(sim.scanner_class, sim.client_class)
        core = _bench_core(receive_only, dict(_trace_sensors(trace)), scenario.profile)
        station = probed(core, StationClock(), [])
        ble = BleConfig(backend="sim", scan_timeout_s=1.0)
        links = [
            SensorLink(n, SensorConfig(kind=s.kind), ble, backend, station)
            for n, s in core.sensors.items()
        ]
        stop = asyncio.Event()
        running = asyncio.create_task(station.run(links, stop))
        await streaming.wait()
        profiler = _span_profiler()
        cpu0, wall0, n0 = time.process_time(), time.perf_counter(), station.arrivals
        await asyncio.sleep(duration_s - 1)
        cpu1, wall1, n1 = time.process_time(), time.perf_counter(), station.arrivals
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ[PROFILE_ENV])
        stop.set()
        await running
    finally:
        await sim.close()
        for proc in (sensors, hub):
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
    return _live_figures(
        rate_hz, receive_only, wall1 - wall0, n1 - n0, cpu1 - cpu0, [x * 1000 for x in latencies]
    )


def _probes(streaming: Any) -> tuple[Any, list[float]]:
    """A station class that counts arrivals, sets ``streaming`` at the first tilt sample and
    has a sink measuring arrival -> alarm event; the latencies (s) it appends to."""
    from monitor.core.sink import SinkBase
    from monitor.station.station import Station

    latencies: list[float] = []

    class Probed(Station):
        arrival = 0.0
        arrivals = 0

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.sinks.append(LatencySink(self))

        def on_data(self, sensor: str, char: str, data: bytes) -> None:
            self.arrivals += 1
            if char == gatt.TILT_MEASUREMENT:
                streaming.set()  # the scenario has begun (battery reads come before)
            self.arrival = time.perf_counter()
            super().on_data(sensor, char, data)
            self.arrival = 0.0

    class LatencySink(SinkBase):
        def __init__(self, station: Probed) -> None:
            self.station = station

        def alarm_events(self, events: Any) -> None:
            if self.station.arrival:
                latencies.extend([time.perf_counter() - self.station.arrival] * len(events))

    return Probed, latencies


def _bench_core(receive_only: bool, sensors: dict[str, Any], profile: Any) -> Any:
    """The station's core, or for the receive-only floor a core that drops every
    notification unread."""
    from monitor.core.engine import SafetyCore

    class Discarding(SafetyCore):
        def notification(self, t: float, sensor: str, char: str, data: bytes) -> list[Any]:
            return []

    return (Discarding if receive_only else SafetyCore)(sensors, profile)


async def _radio_and_sensors(trace: Path) -> tuple[Any, Any, int]:
    """The simulated radio hub and the sensors playing ``trace`` on it, two processes of
    their own; the hub's port."""
    import asyncio
    import sys

    spotter = [sys.executable, "-m", "monitor.cli.main"]
    hub = await asyncio.create_subprocess_exec(
        *spotter,
        "sim",
        "radio",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert hub.stdout is not None
    port = int((await hub.stdout.readline()).decode().split()[-1])
    sensors = await asyncio.create_subprocess_exec(
        *spotter, "sim", "run", str(trace), "--hub", str(port), stderr=asyncio.subprocess.DEVNULL
    )
    return hub, sensors, port


def _live_figures(
    rate_hz: int,
    receive_only: bool,
    wall_s: float,
    notifications: int,
    cpu_s: float,
    ms: list[float],
) -> dict[str, Any]:
    """``bench live``'s JSON from what the measured span counted."""
    return {
        "benchmark": "live",
        "tilt_rate_hz": rate_hz,
        "receive_only": receive_only,
        "seconds": round(wall_s, 2),
        "notifications": notifications,
        "notifications_per_s": round(notifications / wall_s, 1),
        "cpu_percent_of_one_core": round(100 * cpu_s / wall_s, 1),
        "peak_rss_mb": peak_rss_mb(),
        "alarm_events_measured": len(ms),
        "latency_ms": {  # None when no alarm event fell in the measured span (a short run)
            "p50": round(_percentile(ms, 50), 3) if ms else None,
            "p99": round(_percentile(ms, 99), 3) if ms else None,
            "max": round(max(ms), 3) if ms else None,
        },
        "targets": LIVE_TARGETS,
        "note": "daemon in a process of its own that loads only what a station does (not the "
        "CLI); radio hub and simulated sensors in two others"
        + ("; receive-only: the core discards every notification" if receive_only else ""),
    }


PROFILE_ENV = "SPOTTER_BENCH_LIVE_PROFILE"
"""When set, ``bench live`` writes a cProfile of the measured span only (streaming, start-up
and shutdown left out) to the file it names (``spotter bench all``'s station profile)."""


def _span_profiler() -> cProfile.Profile | None:
    if not os.environ.get(PROFILE_ENV):
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _trace_sensors(trace: Path) -> dict[str, Any]:
    """The station sensors a trace declares (its header)."""
    with open(trace, encoding="utf-8") as fh:
        return dict(TraceReader(fh, str(trace)).header.sensors)


def bench_live(
    duration_s: float = 60.0, rate_hz: int = 100, receive_only: bool = False
) -> dict[str, Any]:
    """One station streaming tilt at ``rate_hz`` and HR at 1 Hz over the virtual radio
    (``receive_only``: the floor, a station whose core discards every notification)."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "bench-live.jsonl"
        # Written by another process: the generator (numpy, ~10 MB) is not the station's, and
        # its memory must not count in this process's peak RSS.
        subprocess.run(
            [sys.executable, "-c", _WRITE_LIVE_TRACE, str(trace), f"{duration_s!r}", str(rate_hz)],
            check=True,
        )
        # The station runs in a process of its own too: the command that started the benchmark
        # (the CLI: typer, ~2 MB) is not the station's, and must not count in its peak RSS.
        flag = "receive-only" if receive_only else "full"
        argv = [str(trace), f"{duration_s!r}", str(rate_hz), flag]
        done = subprocess.run(
            [sys.executable, "-c", _RUN_LIVE_STATION, *argv],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        report: dict[str, Any] = json.loads(done.stdout)
        return report


_RUN_LIVE_STATION = """
import asyncio, json, sys
from pathlib import Path
from monitor.bench.runs import _bench_live
trace, duration_s, rate_hz, flag = sys.argv[1:]
report = asyncio.run(_bench_live(float(duration_s), Path(trace), int(rate_hz), flag != "full"))
print(json.dumps(report))
"""


_WRITE_LIVE_TRACE = """
import sys
from firmware_sim.generate import write_trace
from firmware_sim.scenario import parse_scenario
from monitor.bench.runs import _live_scenario
path, duration_s, rate_hz = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with open(path, "w", encoding="utf-8") as fh:
    write_trace(parse_scenario(_live_scenario(duration_s, rate_hz), "bench-live"), fh)
"""
