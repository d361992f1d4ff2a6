"""The station as a systemd service: a tiny sd_notify client and the watchdog heartbeat.

With ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``, a datagram socket that takes one
message per datagram, newline-separated ``KEY=value`` lines (``READY=1``, ``STATUS=...``,
``WATCHDOG=1``, ``STOPPING=1``); a leading ``@`` names an abstract socket. With
``WatchdogSec=`` it also passes ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) and kills the service
when no ``WATCHDOG=1`` arrives for that long. The pings come from the safety loop's own
heartbeat (:meth:`ServiceNotifier.tick`), so an engine that hangs stops them and systemd
restarts it.

Nothing here may stall or break the safety loop: each message is one non-blocking datagram,
and a failure to send is logged once and dropped. Without ``$NOTIFY_SOCKET`` all is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from monitor.core.alarms import AlarmEvent
from monitor.core.sink import Host, SinkBase
from monitor.core.station_view import StationView
from monitor.store.writer import STORE_LAG
from monitor.supervise import cancel_and_wait

log = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0
_SLACK_S = 1e-6
"""Float slack when comparing ping times, so 0.1 s ticks land on a 1.0 s cadence."""


def socket_address(notify_socket: str) -> str:
    """The ``sendto`` address for a ``$NOTIFY_SOCKET`` value: an absolute path, or ``@name``
    for the abstract socket ``\\0name``."""
    if notify_socket.startswith("@") and len(notify_socket) > 1:
        return "\0" + notify_socket[1:]
    if notify_socket.startswith("/"):
        return notify_socket
    raise ValueError(f"NOTIFY_SOCKET={notify_socket!r}: expected an absolute path or @name")


def watchdog_interval_s(env: Mapping[str, str], pid: int) -> float | None:
    """The watchdog interval in seconds if systemd's watchdog is on for process ``pid``, else
    None; sd_watchdog_enabled's rules. A malformed value raises ValueError naming the key."""
    usec_text = env.get("WATCHDOG_USEC")
    if not usec_text:
        return None
    try:
        usec = int(usec_text)
    except ValueError:
        raise ValueError(f"WATCHDOG_USEC={usec_text!r}: not an integer") from None
    if usec <= 0:
        raise ValueError(f"WATCHDOG_USEC={usec_text!r}: must be positive")
    pid_text = env.get("WATCHDOG_PID")
    if pid_text:
        try:
            watched = int(pid_text)
        except ValueError:
            raise ValueError(f"WATCHDOG_PID={pid_text!r}: not a process id") from None
        if watched <= 0:
            raise ValueError(f"WATCHDOG_PID={pid_text!r}: not a process id")
        if watched != pid:
            return None  # the watchdog is another process's (we were started by it)
    return usec / 1_000_000


def status_text(view: StationView) -> str:
    """One line for ``systemctl status``: the phase, each link state's sensors, failing parts
    of the station (the store), the alarms.

    E.g. ``inverted; streaming: tilt, hr; alarms: 1 high``; a store falling behind says by
    how much (``store falling behind: 2.3 s``).
    """
    parts = [view.phase.value]
    by_status: dict[str, list[str]] = {}
    for link in view.links:
        by_status.setdefault(link.status, []).append(link.name)
    parts += [f"{status}: {', '.join(names)}" for status, names in by_status.items()]
    parts += [
        text if part == STORE_LAG else f"{part} failing" for part, text in view.problems.items()
    ]
    counts = Counter(alarm.priority for alarm in view.alarms)
    if counts:
        listed = (f"{counts[p]} {p.label}" for p in sorted(counts, reverse=True))
        parts.append("alarms: " + ", ".join(listed))
    else:
        parts.append("no alarms")
    return "; ".join(parts)


class ServiceNotifier(SinkBase):
    """Tells systemd how the station is; a sink the station ticks.

    ``env`` (default ``os.environ``) and ``pid`` (default this process) are read once, here.
    ``clock`` is a monotonic clock in seconds: the watchdog counts real time, not station time
    (a simulation may run the station clock faster).
    """

    at_once = True
    """Local to the station (systemd): ticked at once, never held behind the disk."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        pid: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if env is None else env
        self._clock = clock
        self._address: str | None = None
        self.watchdog_s: float | None = None
        """systemd's watchdog interval (``WATCHDOG_USEC``), None when off."""
        raw = env.get("NOTIFY_SOCKET")
        if raw:
            try:
                self._address = socket_address(raw)
            except ValueError as exc:
                log.warning("not notifying systemd: %s", exc)
        if self._address is not None:
            try:
                self.watchdog_s = watchdog_interval_s(env, os.getpid() if pid is None else pid)
            except ValueError as exc:
                log.warning("systemd watchdog not pinged: %s", exc)
        self.ping_every_s = None if self.watchdog_s is None else self.watchdog_s / 2
        """Half the watchdog interval: one missed ping is not yet a restart."""
        self._last_ping = -math.inf
        self._last_status: str | None = None
        self._failing = False
        self._beating = asyncio.Event()

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening (``$NOTIFY_SOCKET`` was set and usable)."""
        return self._address is not None

    # -- what the daemon says ------------------------------------------------------------

    def ready(self, status: str | None = None) -> None:
        """``READY=1``: sensors' links are started and the sinks are up."""
        self._send("READY=1", *self._status_fields(status))

    def status(self, text: str) -> None:
        """``STATUS=text`` for humans (``systemctl status``); sent only when it changed."""
        if text != self._last_status:
            self._send(*self._status_fields(text))

    def stopping(self, status: str | None = None) -> None:
        """``STOPPING=1``: the station is shutting down on purpose."""
        self._send("STOPPING=1", *self._status_fields(status))

    # -- the sink side -------------------------------------------------------------------

    def tick(self, t: float) -> None:
        """The safety loop just stepped (station time ``t``): ping the watchdog when due."""
        self._beating.set()
        if self.ping_every_s is None:
            return
        now = self._clock()
        if now - self._last_ping >= self.ping_every_s - _SLACK_S:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Alarm events are not systemd's business; :func:`status_text` counts alarms."""

    async def attend(
        self, station: Host, stop: asyncio.Event, every_s: float = STATUS_EVERY_S
    ) -> None:
        """Beside a running station (an ``attach`` for ``run_daemon``): join its sinks if not
        there yet, send ``READY=1`` once its safety loop has beaten, :func:`status_text` every
        ``every_s`` when it changed, and ``STOPPING=1`` when ``stop`` is set."""
        if self not in station.sinks:
            station.sinks.append(self)
        beating = asyncio.create_task(self._beating.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([beating, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(beating, stopping)
        if not stop.is_set():
            self.ready(status_text(station.view()))
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=every_s)
                except TimeoutError:
                    self.status(status_text(station.view()))
        self.stopping("stopping")

    # -- the wire ------------------------------------------------------------------------

    def _status_fields(self, text: str | None) -> list[str]:
        if text is None:
            return []
        self._last_status = text
        return ["STATUS=" + " ".join(text.splitlines())]

    def _send(self, *fields: str) -> None:
        if self._address is None or not fields:
            return
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # a full queue drops the message; never wait
                sock.sendto(message, self._address)
        except OSError as exc:
            if not self._failing:
                self._failing = True
                log.warning(
                    "cannot notify systemd at %s: %s (further failures not logged)",
                    self._address.replace("\0", "@"),
                    exc,
                )
            return
        if self._failing:
            self._failing = False
            log.info("notifying systemd again")
