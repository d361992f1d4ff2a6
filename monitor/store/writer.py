"""The station's disk writer: every store and trace write, in order, off the event loop.

The safety loop must never wait on the disk: on a Raspberry Pi's SD card an fsync can stall
for seconds, and a loop held that long raises false ``*.signal_lost`` alarms and delays a real
alarm's sound. So the station hands each write to :class:`StoreWriter` as a *job* and goes on.
One thread owns its own SQLite connection (WAL: readers on the loop's connection are never
blocked by it) and runs the jobs strictly in the order given. Whatever queued up while it was
busy goes into ONE transaction (one fsync), each job in its own savepoint, so a slow disk costs
one stall per group, not one per write, and one failing job rolls back alone. Trace file
writes are jobs on the same thread, in the same order.

When a group has committed, each job's ``done`` callback runs on the event loop with its
result (for alarm events: their sequence numbers), which is how the dashboard, MQTT and push
learn of an alarm only after it is on disk. Code on the loop that must know its write is
on disk before it answers (a dashboard route, a login) awaits :meth:`StoreWriter.run` instead:
only that caller waits for the commit, the loop goes on. A failure calls ``failed`` on the
loop, is logged, and stays in :attr:`StoreWriter.failures` (by part: ``store``, ``trace``)
until a later write of that part succeeds; the station shows it as a problem.

Queue policy. Records (alarm events, sessions, inversions, actions, audit) are never dropped
and never merged. The 1 Hz job (trend sample + checkpoint) is *coalesced*: while the newest
queued job is a 1 Hz job not yet started, a newer one is absorbed into it (trend rows appended,
up to an hour of them; the checkpoint replaced by the newer one), so a stalled disk holds at
most one of them per gap between records. The queue therefore grows only with records, a few
per alarm; above :data:`QUEUE_WARN` items it is logged as an error. A store that falls behind
is never silent: :meth:`StoreWriter.lag_s`, the age of the oldest write not yet committed on
the monotonic clock, becomes a station problem above :data:`BEHIND_AFTER_S`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from monitor.store.database import StoreError
from monitor.store.station_store import Store

log = logging.getLogger(__name__)

BEHIND_AFTER_S = 1.0
"""A write older than this and not committed yet is a station problem ("falling behind")."""
STORE_LAG = "store lag"
"""The station problem's key for a writer falling behind (its text says by how much)."""
WRITER_PARTS = ("store", "trace", "store callback")
"""What can fail in the writer, as the station names it among its problems."""
MAX_GROUP = 500
"""At most this many jobs in one transaction."""
QUEUE_WARN = 10_000
"""Queued jobs above this are logged as an error (records are still never dropped)."""

Job = Callable[[Store], Any]
"""A write: runs on the writer thread with its store; its result goes to ``done``."""
T = TypeVar("T")
FileJob = Callable[[], None]
"""A trace file write: runs on the writer thread, in order with the store's jobs."""


@runtime_checkable
class Coalescing(Protocol):
    """A job that can take in a newer job of its kind while it waits (the 1 Hz trend and
    checkpoint)."""

    def __call__(self, store: Store) -> Any:
        """Write."""

    def absorb(self, newer: Any) -> bool:
        """Take ``newer``'s writes into this job; False if it cannot (then both are queued)."""


@dataclass(eq=False)
class _Item:
    job: Job | None
    file_job: FileJob | None
    done: Callable[[Any], None] | None
    failed: Callable[[Exception], None] | None
    queued_s: float
    coalesce: bool = False
    started: bool = False

    @property
    def part(self) -> str:
        if self.job is None and self.file_job is None:
            return "mark"  # a flush: rides along with any group, writes nothing
        return "trace" if self.file_job is not None else "store"


class Writer(Protocol):
    """What the journal and the recorder write through (threaded, or inline for tools)."""

    failures: dict[str, str]

    def submit(
        self,
        job: Job,
        done: Callable[[Any], None] | None = None,
        failed: Callable[[Exception], None] | None = None,
        *,
        coalesce: bool = False,
    ) -> None:
        """Queue a store write; ``done(result)`` / ``failed(error)`` once it is decided."""

    def submit_file(self, job: FileJob, failed: Callable[[Exception], None] | None = None) -> None:
        """Queue a trace file write, in order with the store's."""

    async def run(self, job: Callable[[Store], T]) -> T:
        """Write ``job`` in order with every other write and wait for it: its result once
        committed, or its error raised."""

    def lag_s(self) -> float:
        """Age of the oldest write not yet committed (0: none waits)."""

    async def flush(self) -> None:
        """Wait until everything submitted so far is decided (and its callbacks have run)."""


def _as_store_error(exc: Exception, path: Path) -> Exception:
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"{path}: {exc}")
    return exc


class InlineWriter:
    """Runs every write at once on the caller's thread: for commands and tests that have no
    running station. ``done`` runs before :meth:`submit` returns; a :class:`StoreError` goes
    to ``failed`` when given (else it is raised), anything else is raised."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.failures: dict[str, str] = {}

    def submit(
        self,
        job: Job,
        done: Callable[[Any], None] | None = None,
        failed: Callable[[Exception], None] | None = None,
        *,
        coalesce: bool = False,
    ) -> None:
        """Run ``job`` now."""
        try:
            result = job(self.store)
        except (StoreError, sqlite3.Error) as exc:
            error = _as_store_error(exc, self.store.path)
            if self.failures.get("store") != str(error):
                log.error("store write failed; the station goes on alarming without it: %s", error)
            self.failures["store"] = str(error)
            if failed is None:
                raise error from None
            failed(error)
            return
        self.failures.pop("store", None)
        if done is not None:
            done(result)

    async def run(self, job: Callable[[Store], T]) -> T:
        """Run ``job`` now (a :class:`StoreError` is raised, as from :meth:`submit`)."""
        results: list[T] = []
        self.submit(job, results.append)
        return results[0]

    def submit_file(self, job: FileJob, failed: Callable[[Exception], None] | None = None) -> None:
        """Write the trace now."""
        try:
            job()
        except OSError as exc:
            self.failures["trace"] = f"{type(exc).__name__}: {exc}"
            if failed is None:
                raise
            failed(exc)
            return
        self.failures.pop("trace", None)

    def lag_s(self) -> float:
        """Nothing ever waits."""
        return 0.0

    async def flush(self) -> None:
        """Everything is written already."""


class StoreWriter:
    """The writer thread; create it with :meth:`start`, end it with :meth:`aclose`.

    ``clock`` is monotonic seconds (the lag is measured on it); ``before_commit`` is given to
    the thread's store (see :attr:`monitor.store.database.Database.before_commit`: tests stall or
    fail the disk with it).
    """

    def __init__(
        self,
        path: Path,
        loop: asyncio.AbstractEventLoop,
        *,
        clock: Callable[[], float] = time.monotonic,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._loop = loop
        self._clock = clock
        self._before_commit = before_commit
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()  # shared with the thread, under _cond
        self._pending: deque[_Item] = deque()  # the loop's view: submitted, not yet reported
        self._closing = False
        self._opened = threading.Event()
        self._open_error: StoreError | None = None
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._warned_queue = False
        self.failures: dict[str, str] = {}
        """Failing parts (``store``, ``trace``) and why, until a later write of the part works."""
        self.groups = 0
        """Transactions committed (each one fsync)."""
        self.max_lag_s = 0.0
        """The largest lag :meth:`lag_s` has reported."""

    @classmethod
    async def start(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        before_commit: Callable[[], None] | None = None,
    ) -> StoreWriter:
        """Start the thread and open its connection to the (already migrated) store."""
        writer = cls(path, asyncio.get_running_loop(), clock=clock, before_commit=before_commit)
        writer._thread.start()
        await asyncio.to_thread(writer._opened.wait)
        if writer._open_error is not None:
            await asyncio.to_thread(writer._thread.join)
            raise writer._open_error
        return writer

    # -- the loop's side -------------------------------------------------------------------

    def submit(
        self,
        job: Job,
        done: Callable[[Any], None] | None = None,
        failed: Callable[[Exception], None] | None = None,
        *,
        coalesce: bool = False,
    ) -> None:
        """Queue a store write (never waits). ``coalesce``: ``job`` is :class:`Coalescing`."""
        item = _Item(job, None, done, failed, self._clock(), coalesce)
        self._enqueue(item)

    async def run(self, job: Callable[[Store], T]) -> T:
        """Queue ``job`` like :meth:`submit` and wait for the group it is in to commit: its
        result, or its error raised (a :class:`StoreError` for the disk). The one way code on
        the event loop writes the store and needs to know it did (a route answering with the
        new row): the loop goes on ticking while the disk is slow, only this caller waits."""
        outcome: asyncio.Future[T] = self._loop.create_future()

        def done(result: T) -> None:
            if not outcome.done():
                outcome.set_result(result)

        def failed(error: Exception) -> None:
            if not outcome.done():
                outcome.set_exception(error)

        self.submit(job, done, failed)
        return await outcome

    def submit_file(self, job: FileJob, failed: Callable[[Exception], None] | None = None) -> None:
        """Queue a trace file write (never waits)."""
        self._enqueue(_Item(None, job, None, failed, self._clock()))

    def _enqueue(self, item: _Item) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the store writer is closed")
            last = self._queue[-1] if self._queue else None
            if (
                item.coalesce
                and last is not None
                and last.coalesce
                and not last.started
                and isinstance(last.job, Coalescing)
                and last.job.absorb(item.job)
            ):
                return
            self._queue.append(item)
            self._pending.append(item)
            if len(self._queue) > QUEUE_WARN and not self._warned_queue:
                self._warned_queue = True
                log.error("store writer: %d writes queued; the disk is not keeping up", QUEUE_WARN)
            self._cond.notify()

    def lag_s(self) -> float:
        """Age of the oldest write not yet committed, on the monotonic clock (0: none)."""
        if not self._pending:
            return 0.0
        lag = max(0.0, self._clock() - self._pending[0].queued_s)
        self.max_lag_s = max(self.max_lag_s, lag)
        return lag

    @property
    def queued(self) -> int:
        """Writes submitted and not yet reported done."""
        return len(self._pending)

    async def flush(self) -> None:
        """Wait until everything submitted so far is decided (and its callbacks have run)."""
        written = self._loop.create_future()

        def mark(_: object) -> None:
            if not written.done():
                written.set_result(None)

        self._enqueue(_Item(None, None, mark, mark, self._clock()))
        await written

    async def aclose(self) -> None:
        """Write everything queued, then stop the thread (its callbacks have all run)."""
        if self._closing:
            return
        finished = self._loop.create_future()

        def mark(_: object) -> None:
            if not finished.done():
                finished.set_result(None)

        self.submit(lambda store: None, mark, mark)
        with self._cond:
            self._closing = True
            self._cond.notify()
        await finished
        await asyncio.to_thread(self._thread.join)

    def _finished(self, batch: list[_Item], outcomes: list[tuple[Any, Exception | None]]) -> None:
        """On the loop: report a group's outcome, in order."""
        for item, (result, error) in zip(batch, outcomes, strict=True):
            head = self._pending.popleft()
            assert head is item, "the writer reported out of order"
            if item.part == "mark":
                callback, arg = item.done, None
            elif error is None:
                self.failures.pop(item.part, None)
                callback, arg = item.done, result
            else:
                text = str(error) if isinstance(error, StoreError) else f"{error!r}"
                if self.failures.get(item.part) != text:
                    log.error(
                        "%s write failed; the station goes on alarming without it: %s",
                        item.part,
                        text,
                        exc_info=None if isinstance(error, (StoreError, OSError)) else error,
                    )
                self.failures[item.part] = text
                callback, arg = item.failed, error
            if callback is not None:
                try:
                    callback(arg)
                except Exception:
                    log.exception("store writer: a callback after a write failed")
                    self.failures["store callback"] = "a callback after a write failed (see log)"

    # -- the thread's side -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            store = Store.open(self.path, migrate=False)
        except StoreError as exc:
            self._open_error = exc
            self._opened.set()
            return
        store.before_commit = self._before_commit
        self._opened.set()
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return
                    batch = self._take()
                outcomes = self._write(store, batch)
                with self._cond:
                    for _ in batch:
                        self._queue.popleft()
                self._loop.call_soon_threadsafe(self._finished, batch, outcomes)
        except RuntimeError:  # the loop closed under us: nobody is left to tell
            log.exception("store writer: the event loop closed with writes pending")
        finally:
            store.close()

    def _take(self) -> list[_Item]:
        """The leading run of jobs of one part (store or trace), marked started."""
        part = "mark"
        batch: list[_Item] = []
        for item in self._queue:
            if part == "mark":
                part = item.part
            if item.part not in (part, "mark") or len(batch) >= MAX_GROUP:
                break
            item.started = True
            batch.append(item)
        return batch

    def _write(self, store: Store, batch: list[_Item]) -> list[tuple[Any, Exception | None]]:
        if all(item.job is None for item in batch):
            files: list[tuple[Any, Exception | None]] = []
            for item in batch:
                if item.file_job is None:  # a mark
                    files.append((None, None))
                    continue
                try:
                    item.file_job()
                except Exception as exc:  # reported on the loop, with its traceback if a bug
                    files.append((None, exc))
                else:
                    files.append((None, None))
            return files
        outcomes: list[tuple[Any, Exception | None]] = []
        try:
            with store.group():
                for item in batch:
                    if item.job is None:  # a mark
                        outcomes.append((None, None))
                        continue
                    try:
                        with store.group():  # a savepoint: this job alone rolls back
                            outcomes.append((item.job(store), None))
                    except Exception as exc:
                        outcomes.append((None, _as_store_error(exc, store.path)))
        except Exception as exc:  # the commit failed: nothing of the group is on disk
            error = _as_store_error(exc, store.path)
            return [(None, error)] * len(batch)
        self.groups += 1
        return outcomes
