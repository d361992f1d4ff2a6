"""Benchmarks: commands that print JSON. Tests assert behaviour; these measure speed."""

from __future__ import annotations

import io
import platform
import time
from collections.abc import Iterator
from typing import Any

from monitor.profiles import BUILTIN
from monitor.replay import core_for, replay
from monitor.trace import Notification, Record, TraceReader

REPLAY_TARGET_REALTIME = 600.0


def _ten_minute_trace() -> str:
    from firmware_sim.generate import write_trace
    from firmware_sim.scenario import parse_scenario

    # A standard-profile session: holds and rests over ten minutes, tilt at 100 Hz with
    # acceleration and angular rate, heart rate at 1 Hz.
    theta: list[list[float]] = [[0, -60], [10, -60], [20, 0]]
    t = 20.0
    while t < 560:
        theta += [[t + 10, 45], [t + 100, 45], [t + 110, 0], [t + 180, 0]]
        t += 180
    theta.append([600, 0])
    scenario = parse_scenario(
        {
            "name": "bench-replay",
            "duration_s": 600,
            "profile": "standard",
            "theta": theta,
            "hr": [[0, 70], [300, 85], [600, 72]],
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


def bench_replay(repeat: int = 5) -> dict[str, Any]:
    """Replay a generated 10-minute session through the core; best of ``repeat`` runs."""
    text = _ten_minute_trace()
    best = float("inf")
    notifications = 0
    events = 0
    duration = 0.0
    for _ in range(repeat):
        reader = TraceReader(io.StringIO(text), "bench")
        core = core_for(reader, BUILTIN["standard"], None)
        started = time.perf_counter()
        counted = _Counting(reader)
        events = sum(1 for _ in replay(counted, core))
        elapsed = time.perf_counter() - started
        notifications = counted.notifications
        duration = counted.last_t
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


class _Counting:
    """Passes records through, counting notifications (parsing stays inside the timing)."""

    def __init__(self, reader: TraceReader) -> None:
        self._reader = reader
        self.notifications = 0
        self.last_t = 0.0

    def __iter__(self) -> Iterator[Record]:
        for record in self._reader:
            if isinstance(record, Notification):
                self.notifications += 1
            self.last_t = record.t
            yield record
