"""Review of an uploaded trace: replay that any viewer may ask for, bounded in every way.

A trace from the network is attacker-chosen input, so its replay is

- bounded: at most :data:`MAX_REVIEW_BYTES` bytes, :data:`MAX_REVIEW_LINES` lines and
  :data:`MAX_REVIEW_S` from its first record to its last (a review is of one session; a gap
  costs only its deadlines — :func:`monitor.core.replay.catch_up`);
- time-limited and cancellable: it runs in a separate process, killed when it takes longer
  than :data:`REVIEW_TIMEOUT_S` or when the request is cancelled (a client gone, a hub
  shutting down), so no thread is left replaying for ever and SIGTERM is not held up;
- in a bounded pool: at most :data:`MAX_RUNNING_REVIEWS` at once, further ones refused at
  once (503, with a clear message), so reviews never starve the event loop, the escalation
  pushes or each other (the worker also runs at a lower CPU priority).

Every refusal is a :class:`ReviewError` with an HTTP status (400 a broken trace, naming the
line; 413 too big or too long; 503 busy) and a one-line message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from monitor.core.engine import SafetyCore
from monitor.core.profiles import Profile
from monitor.core.replay import replay
from monitor.core.trace import Notification, TraceError, TraceReader, open_trace_bytes

log = logging.getLogger(__name__)

MAX_REVIEW_BYTES = 50_000_000
"""The largest upload (about 2 h of a 100 Hz tilt sensor and a heart-rate strap)."""
MAX_REVIEW_LINES = 2_000_000
MAX_REVIEW_S = 6 * 3600.0
"""The longest stretch of trace time a review replays: six hours."""
REVIEW_TIMEOUT_S = 60.0
"""Wall time after which a review's worker is killed (a full-size one takes about 20 s)."""
MAX_RUNNING_REVIEWS = 2
WORKER_NICENESS = 10
SOURCE = "upload"


class ReviewError(Exception):
    """A review refused or stopped: ``status`` is the HTTP status, ``str()`` the reason."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ReviewLimits:
    """What one review may cost."""

    max_bytes: int = MAX_REVIEW_BYTES
    max_lines: int = MAX_REVIEW_LINES
    max_duration_s: float = MAX_REVIEW_S
    timeout_s: float = REVIEW_TIMEOUT_S


def review_trace(
    body: bytes, profile: Profile, age: float | None, limits: ReviewLimits
) -> dict[str, Any]:
    """Replay an uploaded trace (in this process): the alarm events and 1 Hz theta and heart
    rate for charts. Raises :class:`ReviewError` for a broken or too long trace."""
    if len(body) > limits.max_bytes:
        raise ReviewError(413, f"a trace of at most {limits.max_bytes // 1_000_000} MB")
    trend: dict[str, list[Any]] = {"t": [], "theta_deg": [], "hr_bpm": []}
    events: list[dict[str, Any]] = []
    try:
        reader = TraceReader(open_trace_bytes(body), SOURCE)
        header = reader.header
        core = SafetyCore(header.sensors, profile, age_years=age, started_at=header.started_at)
        next_sample = 0.0

        def bounded(records: TraceReader) -> Any:
            nonlocal next_sample
            first_t: float | None = None
            for record in records:
                if first_t is None:
                    first_t = record.t  # a recorded trace starts at the station's uptime
                _check_bounds(reader, record.t - first_t, limits)
                yield record
                if isinstance(record, Notification) and record.t >= next_sample:
                    next_sample = record.t + 1.0
                    trend["t"].append(round(record.t, 2))
                    trend["theta_deg"].append(core.signals.theta)
                    trend["hr_bpm"].append(core.signals.hr_bpm)

        for event in replay(bounded(reader), core):
            events.append(event.to_json())
    except TraceError as exc:
        raise ReviewError(400, str(exc)) from None
    return {"station": header.station, "events": events, "trend": trend}


def _check_bounds(reader: TraceReader, duration_s: float, limits: ReviewLimits) -> None:
    if reader.line > limits.max_lines:
        raise ReviewError(
            413, f"{SOURCE}:{reader.line}: a review replays at most {limits.max_lines} lines"
        )
    if duration_s > limits.max_duration_s:
        raise ReviewError(
            413,
            f"{SOURCE}:{reader.line}: the trace goes on for more than the "
            f"{limits.max_duration_s:g} s a review replays",
        )


def _worker(
    conn: Connection, body: bytes, profile: Profile, age: float | None, limits: ReviewLimits
) -> None:
    """The review process: one review, its outcome sent back on ``conn``."""
    os.nice(WORKER_NICENESS)
    outcome: tuple[Any, ...]
    try:
        outcome = ("ok", review_trace(body, profile, age, limits))
    except ReviewError as exc:
        outcome = ("refused", exc.status, exc.message)
    except Exception:
        import traceback

        outcome = ("crashed", traceback.format_exc())
    conn.send(outcome)
    conn.close()


class _Job:
    """One review in its own process; a daemon thread waits for the answer, so neither the
    event loop nor the interpreter's exit ever waits on it."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._answers, self._send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_worker, args=(self._send, *args), daemon=True, name="spotter-review"
        )
        self._lock = threading.Lock()
        self._stopped = False

    def _wait(self, loop: asyncio.AbstractEventLoop, answer: asyncio.Future[Any]) -> None:
        result: Any
        try:
            with self._lock:
                if self._stopped:  # stopped before it started: nobody waits for an answer
                    self._send.close()
                    return
                self.process.start()
            self._send.close()
            result = self._answers.recv()
        except (EOFError, OSError) as exc:
            result = exc
        finally:
            self._answers.close()
            if self.process.pid is not None:
                self.process.join()
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, answer, result)

    async def run(self, timeout_s: float) -> Any:
        """The worker's answer; TimeoutError after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        threading.Thread(target=self._wait, args=(loop, answer), daemon=True).start()
        return await asyncio.wait_for(answer, timeout_s)

    def stop(self) -> None:
        """Kill the worker (if it runs); the waiting thread then ends."""
        with self._lock:
            self._stopped = True
            if self.process.pid is not None and self.process.exitcode is None:
                self.process.kill()


def _settle(answer: asyncio.Future[Any], result: Any) -> None:
    if not answer.done():
        answer.set_result(result)


class ReviewPool:
    """At most ``max_running`` reviews at once, each in a process killed at its time limit."""

    def __init__(
        self, limits: ReviewLimits = ReviewLimits(), max_running: int = MAX_RUNNING_REVIEWS
    ) -> None:
        self.limits = limits
        self.max_running = max_running
        self.running = 0

    async def review(self, body: bytes, profile: Profile, age: float | None) -> dict[str, Any]:
        """Replay an upload in a worker process; raises :class:`ReviewError`."""
        limits = self.limits
        if len(body) > limits.max_bytes:
            raise ReviewError(413, f"a trace of at most {limits.max_bytes // 1_000_000} MB")
        if self.running >= self.max_running:
            raise ReviewError(
                503, f"{self.running} reviews are running (the most at once); try again shortly"
            )
        self.running += 1
        job = _Job((body, profile, age, limits))
        try:
            answer = await job.run(limits.timeout_s)
        except TimeoutError:
            log.warning("a review took longer than %g s and was stopped", limits.timeout_s)
            raise ReviewError(
                413, f"the review took longer than {limits.timeout_s:g} s and was stopped"
            ) from None
        finally:
            job.stop()
            self.running -= 1
        if isinstance(answer, BaseException):
            log.error("a review's worker ended without an answer: %r", answer)
            raise ReviewError(500, "the review's worker ended without an answer")
        if answer[0] == "ok":
            result: dict[str, Any] = answer[1]
            return result
        if answer[0] == "refused":
            raise ReviewError(answer[1], answer[2])
        log.error("a review crashed:\n%s", answer[1])
        raise ReviewError(500, "the review crashed (logged on the hub)")


REVIEWS = ReviewPool()
"""The process's pool: every review of an upload goes through it."""


async def review_upload(body: bytes, profile: Profile, age: float | None) -> dict[str, Any]:
    """Review an uploaded trace through the process's bounded pool (:data:`REVIEWS`)."""
    return await REVIEWS.review(body, profile, age)
