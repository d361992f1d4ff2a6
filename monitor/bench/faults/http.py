"""The HTTP boundary's figures: schemathesis against both OpenAPI descriptions (the station's
dashboard and the clinic hub, logged in, in process), oversize bodies refused before they are
read, how many wrong PINs and logins a client gets per minute, and a flooding client against
a running station (judged by the station's own alarms: a stalled loop raises
``tilt.signal_lost``).

Everything runs in one thread and one event loop of its own (the store's SQLite connection
stays in the thread that opened it); hypothesis drives schemathesis' strategies and each
case is sent through httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dashboard.app import Dashboard, create_app
from dashboard.auth import COOKIE, CSRF_HEADER, Access
from dashboard.clinic.app import create_hub_app, hash_password
from dashboard.clinic.service import Hub, HubSettings
from dashboard.clinic.store import HubStore
from dashboard.guard import MAX_BODY_BYTES
from dashboard.limiter import Limiter
from dashboard.live import LiveHub
from monitor.core import gatt
from monitor.core.codecs import spotter_tilt
from monitor.core.profiles import BUILTIN
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.core.sink import SinkBase
from monitor.core.trace import InputKind
from monitor.station.assembly import Assembly, StationPlan, assemble, assembled
from monitor.station.flow import SessionFlow
from monitor.station.station import Station, StationClock
from monitor.supervise import cancel_and_wait

BASE = "http://127.0.0.1"
PASSWORD = "bench password long"
NEVER_FUZZED = ("/api/stream", "/hub/api/stream", "/api/logout", "/hub/api/logout")
"""Endless streams (the ASGI transport waits for the end) and the fuzzer's own logout."""


@dataclass
class _Clock:
    """A monotonic clock the limits are judged on, moved by hand."""

    t: float = 0.0

    def __call__(self) -> float:
        return self.t


def _plan(store_path: Path) -> StationPlan:
    """A bare station: one tilt sensor, the beginner profile, inline writes."""
    sensors = {"tilt": SensorSpec(SensorKind.SPOTTER_TILT)}
    return StationPlan("home", sensors, BUILTIN["beginner"], store_path)


@dataclass
class _StationRig:
    station: Station
    access: Access
    app: Any
    parts: Assembly


async def _station(folder: Path, clock: Callable[[], float]) -> _StationRig:
    parts = await assemble(_plan(folder / "spotter.db"), StationClock())
    station, store = parts.station, parts.store
    access = Access(store, "home", clock)
    live = LiveHub(station, store, "home")
    station.sinks.append(live)
    app = create_app(Dashboard(station, SessionFlow(store, "home"), live, access, "home", {}))
    return _StationRig(station, access, app, parts)


@contextlib.asynccontextmanager
async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def _pair(rig: _StationRig, client: httpx.AsyncClient) -> None:
    token = rig.access.new_pairing("owner", "owner")
    paired = await client.get(f"/pair?token={token}")
    client.cookies.set(COOKIE, paired.cookies[COOKIE])
    client.headers[CSRF_HEADER] = (await client.get("/api/me")).json()["csrf"]


# -- schemathesis ---------------------------------------------------------------------------


def _request(case: Any) -> dict[str, Any]:
    """httpx keyword arguments for a schemathesis case (its kwargs are in requests' form)."""
    kwargs = dict(case.as_transport_kwargs(base_url=BASE))
    kwargs.pop("cookies", None)
    params = kwargs.pop("params", None) or {}
    kwargs["params"] = {
        str(k): (v if isinstance(v, str | int | float | bool) else str(v))
        for k, v in params.items()
    }
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content"] = data if isinstance(data, bytes | str) else str(data)
    for drop in ("files", "allow_redirects", "verify", "timeout"):
        kwargs.pop(drop, None)
    return kwargs


def fuzz(
    app: Any, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, examples: int
) -> dict[str, Any]:
    """Every operation of ``app``'s OpenAPI description, ``examples`` positive and as many
    negative cases each, sent as ``client`` (logged in); counts by status class."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_dict(app.openapi())
    statuses: Counter[str] = Counter()
    server_errors: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise RuntimeError(f"the OpenAPI description is broken: {result.err()}")
        operation = result.ok()
        if operation.path in NEVER_FUZZED:
            continue
        operations += 1
        inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
        modes = [GenerationMode.POSITIVE]
        if any(len(part) for part in inputs):  # something to get wrong
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def one(case: Any) -> None:
                try:
                    kwargs = _request(case)
                    request = client.build_request(**kwargs)
                except (TypeError, ValueError, httpx.InvalidURL, UnicodeEncodeError):
                    statuses["unsendable"] += 1  # not even a valid HTTP request
                    return
                response = loop.run_until_complete(client.send(request))
                statuses[f"{response.status_code // 100}xx"] += 1
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path}: {response.status_code}"
                    )

            try:
                one()
            except Unsatisfiable:  # no case of this mode exists for the operation
                statuses["unsatisfiable"] += 1
    return {
        "operations": operations,
        "requests": sum(v for k, v in statuses.items() if k.endswith("xx")),
        "by_status": dict(sorted(statuses.items())),
        "5xx": len(server_errors),
        "5xx_examples": server_errors[:5],
    }


# -- oversize bodies ------------------------------------------------------------------------


async def _oversize(app: Any, megabytes: int) -> dict[str, Any]:
    """A streamed body of ``megabytes`` MB with no cookie: refused at the limit, before the
    login check; the peak memory Python held while it was refused."""
    chunk = b"x" * (1024 * 1024)
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(megabytes):
            pulled += 1
            yield chunk

    tracemalloc.start()
    try:
        async with _client(app) as client:
            headers = {"Content-Type": "application/json"}
            response = await client.post("/api/alarms/silence", content=body(), headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "sent_mb": megabytes,
        "status": response.status_code,
        "read_mb_before_refusal": pulled,
        "peak_traced_mb": round(peak / 1e6, 2),
        "limit_bytes": MAX_BODY_BYTES,
    }


# -- secrets per minute ---------------------------------------------------------------------


async def _pins_per_minute(rig: _StationRig, clock: _Clock) -> dict[str, Any]:
    """Wrong PINs one client gets checked in one minute when it always retries as soon as it
    is allowed (the clock is moved by each Retry-After)."""
    rig.access.set_pin("24681357", "bench")
    rig.access.pin_tries = Limiter()  # what the fuzzing tried before does not count
    start = clock.t
    checked = refused = 0
    async with _client(rig.app) as client:
        await _pair(rig, client)
        await client.post("/api/users", json={"name": "anna"})
        change = {"user": "anna", "profile": "standard"}
        while clock.t - start < 60:
            answer = await client.put("/api/settings/profile", json={**change, "pin": "0000"})
            if answer.status_code == 429:
                refused += 1
                clock.t += float(answer.headers["retry-after"])
            else:
                checked += 1
    return {"pin_checked_per_minute": checked, "pin_refused_429": refused}


async def _logins_per_minute(hub: Hub) -> dict[str, Any]:
    clock = _Clock()
    app = create_hub_app(hub, Limiter(), clock)
    checked = refused = 0
    async with _client(app) as client:
        while clock.t < 60:
            answer = await client.post("/hub/api/login", json={"name": "pat", "password": "x"})
            if answer.status_code == 429:
                refused += 1
                clock.t += float(answer.headers["retry-after"])
            else:
                checked += 1
    return {"login_checked_per_minute": checked, "login_refused_429": refused}


# -- a flooding client ----------------------------------------------------------------------


def _hammer(port: int, token: str, requests: int, fifo: Path, workers: int = 8) -> Counter[int]:
    """From other threads, as an attacker outside the station would: ``requests`` hostile
    requests over ``workers`` keep-alive connections, as fast as they are answered."""
    from concurrent.futures import ThreadPoolExecutor

    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as pairing:
        paired = pairing.get(f"/pair?token={token}")
        cookie = paired.cookies[COOKIE]
        pairing.cookies.set(COOKIE, cookie)
        csrf = pairing.get("/api/me").json()["csrf"]
    json_type = {"Content-Type": "application/json"}
    hostile: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/alarms/silence", {"content": b"{" + b" " * 200_000 + b"}"}),
        ("POST", "/api/alarms/silence", {"content": b"{}", "headers": {"Host": "x.example"}}),
        ("PUT", "/api/settings/profile", {"json": {"user": "a", "profile": "x", "pin": "1111"}}),
        ("PUT", "/api/settings/profile", {"json": {"user": "a", "profile": str(fifo)}}),
        ("POST", "/api/users", {"json": {"name": "b", "profile": "/dev/zero"}}),
        ("GET", "/api/sessions/99999999999999999999999", {}),
        ("POST", "/api/users", {"content": b"[" * 10_000, "headers": json_type}),
        ("GET", "/api/state", {}),
    ]

    def worker(share: int) -> Counter[int]:
        got: Counter[int] = Counter()
        with httpx.Client(base_url=base, timeout=30) as client:
            client.cookies.set(COOKIE, cookie)
            client.headers[CSRF_HEADER] = csrf
            for k in range(share):
                method, path, given = hostile[k % len(hostile)]
                kwargs = dict(given)
                headers = {**json_type, **kwargs.pop("headers", {})} if method != "GET" else {}
                got[client.request(method, path, headers=headers, **kwargs).status_code] += 1
        return got

    total: Counter[int] = Counter()
    with ThreadPoolExecutor(workers) as pool:
        for got in pool.map(worker, [requests // workers] * workers):
            total.update(got)
    return total


async def _flood(folder: Path, requests: int) -> dict[str, Any]:
    """A station served on loopback (uvicorn in its loop, as ``spotter run`` does) whose
    tilt sensor sends 20 times a second, flooded from other threads: a held-up loop shows as
    ``tilt.signal_lost`` (2 s without data) on the station's own clock."""
    from dashboard.server import DashboardConfig, DashboardServer

    fifo = folder / "fifo"
    os.mkfifo(fifo)  # a profile "path" that would block a reader for ever
    async with assembled(_plan(folder / "flood.db"), StationClock()) as parts:
        station = parts.station
        raised: list[str] = []

        class Watch(SinkBase):
            def alarm_events(self, events: Any) -> None:
                raised.extend(f"{e.t:.1f} {e.id}" for e in events if e.event.value == "raised")

        station.sinks.append(Watch())
        server = DashboardServer(station, parts.store, "home", DashboardConfig(port=0))
        stop = asyncio.Event()
        serving = asyncio.create_task(server.serve(stop))
        running = asyncio.create_task(station.run([], stop))
        samples: list[float] = []

        async def feed() -> None:
            while not stop.is_set():
                payload = spotter_tilt.encode(
                    spotter_tilt.TiltMeasurement(
                        seq=len(samples) & 0xFFFF, sensor_ms=0, pitch_deg=0.0
                    )
                )
                station.on_data("tilt", gatt.TILT_MEASUREMENT, payload)
                samples.append(station.core.t)
                await asyncio.sleep(0.05)

        feeding = asyncio.create_task(feed())
        try:
            await asyncio.wait_for(server.ready.wait(), 30)
            station.user_input(InputKind.SESSION_START)
            t0 = station.core.t
            token = server.access.new_pairing("owner", "owner")
            statuses = await asyncio.to_thread(_hammer, server.port, token, requests, fifo)
            station_s = station.core.t - t0
        finally:
            stop.set()
            await running
            await serving
            await cancel_and_wait(feeding, errors="raise")
    gaps = [b - a for a, b in itertools.pairwise(samples)]
    return {
        "flood_requests": sum(statuses.values()),
        "flood_by_status": {str(k): v for k, v in sorted(statuses.items())},
        "flood_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "flood_station_s": round(station_s, 2),
        "flood_longest_sample_gap_station_s": round(max(gaps, default=0.0), 3),
        "flood_signal_lost_raised": sum(1 for r in raised if r.endswith("signal_lost")),
        "flood_alarms_raised": raised,
    }


# -- the whole area -------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    """The HTTP figures (``quick``: few examples per operation, a small flood)."""
    examples = 6 if quick else 60
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spotter-bench-http-") as tmp:
        folder = Path(tmp)
        loop = asyncio.new_event_loop()
        try:
            clock = _Clock()
            rig = loop.run_until_complete(_station(folder, clock))
            hub_store = HubStore.open(folder / "hub.db")
            hub_store.add_person("ada", "admin", hash_password(PASSWORD))
            hub_store.add_person("pat", "therapist", hash_password(PASSWORD))
            hub = Hub(HubSettings(), hub_store)
            try:
                station_client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=rig.app), base_url=BASE
                )
                loop.run_until_complete(_pair(rig, station_client))
                figures["station_schemathesis"] = fuzz(rig.app, station_client, loop, examples)
                loop.run_until_complete(station_client.aclose())
                hub_app = create_hub_app(hub, Limiter(global_per_window=10**6))
                hub_client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=hub_app), base_url=BASE
                )
                login = loop.run_until_complete(
                    hub_client.post("/hub/api/login", json={"name": "ada", "password": PASSWORD})
                )
                hub_client.cookies.set("spotter_hub", login.cookies["spotter_hub"])
                hub_client.headers[CSRF_HEADER] = login.json()["csrf"]
                figures["hub_schemathesis"] = fuzz(hub_app, hub_client, loop, examples)
                loop.run_until_complete(hub_client.aclose())
                figures["oversize"] = loop.run_until_complete(
                    _oversize(rig.app, 20 if quick else 200)
                )
                figures["secrets"] = {
                    **loop.run_until_complete(_pins_per_minute(rig, clock)),
                    **loop.run_until_complete(_logins_per_minute(hub)),
                }
                figures["flood"] = loop.run_until_complete(_flood(folder, 400 if quick else 4000))
            finally:
                hub_store.close()
                loop.run_until_complete(rig.parts.aclose())
        finally:
            loop.close()
    figures["5xx"] = (
        figures["station_schemathesis"]["5xx"]
        + figures["hub_schemathesis"]["5xx"]
        + figures["flood"]["flood_5xx"]
    )
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures
