"""The hub's escalation of alarms to the supervising therapists: each round takes in what
other replicas did (from the shared store), lets the pure :class:`Escalation` say what is due,
and claims each step in the store before carrying it out, so one replica sends each notice.
The notices go out as push messages (apprise), each a task of its own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from dashboard.clinic.core import Escalation, Notice
from dashboard.clinic.pg import StoreUnavailable
from dashboard.clinic.settings import EscalationSection
from dashboard.clinic.store import Claim, HubStore
from monitor.core.alarms import Priority
from monitor.store.database import StoreError

log = logging.getLogger(__name__)
ESCALATE_EVERY_S = 0.25


class Escalator:
    """One replica's share of the clinic's escalations (its steps claimed in ``store``)."""

    def __init__(
        self,
        store: HubStore,
        settings: EscalationSection,
        replica: str,
        public_url: str | None,
        clock: tuple[Callable[[], float], Callable[[], list[dict[str, Any]]]],
        store_down: Callable[[StoreUnavailable], None],
    ) -> None:
        """``clock``: the hub's clock and its merged alarm list (what may be escalated);
        ``store_down``: how the hub shows that the database is unreachable."""
        self.store = store
        self.replica = replica
        """Who this hub is when claiming escalation steps in a shared store."""
        self.public_url = public_url
        self.escalation = Escalation(
            settings.accept_within_s, settings.repeat_s, settings.medium_after_s
        )
        self._now, self._alarms = clock
        self._store_down = store_down
        self._pending: dict[tuple[str, str, str], Notice] = {}
        """Escalation steps due here that another replica claimed: tried again each round
        until done (the claimant may die before it sends)."""
        self.sending: set[asyncio.Task[None]] = set()
        """Notices being sent."""

    def reject(self, t: float, station: str, alarm: str, person: str) -> Notice | None:
        """``person`` cannot take it: the notice handing it on, if any."""
        people = [p["name"] for p in self.store.escalation_list()]
        return self.escalation.reject(t, station, alarm, person, people)

    def accept(self, station: str, alarm: str, person: str) -> bool:
        """``person`` takes the alarm: every replica stops escalating it. False if there is
        nothing (left) to accept."""
        if not self.escalation.accept(station, alarm, person):
            return False
        self.store.accept_chase(station, alarm, person)
        return True

    async def hand_on(self, notice: Notice) -> None:
        """Send a hand-on (after a rejection) if this replica wins the step, and wait."""
        task = self.claim_and_send(notice)
        if task is not None:
            await task

    async def run(self, stop: asyncio.Event) -> None:
        """A round every ``ESCALATE_EVERY_S`` until ``stop`` (a supervised task of the hub);
        a round the database cannot serve is shown and done again next time."""
        while not stop.is_set():
            try:
                await self.round(self._now())
            except StoreUnavailable as exc:  # shown; the round is done again when it is back
                self._store_down(exc)
            await asyncio.sleep(ESCALATE_EVERY_S)

    async def round(self, t: float) -> None:
        """One round: take in what other replicas did (from the store), let the core say
        what is due, and carry out each step this replica wins in the store: whoever wins a
        step sends and records it; the others keep it pending and try again each round, so a
        replica dying mid-send is taken over once its claim lapses (``CLAIM_LEASE_S``)."""
        names = [p["name"] for p in self.store.escalation_list()]
        for (station, alarm), (handed_to, accepted_by) in self.store.open_chases().items():
            self.escalation.adopt(t, station, alarm, handed_to, accepted_by, names)
        before = set(self.escalation.chases)
        notices, steps = self.escalation.due(t, self._alarms(), names)
        # Ended here (acknowledged, resolved, or accepted and over): closed in the store once,
        # so the alarm's next raise is a new escalation on every replica.
        closed = {
            key for key in before - set(self.escalation.chases) if self.store.close_chase(*key)
        }
        for station, alarm, step in steps:
            person, _, what = step.partition(":")
            if what in ("sent", "repeated"):
                continue  # recorded by the replica that sends it
            if what.startswith("ended"):
                if (station, alarm) in closed:
                    self.store.escalation_step(station, alarm, "", person, what)
                continue
            if self.store.claim_step(station, alarm, step, self.replica) is Claim.MINE:
                self.store.escalation_step(station, alarm, "", person, what)
                self.store.step_done(station, alarm, step)
        for notice in notices:
            self._pending[(notice.station, notice.alarm, notice.step)] = notice
        for key, notice in list(self._pending.items()):
            if (notice.station, notice.alarm) not in self.escalation.chases:
                del self._pending[key]  # ended meanwhile
            else:
                self.claim_and_send(notice)

    def claim_and_send(self, notice: Notice) -> asyncio.Task[None] | None:
        """Claim ``notice``'s step in the store; if this replica wins, send it (a task)."""
        key = (notice.station, notice.alarm, notice.step)
        handed_to = None if notice.repeat else notice.person
        claim = self.store.claim_step(
            notice.station, notice.alarm, notice.step, self.replica, handed_to
        )
        if claim is Claim.TAKEN:
            self._pending[key] = notice  # another replica has it: watch that it is done
            return None
        self._pending.pop(key, None)
        if claim is Claim.ACCEPTED:
            chase = self.escalation.chases.get((notice.station, notice.alarm))
            if chase is not None and chase.accepted_by is None:
                self.escalation.accept(notice.station, notice.alarm, "(another replica)")
            return None
        if claim is Claim.DONE:
            return None
        self.store.escalation_step(
            notice.station, notice.alarm, "", notice.person, "repeated" if notice.repeat else "sent"
        )
        url = next(
            (p["push_url"] for p in self.store.escalation_list() if p["name"] == notice.person),
            None,
        )
        task = asyncio.create_task(self._send_notice(notice, url))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)
        return task

    async def _send_notice(self, notice: Notice, url: str | None) -> None:
        if url is None:
            return
        from monitor.settings import redact
        from monitor.sinks.push import PushConfigError, PushMessage, apprise_sender

        where = self.public_url or ""
        message = PushMessage(
            0.0,
            notice.alarm,
            Priority.parse(notice.priority),
            f"Spotter {notice.station}: {notice.priority.upper()} alarm",
            f"{notice.priority.upper()} · {notice.station} · {notice.message}"
            + (f" · accept at {where}" if where else ""),
            int(notice.repeat),
        )
        try:
            ok = await asyncio.to_thread(apprise_sender([url]), 0, message)
        except PushConfigError as exc:
            ok = False
            log.warning("escalation to %s: %s", notice.person, exc)
        step = "delivered" if ok else f"delivery failed ({redact(url)})"
        try:
            self.store.escalation_step(
                notice.station, notice.alarm, notice.priority, notice.person, step
            )
            if notice.step:
                self.store.step_done(notice.station, notice.alarm, notice.step)
        except StoreError as exc:
            log.error("hub store failing: %s", exc)
