"""Whether the station's broker is reachable (SPEC section 7: ``link.lost`` on the station's
side): when it last acknowledged something, the link lost and back, the station problem that
says so. Called from the safety loop's tick: it never blocks and never raises out of a hook."""

from __future__ import annotations

import logging
from collections.abc import Callable

from monitor.settings import MqttConfig

log = logging.getLogger("monitor.mqtt.bridge")  # the bridge's log, as before the split

LinkHook = Callable[[bool, float], None]
"""``on_link_change(up, down_for_s)``: the broker link was lost (``up`` False, silent for
``down_for_s``) or is back (``up`` True, after ``down_for_s`` of silence)."""


class LinkWatch:
    """The broker link as the station sees it: connected, acknowledged, lost."""

    def __init__(
        self,
        config: MqttConfig,
        clock: Callable[[], float],
        on_link_change: LinkHook | None = None,
    ) -> None:
        self.config = config
        self.on_link_change = on_link_change
        self._clock = clock
        self.connected = False
        """Connected to the broker now."""
        self._started = clock()
        self._last_ok: float | None = None
        """When the broker last acknowledged something (CONNACK, PUBACK, SUBACK)."""
        self._lost_at: float | None = None
        self.last_error = "not connected yet"

    @property
    def link_lost(self) -> bool:
        """The broker has acknowledged nothing for ``link_lost_after_s`` after having been
        reachable."""
        return self._lost_at is not None

    def where(self) -> str:
        """The broker, for messages."""
        return f"{self.config.host}:{self.config.broker_port}"

    def ok(self) -> None:
        """The broker acknowledged something now."""
        self._last_ok = self._clock()

    def up(self) -> None:
        """A connection is established (CONNACK)."""
        self.ok()
        self.connected = True

    def went_down(self, exc: Exception) -> None:
        """A connection ended or could not be made."""
        self.last_error = str(exc) or type(exc).__name__
        if self.connected:
            log.warning("MQTT connection to %s lost: %s", self.where(), self.last_error)
        else:
            log.debug("MQTT connect to %s failed: %s", self.where(), self.last_error)
        self.connected = False

    def watch(self, problems: dict[str, str] | None) -> None:
        """Every tick: has the link been lost, or come back? ``problems``: the attached
        station's (None: not attached)."""
        now = self._clock()
        limit = self.config.link_lost_after_s
        if self._last_ok is None:  # never reached the broker: a problem, not a lost link
            if problems is not None and now - self._started >= limit:
                problems["mqtt"] = f"cannot reach the MQTT broker {self.where()}: {self.last_error}"
            return
        silent_s = now - self._last_ok
        if self._lost_at is None and silent_s >= limit:
            self._lost_at = self._last_ok
            log.warning("MQTT link lost: nothing from %s for %.1f s", self.where(), silent_s)
            if problems is not None:
                why = "" if self.connected else f" ({self.last_error})"
                problems["mqtt"] = (
                    f"no answer from the MQTT broker {self.where()} for {silent_s:.0f} s{why}"
                )
            self._tell(False, silent_s)
        elif self._lost_at is not None and silent_s < limit:
            down_s = self._last_ok - self._lost_at
            self._lost_at = None
            log.info("MQTT link back after %.1f s", down_s)
            if problems is not None:
                problems.pop("mqtt", None)
            self._tell(True, down_s)
        elif self._lost_at is None and problems is not None:
            problems.pop("mqtt", None)

    def _tell(self, up: bool, down_for_s: float) -> None:
        if self.on_link_change is None:
            return
        try:
            self.on_link_change(up, down_for_s)
        except Exception:  # the bridge must never take the safety loop down; loud, though
            log.exception("on_link_change(%s, %.1f) failed", up, down_for_s)
