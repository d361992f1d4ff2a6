"""``spotter bench hub``: 50 simulated stations publishing state at 1 Hz and telemetry at 10 Hz
through a real Mosquitto to one hub. Prints the hub's CPU, peak RSS and the alarm latency from
a station's commit to the hub's store. ``python -m dashboard.clinic.bench publish`` is the
stations' side (a separate process, so the hub's CPU is its own)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from monitor.bench.runs import peak_rss_mb
from monitor.mqtt.protocol import TOPIC_ROOT, Topics, encode
from monitor.supervise import cancel_and_wait

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub
    from dashboard.clinic.store import HubStore

TARGETS = {"latency_p99_ms": 100.0, "hub_cpu_percent": 30.0}


def _sensor(name: str, kind: str, battery: int) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "link": "streaming",
        "connected": True,
        "battery_percent": battery,
        "rssi_dbm": -60,
        "malformed": 0,
        "lost": 0,
        "last_error": None,
    }


def station_state(station: str, t: float, alarms: list[dict[str, Any]]) -> dict[str, Any]:
    """A simulated station's ``state`` message (the shape
    :func:`monitor.station.status.station_state` gives, so the hub's parser accepts it)."""
    return {
        "station": station,
        "at": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "t": round(t, 3),
        "phase": "inverted",
        "user": None,
        "theta_deg": 25.0,
        "theta_last_deg": 25.0,
        "rate_dps": 0.0,
        "hr_bpm": 72,
        "timers": {
            "hold_s": round(t % 60, 1),
            "max_hold_s": 60.0,
            "hold_left_s": round(60 - t % 60, 1),
        },
        "profile": {"name": "beginner", "max_angle_deg": 30.0},
        "sensors": [_sensor("tilt", "spotter_tilt", 90), _sensor("hr", "heart_rate", 80)],
        "alarms": alarms,
        "highest_priority": alarms[0]["priority"] if alarms else None,
        "problems": {},
    }


async def publish(port: int, stations: int, seconds: float, alarm_every_s: float) -> int:
    """The stations: one client each, state 1 Hz, telemetry 10 Hz, an alarm event now and then
    (each acknowledged by the broker). Returns how many alarm events were published."""
    rng = random.Random(1)

    async def one(index: int) -> int:
        name = f"bench{index:02d}"
        topics = Topics.of(name)
        async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-{name}") as client:
            await client.publish(topics.status, "online", qos=1, retain=True)
            start = time.monotonic()
            next_alarm = start + rng.uniform(0, alarm_every_s)
            seq = 0
            tick = 0
            while (t := time.monotonic() - start) < seconds:
                tick += 1
                samples = {"station": name, "t": [round(t, 2)], "theta_deg": [25.0], "hr_bpm": [72]}
                await client.publish(topics.telemetry, encode(samples), qos=0)
                if tick % 10 == 0:
                    await client.publish(
                        topics.state, encode(station_state(name, t, [])), qos=1, retain=True
                    )
                if time.monotonic() >= next_alarm:
                    seq += 1
                    next_alarm += alarm_every_s
                    event = {
                        "t": round(t, 3),
                        "id": "inversion.hold_limit",
                        "priority": "medium",
                        "event": "raised" if seq % 2 else "cleared",
                        "value": 60.0,
                        "limit": 60.0,
                        "message": "Inverted for 60 s (limit 60 s)",
                        "seq": seq,
                        "station": name,
                        "at": datetime.now().astimezone().isoformat(timespec="milliseconds"),
                    }
                    await client.publish(topics.alarms, encode(event), qos=1)
                await asyncio.sleep(max(0.0, start + tick * 0.1 - time.monotonic()))
        return seq

    return sum(await asyncio.gather(*(one(i) for i in range(stations))))


async def launch_publisher(
    port: int, stations: int, seconds: float, alarm_every_s: float | None = None
) -> asyncio.subprocess.Process:
    """:func:`publish` in a process of its own (so the hub's CPU is its own); its standard
    error is piped: :func:`published_alarms` reads it once it is done."""
    every = [] if alarm_every_s is None else ["--alarm-every-s", str(alarm_every_s)]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dashboard.clinic.bench",
        "publish",
        "--port",
        str(port),
        "--stations",
        str(stations),
        "--seconds",
        str(seconds),
        *every,
        stderr=asyncio.subprocess.PIPE,
    )


async def published_alarms(publisher: asyncio.subprocess.Process) -> int:
    """Wait for a :func:`launch_publisher` process; how many alarm events it published."""
    _, err = await publisher.communicate()
    return int(json.loads(err.decode().strip().splitlines()[-1])["alarms"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A throw-away anonymous Mosquitto on a free loopback port, persistent in ``folder`` (so
    :meth:`stop` then :meth:`start` keeps queued messages, as a real broker restart does)."""

    def __init__(self, folder: Path, max_queued_messages: int = 10_000) -> None:
        self.folder = folder
        self.max_queued_messages = max_queued_messages
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        data = self.folder / "mosquitto-data"
        data.mkdir(exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            ("user root\n" if os.geteuid() == 0 else "")
            + f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            + f"max_queued_messages {self.max_queued_messages}\n"
            + f"persistence true\npersistence_location {data}/\n"
        )
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (it saves its persistence file), then wait for it."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))], 2)


class _BareSubscriber:
    """The floor: one client subscribed to what the hub subscribes to (status, state, alarms,
    replies), which only measures each alarm's latency the way the hub does and keeps nothing."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received = 0
        self.latencies_ms: list[float] = []
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until ``stop`` is set."""
        async with aiomqtt.Client("127.0.0.1", self.port, identifier="bench-floor") as client:
            for kind in ("status", "state", "alarms", "cmd/reply"):
                await client.subscribe(f"{TOPIC_ROOT}/+/{kind}", qos=1)
            self.connected.set()
            receiving = asyncio.ensure_future(self._receive(client))
            try:
                await stop.wait()
            finally:
                await cancel_and_wait(receiving)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.received += 1
            if message.topic.value.endswith("/alarms") and isinstance(message.payload, bytes):
                at = json.loads(message.payload).get("at")
                sent = datetime.fromisoformat(at)
                delta = datetime.now().astimezone() - sent
                self.latencies_ms.append(delta.total_seconds() * 1000)


PROFILE_TOP = 15
IDLE = frozenset({"<method 'poll' of 'select.epoll' objects>"})
"""The event loop waiting for work: the profile's ``idle_s``, not one of its top functions."""


def profile_summary(
    profiler: cProfile.Profile, what: str, top: int = PROFILE_TOP
) -> dict[str, Any]:
    """The ``top`` functions of a profile by their own time (``own_s``: in the function
    itself; ``cum_s``: with what it called), for a bench's JSON result."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    idle = {k: v for k, v in stats.items() if k[2] in IDLE}
    rows = sorted(
        (item for item in stats.items() if item[0] not in idle),
        key=lambda item: item[1][2],
        reverse=True,
    )[:top]
    return {
        "tool": "cProfile",
        "what": what,
        "idle_s": round(sum(v[2] for v in idle.values()), 3),
        "top": [
            {
                "function": f"{_short_path(file)}:{line}({name})",
                "own_s": round(tt, 4),
                "cum_s": round(ct, 4),
                "calls": nc,
            }
            for (file, line, name), (_cc, nc, tt, ct, _callers) in rows
        ],
    }


def _short_path(file: str) -> str:
    """A source file as the profile names it: within the project or a package."""
    project = str(Path(__file__).resolve().parents[2])
    for root in sorted({*sys.path, project}, key=len, reverse=True):
        if root and file.startswith(root.rstrip("/") + "/"):
            return file[len(root.rstrip("/")) + 1 :]
    return file


@contextlib.contextmanager
def _profiling(profiler: cProfile.Profile | None) -> Iterator[None]:
    """``profiler`` (if any) on for the block."""
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


def _profile_report(
    profiler: cProfile.Profile | None, path: Path | None, who: str, wall_s: float
) -> dict[str, Any]:
    """The result's ``profile`` (its stats written to ``path``); nothing when not asked."""
    if profiler is None or path is None:
        return {}
    profiler.dump_stats(path)
    what = (
        f"the hub process ({who} and its broker links; not the stations' process nor "
        f"Mosquitto) in the measured {wall_s:.0f} s, by own time; the latency of a profiled "
        f"run is inflated by the profiler; idle_s: the event loop waiting; full stats: {path}"
    )
    return {"profile": profile_summary(profiler, what)}


def _measured(folder: Path, port: int, floor: bool) -> tuple[HubStore, Hub | _BareSubscriber]:
    """The hub's store in ``folder``, and what is measured: a hub on it, or (``floor``) a bare
    subscriber."""
    from dashboard.clinic.service import Hub
    from dashboard.clinic.settings import HubSection, HubSettings
    from dashboard.clinic.store import HubStore
    from monitor.settings import MqttConfig

    store = HubStore.open(folder / "hub.db")
    settings = HubSettings(
        hub=HubSection(name="bench"), mqtt=MqttConfig(enabled=True, host="127.0.0.1", port=port)
    )
    return store, _BareSubscriber(port) if floor else Hub(settings, store)


async def _run(
    seconds: float,
    stations: int,
    folder: Path,
    port: int,
    floor: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    """One run; ``profile``: profile this process (the hub) in the measured window, the
    stats written there (pstats) and their top functions put in the result."""
    store, hub = _measured(folder, port, floor)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.wait_for(hub.connected.wait(), 10)
        publisher = await launch_publisher(port, stations, seconds)
        warm_up_s = 2.0 + stations / 200  # everyone connected
        await asyncio.sleep(warm_up_s)
        profiler = None if profile is None else cProfile.Profile()
        cpu0, wall0, got0 = time.process_time(), time.perf_counter(), hub.received
        hub.latencies_ms.clear()
        with _profiling(profiler):
            await asyncio.sleep(max(1.0, seconds - warm_up_s - 2.0))
        cpu1, wall1, got1 = time.process_time(), time.perf_counter(), hub.received
        await published_alarms(publisher)
        latencies = list(hub.latencies_ms)
    finally:
        stop.set()
        await running
        store.close()
    wall = wall1 - wall0
    return {
        "benchmark": "hub-floor" if floor else "hub",
        "stations": stations,
        "seconds": round(wall, 1),
        "messages_to_hub_per_s": round((got1 - got0) / wall, 1),
        "telemetry_per_s_through_broker": stations * 10,
        "hub_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1),
        "hub_peak_rss_mb": peak_rss_mb(),
        "alarm_events_measured": len(latencies),
        "alarm_latency_ms": {
            "p50": _percentile(latencies, 50),
            "p99": _percentile(latencies, 99),
            "max": _percentile(latencies, 100),
        },
        "targets": TARGETS,
        "note": "state 1 Hz and telemetry 10 Hz per station through a real Mosquitto; the hub "
        "subscribes to status, state, alarms and replies (telemetry stays in the broker)",
        **_profile_report(
            profiler, profile, f"{'a bare subscriber' if floor else 'the hub'}", wall
        ),
    }


def bench_hub(
    seconds: float = 30.0, stations: int = 50, floor: bool = False, profile: Path | None = None
) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-able report. ``floor``: the same stations and
    broker with a bare subscriber in the hub's place (what the broker alone costs);
    ``profile``: cProfile the hub's process in the measured window, the stats written to
    that file and the top functions by own time in the report's ``profile``."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        try:
            return asyncio.run(_run(seconds, stations, Path(tmp), broker.port, floor, profile))
        finally:
            broker.stop()


def main() -> None:
    """``python -m dashboard.clinic.bench publish --port P [--stations N] [--seconds S]``."""
    parser = argparse.ArgumentParser(prog="python -m dashboard.clinic.bench")
    parser.add_argument("what", choices=["publish"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--alarm-every-s", type=float, default=5.0)
    args = parser.parse_args()
    alarms = asyncio.run(publish(args.port, args.stations, args.seconds, args.alarm_every_s))
    print(json.dumps({"published": True, "alarms": alarms}), file=sys.stderr)


if __name__ == "__main__":
    main()
