"""The one supervisor of long-lived tasks (:mod:`monitor.supervise`): a crash is logged with
its traceback, shown as a problem, counted, and the task starts again; the problem goes once
the task has run well for a while; stopping ends it."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from monitor.bench.faults.mqtt import until
from monitor.supervise import cancel_and_wait, supervise

pytestmark = pytest.mark.timeout(30)


@pytest.mark.asyncio
async def test_a_crash_is_logged_shown_counted_and_the_task_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    problems: dict[str, str] = {}
    crashes: Counter[str] = Counter()
    runs = 0
    third = asyncio.Event()

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"boom {runs}")
        third.set()
        await stop.wait()

    caplog.set_level(logging.ERROR, logger="monitor.supervise")
    task = asyncio.create_task(
        supervise("worker", body, stop, problems, crashes, backoff_min_s=0.01, backoff_max_s=0.02)
    )
    await asyncio.wait_for(third.wait(), 10)
    assert crashes == Counter({"worker": 2})
    assert "boom 2" in problems["task worker"]
    failures = [r for r in caplog.records if "worker crashed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info is not None for r in failures)  # with its traceback
    stop.set()
    await asyncio.wait_for(task, 10)
    assert runs == 3


@pytest.mark.asyncio
async def test_the_problem_clears_once_the_restarted_task_runs_well() -> None:
    stop = asyncio.Event()
    problems: dict[str, str] = {"other": "kept"}
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ValueError("once")
        await stop.wait()

    task = asyncio.create_task(
        supervise("w", body, stop, problems, backoff_min_s=0.01, healthy_after_s=0.05)
    )
    await until(lambda: runs == 2, 10, "restarted")
    await until(lambda: "task w" not in problems, 10, "problem cleared")
    assert problems == {"other": "kept"}
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_a_task_that_ends_on_its_own_is_a_problem_and_restarted() -> None:
    stop = asyncio.Event()
    problems: dict[str, str] = {}
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            stop.set()

    await asyncio.wait_for(supervise("quitter", body, stop, problems, backoff_min_s=0.01), 10)
    assert runs == 3
    assert "ended on its own" in problems["task quitter"]


async def wait_for_ever(
    started: asyncio.Event, ended: asyncio.Event | None = None, *, fail: bool = False
) -> None:
    """Wait until cancelled; on the way out set ``ended`` and (``fail``) raise."""
    started.set()
    try:
        await asyncio.Event().wait()
    finally:
        if ended is not None:
            ended.set()
        if fail:
            raise RuntimeError("failed on the way out")


@pytest.mark.asyncio
async def test_cancelling_the_supervisor_cancels_the_task() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    cancelled = asyncio.Event()
    task = asyncio.create_task(supervise("c", lambda: wait_for_ever(started, cancelled), stop, {}))
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(cancel_and_wait(task), 10)
    assert cancelled.is_set()
    assert task.cancelled()


@pytest.mark.asyncio
async def test_cancel_and_wait_logs_a_task_that_fails_while_stopping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(wait_for_ever(started, fail=True), name="bad")
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(cancel_and_wait(task), 10)
    logged = [r for r in caplog.records if "bad failed while being stopped" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


@pytest.mark.asyncio
async def test_cancel_and_wait_can_raise_a_failure_once_every_task_has_ended() -> None:
    started, other_started, other_ended = asyncio.Event(), asyncio.Event(), asyncio.Event()
    failing = asyncio.create_task(wait_for_ever(started, fail=True), name="bad")
    waiting = asyncio.create_task(wait_for_ever(other_started, other_ended), name="other")
    await asyncio.wait_for(asyncio.gather(started.wait(), other_started.wait()), 10)
    with pytest.raises(RuntimeError, match="on the way out"):
        await asyncio.wait_for(cancel_and_wait(failing, waiting, errors="raise"), 10)
    assert other_ended.is_set()
    assert waiting.cancelled()


@pytest.mark.asyncio
async def test_a_cancelled_caller_still_waits_for_every_task_then_is_cancelled() -> None:
    started, slow_started, slow_stopping = asyncio.Event(), asyncio.Event(), asyncio.Event()
    release, cleaned_up = asyncio.Event(), asyncio.Event()
    quick = asyncio.create_task(wait_for_ever(started))

    async def slow_to_stop() -> None:
        slow_started.set()
        try:
            await asyncio.Event().wait()
        finally:
            slow_stopping.set()
            await release.wait()

    slow = asyncio.create_task(slow_to_stop())

    async def caller() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            try:
                await cancel_and_wait(quick, slow)
            finally:
                cleaned_up.set()

    await asyncio.wait_for(asyncio.gather(started.wait(), slow_started.wait()), 10)
    task = asyncio.create_task(caller())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(slow_stopping.wait(), 10)
    for _ in range(5):  # the quick one has ended by now; the caller still waits for the slow
        await asyncio.sleep(0)
    assert quick.cancelled()
    assert not task.done()
    assert not cleaned_up.is_set()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert cleaned_up.is_set()
    assert slow.cancelled()
