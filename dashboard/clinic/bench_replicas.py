"""``spotter bench hub --replicas N --database postgresql://…``: the same stations and figures
as :mod:`dashboard.clinic.bench`, carried by N ``spotter hub`` replicas (each a process of its
own, so its CPU is its own) sharing one PostgreSQL and taking the alarm events through an MQTT
v5 shared subscription. The bench works in a schema of its own in that database, dropped after.

``python -m dashboard.clinic.bench_replicas replica …`` is one replica's side: it runs a hub,
says ``ready``, measures from ``go`` on its standard input, prints its figures as JSON and
stops at the end of its input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from dashboard.clinic.bench import (
    TARGETS,
    Mosquitto,
    _percentile,
    launch_publisher,
    published_alarms,
)

WARMUP_S = 2.0
"""Every station connected and publishing before the measurement starts."""


@contextlib.contextmanager
def bench_schema(database: str) -> Iterator[str]:
    """A fresh schema in ``database`` for one bench run (so earlier runs' events are not
    taken for duplicates); the address that uses it. Dropped afterwards."""
    schema = f"spotter_bench_{secrets.token_hex(4)}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # a name made here, not input
    sep = "&" if "?" in database else "?"
    try:
        yield f"{database}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def replica(port: int, database: str, name: str, window_s: float) -> None:
    """One replica: run, measure ``window_s`` after ``go`` (after the warm-up), report."""
    from dashboard.clinic.service import Hub
    from dashboard.clinic.settings import HubSection, HubSettings
    from monitor.settings import MqttConfig

    settings = HubSettings(
        hub=HubSection(name="bench", replica=name, share="hubs", database=database),
        mqtt=MqttConfig(enabled=True, host="127.0.0.1", port=port),
    )
    hub = Hub(settings, settings.open_store())
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        await asyncio.wait_for(hub.connected.wait(), 30)
        print("ready", flush=True)
        await reader.readline()  # go: the stations are starting
        await asyncio.sleep(WARMUP_S)
        cpu0, wall0, got0 = time.process_time(), time.perf_counter(), hub.received
        hub.latencies_ms.clear()
        await asyncio.sleep(window_s)
        cpu1, wall1, got1 = time.process_time(), time.perf_counter(), hub.received
        latencies = list(hub.latencies_ms)
        wall = wall1 - wall0
        print(
            json.dumps(
                {
                    "replica": name,
                    "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1),
                    "messages_per_s": round((got1 - got0) / wall, 1),
                    "alarm_events_measured": len(latencies),
                    "peak_rss_mb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                    ),
                    "latencies_ms": [round(v, 3) for v in latencies],
                    "crashes": sum(hub.crashes.values()),
                }
            ),
            flush=True,
        )
        await reader.read()  # until the bench closes our input
    finally:
        stop.set()
        await running
        hub.store.close()


async def _run(
    seconds: float, stations: int, port: int, replicas: int, database: str
) -> dict[str, Any]:
    """One run: the replicas up and ready, the stations started, each replica's figures, the
    events stored, the report.

    Long because it is one sequence of steps sharing the processes: split, its parts would
    hand the same handles back and forth."""
    window_s = max(1.0, seconds - 2 * WARMUP_S)
    procs = []
    for i in range(replicas):
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "dashboard.clinic.bench_replicas",
                "replica",
                "--port",
                str(port),
                "--database",
                database,
                "--name",
                f"r{i + 1}",
                "--window-s",
                str(window_s),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"a replica did not start: {line[:200]!r}")
        publisher = await launch_publisher(port, stations, seconds)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        figures = []
        for proc in procs:
            assert proc.stdout is not None
            figures.append(json.loads(await proc.stdout.readline()))
        published = await published_alarms(publisher)
        stored = await _wait_stored(database, published)
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 30)
    latencies = [v for f in figures for v in f.pop("latencies_ms")]
    return {
        "benchmark": "hub",
        "replicas": replicas,
        "database": "postgresql",
        "stations": stations,
        "seconds": round(window_s, 1),
        "alarm_events_published": published,
        "alarm_events_stored": stored,
        "alarm_events_measured": len(latencies),
        "alarm_latency_ms": {
            "p50": _percentile(latencies, 50),
            "p99": _percentile(latencies, 99),
            "max": _percentile(latencies, 100),
        },
        "hub_cpu_percent_of_one_core": max(f["cpu_percent_of_one_core"] for f in figures),
        "per_replica": figures,
        "targets": TARGETS,
        "note": "each replica a process of its own on one PostgreSQL; alarm events through the "
        "MQTT v5 shared subscription $share/hubs/spotter/v1/+/alarms (each stored by one "
        "replica), status and state to every replica; hub_cpu_percent_of_one_core is the "
        "busiest replica's",
    }


async def _wait_stored(database: str, published: int, timeout_s: float = 30.0) -> int:
    """How many alarm events the replicas stored, once they are all in (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with await psycopg.AsyncConnection.connect(database) as conn:
            cur = await conn.execute("SELECT COUNT(*) FROM station_events")
            row = await cur.fetchone()
        stored = int(row[0]) if row else 0
        if stored >= published or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.2)


def bench_replicas(seconds: float, stations: int, replicas: int, database: str) -> dict[str, Any]:
    """Run the benchmark with ``replicas`` hubs on ``database``; the JSON-able report."""
    with tempfile.TemporaryDirectory() as tmp, bench_schema(database) as dsn:
        broker = Mosquitto(Path(tmp))
        broker.start()
        try:
            return asyncio.run(_run(seconds, stations, broker.port, replicas, dsn))
        finally:
            broker.stop()


def main() -> None:
    """``python -m dashboard.clinic.bench_replicas replica --port P --database D --name N``."""
    parser = argparse.ArgumentParser(prog="python -m dashboard.clinic.bench_replicas")
    parser.add_argument("what", choices=["replica"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--window-s", type=float, required=True)
    args = parser.parse_args()
    asyncio.run(replica(args.port, args.database, args.name, args.window_s))


if __name__ == "__main__":
    main()
