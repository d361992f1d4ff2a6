"""Supervised long-lived tasks: a crash is logged with its traceback, shown as a technical
problem, and the task starts again after a short back-off, so no single bad input or bug can
silently end a loop the safety promise depends on (the hub's listener and ``link.lost``
ticker, the station's MQTT bridge...).

Shell code (asyncio, the loop's clock). Used by the station (:mod:`monitor.mqtt.bridge`) and the hub
(:mod:`dashboard.clinic.service`) alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, MutableMapping
from typing import Any, Literal

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
HEALTHY_AFTER_S = 30.0
"""A restarted task that has run this long without crashing again is well: its problem is
cleared and the back-off starts from the minimum again."""


async def supervise(
    name: str,
    body: Callable[[], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    problems: MutableMapping[str, str],
    crashes: Counter[str] | None = None,
    *,
    backoff_min_s: float = BACKOFF_MIN_S,
    backoff_max_s: float = BACKOFF_MAX_S,
    healthy_after_s: float = HEALTHY_AFTER_S,
) -> None:
    """Run ``body()`` until ``stop`` is set, starting it again whenever it ends early.

    A crash (any exception) is logged with its traceback and recorded in ``problems`` under
    ``task {name}`` (and counted in ``crashes``); the problem is cleared once the restarted
    task has run ``healthy_after_s``. A body that returns while ``stop`` is not set ended too
    early: also a problem. Cancelling this cancels the body.
    """
    key = f"task {name}"
    backoff = backoff_min_s
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        task = asyncio.create_task(body(), name=name)
        try:
            if key in problems:
                done, _ = await asyncio.wait({task}, timeout=healthy_after_s)
                if not done:
                    problems.pop(key, None)
                    backoff = backoff_min_s
            await task
        except asyncio.CancelledError:
            await cancel_and_wait(task)
            raise
        except Exception as exc:
            log.exception("%s crashed; restarting in %.1f s", name, backoff)
            problems[key] = f"{name} crashed ({type(exc).__name__}: {exc}); restarted"[:300]
            if crashes is not None:
                crashes[name] += 1
        else:
            if stop.is_set():
                return
            log.error("%s ended on its own; restarting in %.1f s", name, backoff)
            problems[key] = f"{name} ended on its own; restarted"
        if loop.time() - started >= healthy_after_s:
            backoff = backoff_min_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(backoff):
                await stop.wait()
        backoff = min(backoff * 2, backoff_max_s)


async def cancel_and_wait(
    *tasks: asyncio.Task[Any], errors: Literal["log", "raise"] = "log"
) -> None:
    """Cancel these tasks and wait until they have all ended. A failure of one (other than
    its cancellation) is never lost: logged with its traceback (``errors="log"``), or raised
    once every task has ended (``errors="raise"``: the first). A cancellation of the caller
    itself is not swallowed: raised once every task has ended (or at once, should the caller
    be cancelled again while it waits), so a caller's ``finally`` can clean up after them."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    first: BaseException | None = None
    for task in tasks:
        if task.cancelled() or (exc := task.exception()) is None:
            continue
        if not isinstance(exc, Exception):
            raise exc
        if errors == "raise":
            first = first or exc
        else:
            log.error(
                "task %s failed while being stopped",
                task.get_name(),
                exc_info=(type(exc), exc, exc.__traceback__),
            )
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
    if first is not None:
        raise first


async def first_done(*aws: Coroutine[Any, Any, None] | asyncio.Task[Any]) -> None:
    """Run these together until the first ends; cancel the rest; its exception propagates."""
    tasks = [a if isinstance(a, asyncio.Task) else asyncio.create_task(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()


Close = Callable[[], Awaitable[None] | None]
"""A part's close: plain or awaitable."""


async def close_all(
    closers: Iterable[tuple[str, Close]],
    *,
    raise_first: bool = True,
    log_as: str = "closing the %s failed",
) -> None:
    """Close each part; one that raises is logged (``log_as`` % its name) with its traceback
    and the rest still close; the first failure is raised at the end (``raise_first``; else it
    stays logged: when an error of its own is already on its way)."""
    first: BaseException | None = None
    for part, close in closers:
        try:
            done = close()
            if inspect.isawaitable(done):
                await done
        except Exception as exc:
            log.exception(log_as, part)
            first = first or exc
    if first is not None and raise_first:
        raise first
