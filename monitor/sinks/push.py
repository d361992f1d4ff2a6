"""Push alarms to the spotter's phone through apprise (SPEC section 7: remote watchers).

Pure core: :class:`PushSchedule` says, at each tick, which alarms to push now. A high alarm is
pushed at once (raised, or escalated to high) and again every ``high_repeat_s`` (60 s) until
it is acknowledged or resolved. A medium alarm is pushed once it has been unacknowledged for
``medium_after_s`` (30 s), then every ``medium_repeat_s`` (60 s) while it stays so. Low alarms
are not pushed. An alarm that sounds again after an acknowledge (120 s later, or escalated)
starts over as a new unacknowledged episode. Silence at the station does not stop pushes:
it pauses the sound beside the table, not the people who should come and look.

Shell: :class:`PushSink`, the station sink, hands messages to an :class:`Outbox`: one worker
thread with a bounded queue that sends through apprise (which blocks), so the safety loop
never waits on the network. Failed deliveries are logged and retried with exponential
back-off until delivered, superseded by the same alarm's next push, or the alarm is
acknowledged or resolved. A full queue drops its oldest non-high delivery and logs it.
URLs carry secrets: they are only ever shown through :func:`redact`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from monitor.core.alarms import AlarmEvent, AlarmState, Priority
from monitor.core.sink import SinkBase
from monitor.core.station_view import AlarmView, ViewSource
from monitor.settings import PushConfig, redact

log = logging.getLogger(__name__)
EPS_S = 1e-6


# -- secrets -----------------------------------------------------------------------------

# -- configuration -----------------------------------------------------------------------


class PushConfigError(ValueError):
    """A push URL apprise cannot use; names it redacted."""


# -- the schedule (pure) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One push of one alarm."""

    t: float
    alarm_id: str
    priority: Priority
    title: str
    body: str
    repeat: int
    """0 for the first push of this unacknowledged episode."""


@dataclass(slots=True)
class _Episode:
    since: float
    """The alarm's ``unacked_since``: a new value is a new episode."""
    pushed: Priority | None = None
    next_at: float = 0.0
    count: int = 0


class PushSchedule:
    """Which alarms to push when; time arrives with every call."""

    def __init__(
        self,
        station: str,
        *,
        high_repeat_s: float = 60.0,
        medium_after_s: float = 30.0,
        medium_repeat_s: float = 60.0,
    ) -> None:
        self.station = station
        self.high_repeat_s = high_repeat_s
        self.medium_after_s = medium_after_s
        self.medium_repeat_s = medium_repeat_s
        self._episodes: dict[str, _Episode] = {}

    def due(self, t: float, alarms: Iterable[AlarmView]) -> tuple[list[PushMessage], list[str]]:
        """The pushes due at ``t``, and the alarms whose pushes stop (acknowledged, resolved)."""
        messages: list[PushMessage] = []
        waiting: set[str] = set()
        for alarm in alarms:
            if alarm.state is AlarmState.ACKNOWLEDGED:
                continue
            waiting.add(alarm.id)
            episode = self._episodes.get(alarm.id)
            if episode is None or episode.since != alarm.unacked_since:
                episode = self._episodes[alarm.id] = _Episode(alarm.unacked_since)
            if self._is_due(t, alarm, episode):
                messages.append(self._message(t, alarm, episode))
                episode.pushed = alarm.priority
                episode.count += 1
                high = alarm.priority is Priority.HIGH
                episode.next_at = t + (self.high_repeat_s if high else self.medium_repeat_s)
        stopped = [alarm_id for alarm_id in self._episodes if alarm_id not in waiting]
        for alarm_id in stopped:
            del self._episodes[alarm_id]
        return messages, stopped

    def _is_due(self, t: float, alarm: AlarmView, episode: _Episode) -> bool:
        if alarm.priority is Priority.HIGH:
            return episode.pushed is not Priority.HIGH or t >= episode.next_at - EPS_S
        if alarm.priority is Priority.MEDIUM:
            if episode.pushed is None:
                return t - alarm.unacked_since >= self.medium_after_s - EPS_S
            return t >= episode.next_at - EPS_S
        return False

    def _message(self, t: float, alarm: AlarmView, episode: _Episode) -> PushMessage:
        label = alarm.priority.label.upper()
        body = f"{label} · {self.station} · {alarm.message}"
        if not alarm.condition:
            body += " · condition cleared"
        waited = t - alarm.unacked_since
        if waited >= 1.0:
            body += f" · unacknowledged for {waited:.0f} s"
        title = f"Spotter {self.station}: {label} alarm"
        return PushMessage(round(t, 3), alarm.id, alarm.priority, title, body, episode.count)


# -- delivery (the shell) ----------------------------------------------------------------

Send = Callable[[int, PushMessage], bool]
"""Deliver a message to target ``i``; True when delivered. Blocks; runs in the worker."""


@dataclass(frozen=True, slots=True)
class PushStats:
    """Delivery counters (one delivery is one message to one URL), for status views."""

    sent: int = 0
    failed: int = 0
    """Failed attempts."""
    retrying: int = 0
    """Deliveries now waiting for another attempt."""
    dropped: int = 0
    """Deliveries thrown away unsent: the queue was full, or the station stopped."""
    cancelled: int = 0
    """Deliveries no longer needed: acknowledged, resolved, or replaced by a newer push."""
    pending: int = 0
    """Deliveries waiting or being sent now."""


@dataclass(slots=True, eq=False)
class _Delivery:
    message: PushMessage
    target: int
    seq: int
    not_before: float
    attempts: int = 0
    cancelled: bool = False


class Outbox:
    """A worker thread that delivers messages with ``send``; every method returns at once.

    ``targets`` are the redacted names of the URLs, for logs. ``clock`` times the back-off.
    """

    def __init__(
        self,
        send: Send,
        targets: Sequence[str],
        *,
        queue_size: int = 64,
        retry_first_s: float = 2.0,
        retry_max_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self.targets = list(targets)
        self.queue_size = queue_size
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: list[_Delivery] = []
        self._inflight: _Delivery | None = None
        self._seq = 0
        self._counts = {"sent": 0, "failed": 0, "dropped": 0, "cancelled": 0}
        self._failing: set[int] = set()
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def stats(self) -> PushStats:
        """A snapshot of the counters."""
        with self._cond:
            pending = self._pending
            return PushStats(
                **self._counts,
                retrying=sum(1 for d in pending if d.attempts > 0),
                pending=len(pending) + (self._inflight is not None),
            )

    def failing(self) -> list[int]:
        """Targets whose last attempt failed."""
        with self._cond:
            return sorted(self._failing)

    def put(self, message: PushMessage) -> None:
        """Queue ``message`` for every target; a waiting one of the same alarm is replaced."""
        with self._cond:
            if self._closing:
                return
            for target in range(len(self.targets)):
                self._put(message, target)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="push-outbox", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _put(self, message: PushMessage, target: int) -> None:
        for d in self._pending:
            if d.target == target and d.message.alarm_id == message.alarm_id:
                d.message = message  # keeps its back-off: a dead receiver is not hammered
                self._counts["cancelled"] += 1
                return
        if len(self._pending) >= self.queue_size:
            victim = min(self._pending, key=lambda d: (d.message.priority is Priority.HIGH, d.seq))
            self._pending.remove(victim)
            self._counts["dropped"] += 1
            level = logging.ERROR if victim.message.priority is Priority.HIGH else logging.WARNING
            log.log(
                level,
                "push queue full (%d): dropped %s %s to %s",
                self.queue_size,
                victim.message.priority.label,
                victim.message.alarm_id,
                self.targets[victim.target],
            )
        self._seq += 1
        self._pending.append(_Delivery(message, target, self._seq, self._clock()))

    def cancel(self, alarm_id: str) -> None:
        """Forget undelivered pushes of ``alarm_id`` (acknowledged or resolved)."""
        with self._cond:
            keep = [d for d in self._pending if d.message.alarm_id != alarm_id]
            self._counts["cancelled"] += len(self._pending) - len(keep)
            self._pending = keep
            if self._inflight is not None and self._inflight.message.alarm_id == alarm_id:
                self._inflight.cancelled = True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting or being sent (tests, shutdown); False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._pending and self._inflight is None, timeout
            )

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker; undelivered pushes are dropped and logged."""
        with self._cond:
            self._closing = True
            if self._pending:
                log.warning("push: %d deliveries left unsent at shutdown", len(self._pending))
                self._counts["dropped"] += len(self._pending)
                self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("push: a delivery was still in progress at shutdown")

    # -- the worker ----------------------------------------------------------------------

    def _next(self) -> _Delivery | None:
        with self._cond:
            while not self._closing:
                now = self._clock()
                ready = [d for d in self._pending if d.not_before <= now]
                if ready:
                    pick = min(ready, key=lambda d: (-d.message.priority, d.seq))
                    self._pending.remove(pick)
                    self._inflight = pick
                    return pick
                wait = min((d.not_before for d in self._pending), default=now + 3600) - now
                self._cond.wait(max(wait, 0.001))
            return None

    def _run(self) -> None:
        while (d := self._next()) is not None:
            try:
                ok = self._send(d.target, d.message)
                why = "not delivered"
            except Exception as exc:  # a sender bug must not kill the worker
                ok, why = False, f"{type(exc).__name__} while sending"
            self._done(d, ok, why)

    def _done(self, d: _Delivery, ok: bool, why: str) -> None:
        with self._cond:
            self._inflight = None
            name = self.targets[d.target]
            what = f"{d.message.priority.label} {d.message.alarm_id}"
            if ok:
                self._counts["sent"] += 1
                self._failing.discard(d.target)
                if d.attempts:
                    log.info("push of %s to %s delivered after %d retries", what, name, d.attempts)
            else:
                self._counts["failed"] += 1
                self._failing.add(d.target)
                self._retry(d, what, name, why)
            self._cond.notify_all()

    def _retry(self, d: _Delivery, what: str, name: str, why: str) -> None:
        d.attempts += 1
        delay = min(self.retry_max_s, self.retry_first_s * 2 ** (d.attempts - 1))
        d.not_before = self._clock() + delay
        if d.cancelled or self._closing:
            log.warning("push of %s to %s failed (%s); no longer needed", what, name, why)
            self._counts["cancelled"] += 1
            return
        log.warning(
            "push of %s to %s failed (%s, attempt %d); retrying in %.1f s",
            what,
            name,
            why,
            d.attempts,
            delay,
        )
        same = d.target, d.message.alarm_id
        newer = next((p for p in self._pending if (p.target, p.message.alarm_id) == same), None)
        if newer is not None:  # a newer push of this alarm waits: it inherits the back-off
            newer.attempts = d.attempts
            newer.not_before = max(newer.not_before, d.not_before)
            self._counts["cancelled"] += 1
        else:
            self._pending.append(d)


# -- apprise -----------------------------------------------------------------------------


class _Mute(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def _apprise_quiet() -> Iterator[None]:
    """Apprise logs a URL it cannot parse in full: keep that out of the logs. Its plugins load
    on the first URL, and one imports ``imghdr`` (deprecated on Python 3.11-3.12): keep that
    warning from failing a run with warnings as errors."""
    logger = logging.getLogger("apprise")
    mute = _Mute()
    logger.addFilter(mute)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="'imghdr' is deprecated", category=DeprecationWarning
            )
            yield
    finally:
        logger.removeFilter(mute)


def apprise_sender(urls: Sequence[str]) -> Send:
    """A :data:`Send` over one apprise object per URL; raises PushConfigError on a bad URL."""
    import apprise  # here, not at the top: loading apprise's plugins takes a moment

    kinds = {
        Priority.HIGH: apprise.NotifyType.FAILURE,
        Priority.MEDIUM: apprise.NotifyType.WARNING,
        Priority.LOW: apprise.NotifyType.INFO,
    }
    services = []
    for i, url in enumerate(urls):
        service = apprise.Apprise()
        with _apprise_quiet():
            added = service.add(url)
        if not added:
            raise PushConfigError(f"push.urls[{i}] ({redact(url)}): apprise cannot use this URL")
        services.append(service)

    def send(target: int, message: PushMessage) -> bool:
        result = services[target].notify(
            body=message.body, title=message.title, notify_type=kinds[message.priority]
        )
        return bool(result)

    return send


# -- the sink ----------------------------------------------------------------------------


class PushSink(SinkBase):
    """The station sink that pushes alarms to phones; ``tick`` and ``alarm_events`` never wait.

    ``send`` replaces apprise (tests); ``clock`` times the delivery back-off only: when to push
    comes from the station's time in ``tick``.
    """

    def __init__(
        self,
        source: ViewSource,
        config: PushConfig,
        station: str,
        *,
        send: Send | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        """The station whose read model says which alarms are listed."""
        self.config = config
        self.station = station
        urls = config.url_values() if config.enabled else []
        self.targets = [redact(url) for url in urls]
        self.schedule = PushSchedule(
            station,
            high_repeat_s=config.high_repeat_s,
            medium_after_s=config.medium_after_s,
            medium_repeat_s=config.medium_repeat_s,
        )
        self.outbox: Outbox | None = None
        if urls:
            self.outbox = Outbox(
                send if send is not None else apprise_sender(urls),
                self.targets,
                queue_size=config.queue_size,
                retry_first_s=config.retry_first_s,
                retry_max_s=config.retry_max_s,
                clock=clock,
            )
            log.info("station %s: pushing alarms to %s", station, ", ".join(self.targets))
        self.pushed = 0
        """Messages the schedule handed over (each goes to every target)."""

    @property
    def stats(self) -> PushStats:
        """Delivery counters."""
        return PushStats() if self.outbox is None else self.outbox.stats

    @property
    def problem(self) -> str | None:
        """Which targets are failing, for the station to show."""
        failing = [] if self.outbox is None else self.outbox.failing()
        if not failing:
            return None
        return "push failing to " + ", ".join(self.targets[i] for i in failing)

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """A raised or escalated high alarm is pushed now, not at the next tick."""
        if events and self.outbox is not None:
            view = self.source.view()
            self._check(self.outbox, max(view.t, events[-1].t), view.alarms)

    def tick(self, t: float) -> None:
        """Push whatever is due at ``t``."""
        if self.outbox is not None:  # no view built when nothing is pushed
            self._check(self.outbox, t, self.source.view().alarms)

    def _check(self, outbox: Outbox, t: float, alarms: Iterable[AlarmView]) -> None:
        messages, stopped = self.schedule.due(t, alarms)
        for alarm_id in stopped:
            outbox.cancel(alarm_id)
        for message in messages:
            self.pushed += 1
            outbox.put(message)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until no push waits (delivered, cancelled or dropped); False on timeout."""
        return True if self.outbox is None else self.outbox.flush(timeout)

    def close(self) -> None:
        """Stop the worker."""
        if self.outbox is not None:
            self.outbox.close()
