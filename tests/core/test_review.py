"""Review of an uploaded trace: bounded, time-limited, cancellable, in a bounded pool."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from dashboard.clinic.app import COOKIE
from dashboard.clinic.review import ReviewError, ReviewLimits, ReviewPool, review_trace
from monitor.core.profiles import BUILTIN
from tests.core.rig import scenario_trace
from tests.mqtt.rig import free_port

pytestmark = [pytest.mark.timeout(180)]
BEGINNER = BUILTIN["beginner"]
HEADER = json.dumps({"spotter_trace": 1, "sensors": {"hr": {"kind": "heart_rate"}}}) + "\n"


def trace(*lines: object) -> bytes:
    return (HEADER + "".join(json.dumps(x) + "\n" for x in lines)).encode()


EVIL_GAP = trace({"t": 0.5, "sensor": "hr", "link": "connected"}, {"t": 1e12, "end": True})
LONG_GAP = trace(
    {"t": 0.5, "sensor": "hr", "link": "connected"},
    {"t": 9.0, "input": "symptom"},
    {"t": 5000.0, "end": True},
)


@pytest.fixture(scope="module")
def symptom_trace() -> bytes:
    return scenario_trace("symptom")


DEFAULT = ReviewLimits()


def refusal(body: bytes, limits: ReviewLimits = DEFAULT) -> ReviewError:
    with pytest.raises(ReviewError) as info:
        review_trace(body, BEGINNER, None, limits)
    return info.value


def test_an_evil_gap_is_a_clear_400_naming_the_line() -> None:
    error = refusal(EVIL_GAP)
    assert error.status == 400
    assert error.message.startswith("upload:3: t must be finite")


def test_a_long_gap_within_the_bounds_replays_with_the_events_of_stepping() -> None:
    from monitor.core.replay import core_for
    from monitor.core.trace import TraceReader, open_trace_bytes
    from tests.core.test_fuzz_replay_gaps import stepped

    result = review_trace(LONG_GAP, BEGINNER, None, ReviewLimits())
    reader = TraceReader(open_trace_bytes(LONG_GAP), "x")
    expected = [e.to_json() for e in stepped(reader, core_for(reader, BEGINNER, None))]
    assert result["events"] == expected
    assert [e["event"] for e in expected] == ["raised", "cleared"]


def test_too_many_bytes_lines_or_seconds_are_413_naming_the_line() -> None:
    small = ReviewLimits(max_bytes=100)
    assert refusal(LONG_GAP, small).status == 413
    lines = refusal(LONG_GAP, ReviewLimits(max_lines=2))
    assert (lines.status, lines.message) == (413, "upload:3: a review replays at most 2 lines")
    long = refusal(LONG_GAP, ReviewLimits(max_duration_s=3600))
    assert long.status == 413
    assert long.message == "upload:4: the trace goes on for more than the 3600 s a review replays"


def test_a_trace_recorded_after_days_of_uptime_is_bounded_by_its_own_duration() -> None:
    """The flight recorder's t is the station's clock: a session recorded on day 5 starts at
    t = 432 000 s; it is one short session, and reviewed as such."""
    later = trace(
        {"t": 432_000.5, "sensor": "hr", "link": "connected"},
        {"t": 432_009.0, "input": "symptom"},
        {"t": 432_030.0, "end": True},
    )
    result = review_trace(later, BEGINNER, None, ReviewLimits(max_duration_s=3600))
    first = result["events"][0]
    assert (first["t"], first["id"], first["event"]) == (432_009.0, "user.symptom", "raised")


def test_bytes_that_are_not_utf8_are_a_400_naming_the_line() -> None:
    error = refusal(HEADER.encode() + b'{"t": 1, "input": "symptom", "by": "\xff"}\n')
    assert (error.status, error.message) == (400, "upload:2: not UTF-8 text")


@pytest.mark.asyncio
async def test_a_review_runs_in_a_worker_process_and_gives_the_events(
    symptom_trace: bytes,
) -> None:
    pool = ReviewPool()
    result = await pool.review(symptom_trace, BEGINNER, None)
    assert [e["event"] for e in result["events"]][:2] == ["raised", "escalated"]
    assert len(result["trend"]["t"]) >= 90
    refused = pool.review(EVIL_GAP, BEGINNER, None)
    with pytest.raises(ReviewError, match=r"upload:3: t must be finite") as info:
        await refused
    assert info.value.status == 400
    assert pool.running == 0


@pytest.mark.asyncio
async def test_a_review_past_its_time_limit_is_killed(symptom_trace: bytes) -> None:
    pool = ReviewPool(ReviewLimits(timeout_s=0))
    with pytest.raises(ReviewError, match="was stopped") as info:
        await pool.review(symptom_trace, BEGINNER, None)
    assert info.value.status == 413
    assert pool.running == 0
    for child in multiprocessing.active_children():
        if child.name == "spotter-review":
            # The sentinel is ready once the process has ended. Joining here would race the
            # pool's own waiting thread for the exit status (one of two waitpid calls loses).
            ended = await asyncio.to_thread(multiprocessing.connection.wait, [child.sentinel], 60)
            assert ended, "the worker is still running after its time limit"


@pytest.mark.asyncio
async def test_a_cancelled_review_kills_its_worker(symptom_trace: bytes) -> None:
    pool = ReviewPool()
    task = asyncio.create_task(pool.review(symptom_trace, BEGINNER, None))
    await asyncio.sleep(0)  # let it start: it takes its slot
    assert pool.running == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.running == 0
    for child in multiprocessing.active_children():
        if child.name == "spotter-review":
            # The sentinel is ready once the process has ended. Joining here would race the
            # pool's own waiting thread for the exit status (one of two waitpid calls loses).
            ended = await asyncio.to_thread(multiprocessing.connection.wait, [child.sentinel], 60)
            assert ended, "the worker is still running after its time limit"


@pytest.mark.asyncio
async def test_six_evil_uploads_neither_block_the_loop_nor_a_normal_review(
    symptom_trace: bytes,
) -> None:
    """Two run, four are refused at once with 503; while the two run, the event loop goes on
    ticking (the hub's ticker and escalation pushes run there); a normal review then works."""
    pool = ReviewPool()
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    heavy = symptom_trace  # a real session: a second or more of work
    evil = [EVIL_GAP, heavy, LONG_GAP, heavy, EVIL_GAP, heavy]
    tasks = [asyncio.create_task(pool.review(body, BEGINNER, None)) for body in evil]
    await asyncio.sleep(0)
    ticks_at_start = ticks
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    ticks_during = ticks - ticks_at_start
    done.set()
    await ticking
    statuses = [o.status if isinstance(o, ReviewError) else 200 for o in outcomes]
    assert statuses == [400, 200, 503, 503, 503, 503]
    assert ticks_during > 0  # the loop ran while the workers replayed
    result = await pool.review(symptom_trace, BEGINNER, None)
    assert result["events"][0]["id"] == "user.symptom"


def _review_workers(pid: int) -> list[int]:
    """The review worker processes the process ``pid`` has started (spawned interpreters)."""
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():  # a child belongs to the thread that made it
        with contextlib.suppress(FileNotFoundError):
            children += (task / "children").read_text().split()
    workers = []
    for child in children:
        with contextlib.suppress(FileNotFoundError):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                workers.append(int(child))
    return workers


@pytest.fixture(scope="module")
def long_trace() -> bytes:
    return scenario_trace("calm-beginner")


@pytest.mark.timeout(300)
def test_sigterm_stops_the_hub_while_reviews_run(tmp_path: Path, long_trace: bytes) -> None:
    """A hub with reviews in their workers stops on SIGTERM and leaves no worker running
    (today's code replayed in threads the interpreter waits for at exit)."""
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{tmp_path}"\nport = 0\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\n'  # nobody listens there
    )
    env = {**os.environ, "SPOTTER_HUB_PASSWORD": "correct horse battery"}
    spotter = [sys.executable, "-m", "monitor.cli.main", "hub", "--config", str(config)]
    subprocess.run(
        [*spotter, "person", "add", "vic", "--role", "viewer"], env=env, check=True, timeout=60
    )
    hub = subprocess.Popen(spotter, stderr=subprocess.PIPE, env=env)
    uploads: list[threading.Thread] = []
    closing = contextlib.ExitStack()
    try:
        assert hub.stderr is not None
        url = ""
        while not url:
            line = hub.stderr.readline().decode()
            assert line, "the hub ended before serving"
            if line.startswith("Hub page: "):
                url = line.split()[-1].rstrip("/")
        client = httpx.Client(base_url=url, timeout=120)
        closing.callback(client.close)
        password = env["SPOTTER_HUB_PASSWORD"]
        login = client.post("/hub/api/login", json={"name": "vic", "password": password})
        assert login.status_code == 200, login.text
        client.cookies.set(COOKIE, login.cookies[COOKIE])
        client.headers["X-CSRF-Token"] = login.json()["csrf"]
        answers: list[int] = []

        def upload() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the hub may close it on shutdown
                answers.append(
                    client.post(
                        "/hub/api/review",
                        content=long_trace,
                        headers={"Content-Type": "application/x-ndjson"},
                    ).status_code
                )

        uploads = [threading.Thread(target=upload) for _ in range(2)]
        for thread in uploads:
            thread.start()
        workers: list[int] = []
        while not workers:  # wait (polling /proc) until a review runs in its worker
            assert hub.poll() is None
            assert any(t.is_alive() for t in uploads), f"the reviews ended first: {answers}"
            workers = _review_workers(hub.pid)
            time.sleep(0.01)
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(timeout=120) == 0
        for worker in workers:
            assert _gone(worker)
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
        for thread in uploads:
            thread.join(timeout=120)
        if hub.stderr is not None:
            hub.stderr.close()
        closing.close()


def _gone(pid: int) -> bool:
    """Whether a process has ended (gone, or a zombie nobody has reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
