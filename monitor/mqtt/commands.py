"""Commands from the clinic hub on the station's ``cmd`` topic (SPEC section 9): validated,
applied to the station as user input, audited and answered on ``reply``. A bad command is
refused, counted, logged once, audited (up to a bound) and answered; nothing here raises."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from monitor.mqtt.protocol import (
    INPUT_OF,
    Acknowledge,
    CommandRefused,
    EndSession,
    Rejections,
    Silence,
    Topics,
    command_id,
    parse_command,
)
from monitor.store.database import now_iso
from monitor.store.writer import Writer

if TYPE_CHECKING:
    from monitor.core.station_view import StationView
    from monitor.core.trace import InputKind

log = logging.getLogger("monitor.mqtt.bridge")  # the bridge's log, as before the split

REPLY_BUFFER = 32
AUDIT_REFUSED_MAX = 100
"""Refused commands written to the audit log per source; later ones are only counted (a flood
of bad commands must not become a flood of disk writes)."""


class Commanded(Protocol):
    """What a command needs of the station it is attached to (a
    :class:`monitor.station.station.Station`; a protocol, so the arrow points from the
    station to the MQTT layer only): its read model, where to report a problem, and the
    user input a command is."""

    def view(self) -> StationView: ...

    @property
    def problems(self) -> dict[str, str]: ...

    def user_input(
        self, kind: InputKind, alarm: str | None = None, by: str | None = None
    ) -> None: ...


class Commands:
    """The station's inbound commands and the replies waiting to be published."""

    def __init__(
        self,
        topics: Topics,
        writer: Writer,
        wake: asyncio.Event,
        on_store_error: Callable[[Exception], None],
    ) -> None:
        self.topics = topics
        self.writer = writer
        self._wake = wake
        self._on_store_error = on_store_error
        self.replies: deque[dict[str, Any]] = deque(maxlen=REPLY_BUFFER)
        """Replies for the I/O task to publish on ``reply``."""
        self.rejections = Rejections()
        """Refused commands, per source (the hub: the only writer of ``cmd``) and topic."""

    def handle(self, station: Commanded | None, payload: bytes, *, retained: bool) -> None:
        """Validate and apply one command from the hub; a bad one is refused, logged,
        audited and answered, and never raises."""
        if not payload:  # how a retained message is deleted: nothing was asked
            return
        try:
            if retained:
                raise CommandRefused("retained command ignored (publish commands unretained)")
            command = parse_command(payload)
        except CommandRefused as exc:
            self._refused(station, payload, str(exc), retained)
            return
        if station is None:  # not attached (cannot happen while connected)
            return
        alarm = None if isinstance(command, EndSession) else command.alarm
        listed = alarm is None or station.view().alarm(alarm) is not None
        try:
            station.user_input(INPUT_OF[command.cmd], alarm, command.by)
        except Exception as exc:
            log.exception("MQTT command %s failed", command.cmd)
            self._audit(command.by, "mqtt command failed", {**_detail(command), "error": str(exc)})
            self._reply(command.id, command.cmd, f"failed: {exc}")
            return
        log.info("MQTT command %s%s by %s", command.cmd, f" {alarm}" if alarm else "", command.by)
        self._audit(command.by, "mqtt command", {**_detail(command), "listed": listed})
        note = None if listed else f"alarm {alarm} is not listed: nothing to do"
        self._reply(command.id, command.cmd, None, note)

    def _refused(
        self, station: Commanded | None, payload: bytes, reason: str, retained: bool
    ) -> None:
        """A bad command: counted, logged once, audited (up to a bound), answered; dropped."""
        source = "hub"  # the broker's ACL lets only the hub write a station's cmd topic
        what = "retained command" if retained else "command"
        if self.rejections.add(source, "cmd", reason):
            log.warning(
                "MQTT %s from the %s refused: %s (further ones are counted, not logged)",
                what,
                source,
                reason,
            )
        n = self.rejections.total
        if n <= AUDIT_REFUSED_MAX:
            excerpt = payload[:200].decode("utf-8", "replace")
            self._audit("mqtt", "mqtt command refused", {"reason": reason, "payload": excerpt})
        if station is not None:
            station.problems["mqtt commands"] = (
                f"{n} bad MQTT command{'s' if n != 1 else ''} refused "
                f"(last: {self.rejections.last[source]})"
            )
        self._reply(command_id(payload), None, reason)

    def _reply(
        self, cid: str | None, cmd: str | None, error: str | None, note: str | None = None
    ) -> None:
        reply: dict[str, Any] = {"id": cid, "cmd": cmd, "ok": error is None}
        if error is not None:
            reply["error"] = error
        if note is not None:
            reply["note"] = note
        reply |= {"station": self.topics.station, "at": now_iso()}
        self.replies.append(reply)
        self._wake.set()

    def _audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        entry = {**detail, "via": "mqtt"}
        self.writer.submit(
            lambda store: store.audit(actor, action, entry), None, self._on_store_error
        )


def _detail(command: Acknowledge | Silence | EndSession) -> dict[str, Any]:
    return command.model_dump(exclude={"by"})
