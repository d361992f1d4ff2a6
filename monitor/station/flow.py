"""The session flow (SPEC section 6): screening, clearance, checklist, progression, pain.

Pure decisions (``screen``, ``may_start``, ``plan_for``) and a thin ``SessionFlow`` that reads
the store and writes it (through the station's writer, off the event loop) and audits every
decision. The dashboard uses the same API; the CLI's
``spotter user`` / ``spotter session`` / ``spotter history`` commands are a front to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from monitor.core.profiles import Profile, profile_from_text, stored_key
from monitor.core.screening import CHECKLIST, CONTRAINDICATIONS
from monitor.settings import resolve_profile
from monitor.store.database import StoreError
from monitor.store.station_store import Store
from monitor.store.writer import InlineWriter, Writer

ROLES = ("user", "clinician", "owner")


@dataclass(frozen=True)
class Step:
    """One rung of the progression ladder."""

    angle_deg: float
    hold_s: float
    session_s: float


LADDER: tuple[Step, ...] = (
    Step(25, 60, 120),  # first sessions: 20-30° for 1-2 minutes
    Step(30, 60, 180),
    Step(35, 90, 240),
    Step(45, 90, 300),
    Step(60, 120, 450),
    Step(60, 120, 600),
)
RAISE_AFTER = timedelta(days=7)
"""Limits are raised at most one step a week."""
SESSIONS_BEFORE_RAISE = 3
DAYS_PER_WEEK = (3, 4)
MILESTONES = (
    (1, "first session: relief often starts here"),
    (4, "4-6 sessions: pain usually eases"),
    (10, "about 10 sessions: results stabilise"),
)


class FlowError(ValueError):
    """A request the session flow refuses; the message says why."""


@dataclass(frozen=True)
class Decision:
    """Whether a session may start, and why not."""

    allowed: bool
    reasons: tuple[str, ...] = ()


def screen(answers: Mapping[str, bool]) -> list[str]:
    """The contraindications a complete set of screening answers flags."""
    unknown = set(answers) - set(CONTRAINDICATIONS)
    if unknown:
        raise FlowError(f"unknown screening question(s): {', '.join(sorted(unknown))}")
    missing = set(CONTRAINDICATIONS) - set(answers)
    if missing:
        raise FlowError(f"unanswered screening question(s): {', '.join(sorted(missing))}")
    return sorted(k for k, v in answers.items() if v)


def may_start(
    screening: Mapping[str, Any] | None,
    clearances: Sequence[Mapping[str, Any]],
    checklist: Mapping[str, bool],
    profile: Profile,
) -> Decision:
    """Screening against the contraindications (unless cleared), and the checklist."""
    reasons: list[str] = []
    if screening is None:
        reasons.append("not screened: answer the screening questions first")
    else:
        cleared: set[str] = set()
        for clearance in clearances:
            cleared |= set(clearance["conditions"])
        blocked = [c for c in screening["contraindications"] if c not in cleared]
        if blocked:
            names = ", ".join(CONTRAINDICATIONS[c] for c in blocked)
            reasons.append(f"contraindicated ({names}): a clinician's clearance is needed")
    unknown = set(checklist) - set(CHECKLIST)
    if unknown:
        raise FlowError(f"unknown checklist item(s): {', '.join(sorted(unknown))}")
    if not checklist.get("ankle_clamps_locked"):
        reasons.append("lock the ankle clamps")
    if not checklist.get("warm_up_done"):
        reasons.append("warm up first")
    if profile.spotter_required and not checklist.get("spotter_present"):
        reasons.append(f"the {profile.name} profile needs a spotter present")
    return Decision(not reasons, tuple(reasons))


@dataclass(frozen=True)
class Plan:
    """Today's target, what is proposed, and how the user is doing."""

    step: int
    target: Step
    proposal: str | None
    days_this_week: int
    sessions: int
    milestones: tuple[str, ...]
    pain_change: float | None
    """Mean (after - before) over sessions with both scores; negative is better."""
    notes: tuple[str, ...] = field(default_factory=tuple)


def plan_for(
    step: int,
    changed_at: datetime | None,
    sessions: Sequence[Mapping[str, Any]],
    profile: Profile,
    now: datetime,
) -> Plan:
    """The progression plan: start at 20-30° for 1-2 minutes, propose the next step at most
    once a week, after enough calm sessions and no worse pain; never above the profile."""
    step = max(0, min(step, len(LADDER) - 1))
    rung = LADDER[step]
    target = Step(
        min(rung.angle_deg, profile.max_angle_deg),
        min(rung.hold_s, profile.max_hold_s),
        min(rung.session_s, profile.max_session_inverted_s),
    )
    week_ago = now - timedelta(days=7)
    recent = [s for s in sessions if datetime.fromisoformat(s["started_at"]) >= week_ago]
    days: set[date] = {datetime.fromisoformat(s["started_at"]).date() for s in recent}
    since_change = [
        s
        for s in sessions
        if changed_at is None or datetime.fromisoformat(s["started_at"]) >= changed_at
    ]
    calm = [s for s in since_change if not s.get("alarms_raised")]
    scored = [
        s for s in sessions if s.get("pain_before") is not None and s.get("pain_after") is not None
    ]
    pain = sum(s["pain_after"] - s["pain_before"] for s in scored) / len(scored) if scored else None
    notes: list[str] = []
    proposal = None
    if step + 1 < len(LADDER):
        nxt = LADDER[step + 1]
        waited = changed_at is None or now - changed_at >= RAISE_AFTER
        if not waited:
            assert changed_at is not None
            notes.append(f"next step possible from {(changed_at + RAISE_AFTER).date()}")
        elif len(calm) < SESSIONS_BEFORE_RAISE:
            notes.append(f"{SESSIONS_BEFORE_RAISE - len(calm)} more calm session(s) before a raise")
        elif pain is not None and pain > 0:
            notes.append("pain is worse after sessions: stay at this step, see a clinician")
        else:
            proposal = (
                f"raise to step {step + 2}: {nxt.angle_deg:.0f}°, holds of {nxt.hold_s:.0f} s, "
                f"{nxt.session_s:.0f} s per session"
            )
    low, high = DAYS_PER_WEEK
    if len(days) > high:
        notes.append(f"{len(days)} days this week: {low}-{high} is enough, rest days help")
    count = len(sessions)
    reached = tuple(text for n, text in MILESTONES if count >= n)
    return Plan(step, target, proposal, len(days), count, reached, pain, tuple(notes))


class SessionFlow:
    """Users, screening, clearances, checklist and progression over a store, audited.

    Reads use the caller's connection (WAL: a read never waits on the writer); every write
    goes through ``writer`` as one job (its rows and its audit line commit together), so on a
    running station the dashboard's requests wait on the disk but the safety loop does not.
    Commands with no station running get an :class:`InlineWriter` (the default)."""

    def __init__(self, store: Store, station: str, writer: Writer | None = None) -> None:
        self.store = store
        self.station = station
        self.writer: Writer = writer if writer is not None else InlineWriter(store)

    def profile(self, name: str) -> Profile:
        """A built-in or stored profile by name (a path only from the local command line)."""
        stored = self.store.setting(self.station, stored_key(name))
        return resolve_profile(name, stored if isinstance(stored, str) else None)

    def stored_profiles(self) -> list[str]:
        """The names of the profiles stored at this station."""
        names = self.store.setting(self.station, "profiles")
        return list(names) if isinstance(names, list) else []

    async def store_profile(self, name: str, text: str, by: str) -> Profile:
        """Validate a profile's TOML text and keep it under ``name`` (replacing one of that
        name); audited. Raises ProfileError naming the key at fault."""
        profile = profile_from_text(text, name)
        station = self.station

        def job(store: Store) -> None:
            store.set_setting(station, stored_key(name), text)
            names = store.setting(station, "profiles")
            names = list(names) if isinstance(names, list) else []
            if name not in names:
                store.set_setting(station, "profiles", sorted([*names, name]))
            store.audit(by, "profile stored", {"name": name})

        await self.writer.run(job)
        return profile

    def _user(self, name: str) -> dict[str, Any]:
        user = self.store.user(name)
        if user is None:
            raise FlowError(f"no user named {name!r} (spotter user add {name})")
        return user

    async def add_user(
        self,
        name: str,
        *,
        role: str = "user",
        profile: str = "beginner",
        age: float | None = None,
        by: str = "owner",
    ) -> int:
        """A new user with a profile (a built-in name or a profile file)."""
        if role not in ROLES:
            raise FlowError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.profile(profile)  # refuse an unknown profile now, not at the first session
        detail = {"user": name, "role": role, "profile": profile, "age": age}

        def job(store: Store) -> int | str:
            try:
                user_id = store.add_user(name, role, profile, age)
            except StoreError as exc:  # the name is taken: the caller's mistake, not the disk's
                return str(exc)
            store.audit(by, "user added", detail)
            return user_id

        added = await self.writer.run(job)
        if isinstance(added, str):
            raise FlowError(added)
        return added

    async def record_screening(self, name: str, answers: Mapping[str, bool], by: str) -> list[str]:
        """Store a user's screening answers; returns the contraindications found."""
        user = self._user(name)
        flagged = screen(answers)
        detail = {"user": name, "contraindications": flagged}

        def job(store: Store) -> None:
            store.add_screening(user["id"], dict(answers), flagged)
            store.audit(by, "screening recorded", detail)

        await self.writer.run(job)
        return flagged

    async def record_clearance(
        self, name: str, clinician: str, conditions: Sequence[str], note: str = ""
    ) -> None:
        """A clinician clears the user despite the named contraindications."""
        user = self._user(name)
        unknown = set(conditions) - set(CONTRAINDICATIONS)
        if unknown:
            raise FlowError(f"unknown condition(s): {', '.join(sorted(unknown))}")
        if not conditions:
            raise FlowError("a clearance names the condition(s) it covers")
        detail = {"user": name, "conditions": sorted(conditions), "note": note}

        def job(store: Store) -> None:
            store.add_clearance(user["id"], clinician, list(conditions), note)
            store.audit(clinician, "clearance recorded", detail)

        await self.writer.run(job)

    async def prepare(
        self, name: str, checklist: Mapping[str, bool], pain_before: int | None, by: str
    ) -> Decision:
        """Decide whether ``name`` may start now; if so, the next session at this station is
        theirs (with the checklist and the pain score). Every decision is audited."""
        user = self._user(name)
        if pain_before is not None and not 0 <= pain_before <= 10:
            raise FlowError(f"pain score {pain_before} outside 0-10")
        profile = self.profile(user["profile"])
        decision = may_start(
            self.store.last_screening(user["id"]),
            self.store.clearances(user["id"]),
            checklist,
            profile,
        )
        detail = {"user": name, "checklist": dict(checklist), "reasons": list(decision.reasons)}
        station = self.station

        def job(store: Store) -> None:
            if decision.allowed:
                store.prepare(station, user["id"], user["profile"], dict(checklist), pain_before)
                store.audit(by, "session start allowed", detail)
            else:
                store.audit(by, "session start blocked", detail)

        await self.writer.run(job)
        return decision

    async def claim(
        self,
        name: str,
        session_id: int,
        checklist: Mapping[str, bool],
        pain_before: int | None,
        by: str,
    ) -> Decision:
        """Decide as :meth:`prepare` does; if allowed, the running session ``session_id``
        (which started on its own) becomes ``name``'s, with the checklist and the pain score.
        Every decision is audited."""
        user = self._user(name)
        if pain_before is not None and not 0 <= pain_before <= 10:
            raise FlowError(f"pain score {pain_before} outside 0-10")
        decision = may_start(
            self.store.last_screening(user["id"]),
            self.store.clearances(user["id"]),
            checklist,
            self.profile(user["profile"]),
        )
        detail = {
            "user": name,
            "session": session_id,
            "checklist": dict(checklist),
            "reasons": list(decision.reasons),
        }

        def job(store: Store) -> None:
            if decision.allowed:
                store.claim_session(session_id, user["id"], dict(checklist), pain_before)
                store.audit(by, "running session claimed", detail)
            else:
                store.audit(by, "session start blocked", detail)

        await self.writer.run(job)
        return decision

    async def pain_after(self, pain: int, session_id: int | None = None, by: str = "user") -> int:
        """Log the pain score after a session (the station's latest, unless given)."""
        if session_id is None:
            rows = self.store.sessions(where="s.station = ?", args=(self.station,), limit=1)
            if not rows:
                raise FlowError("no session to score yet")
            session_id = int(rows[0]["id"])
        scored = session_id

        def job(store: Store) -> None:
            store.set_pain(scored, after=pain)
            store.audit(by, "pain after recorded", {"session": scored, "pain": pain})

        await self.writer.run(job)
        return session_id

    def plan(self, name: str, now: datetime | None = None) -> Plan:
        """The user's progression plan today."""
        user = self._user(name)
        step, changed = self.store.plan_step(user["id"])
        sessions = self.store.sessions(where="s.user_id = ?", args=(user["id"],))
        return plan_for(
            step,
            None if changed is None else datetime.fromisoformat(changed),
            sessions,
            self.profile(user["profile"]),
            now or datetime.now().astimezone(),
        )

    async def raise_step(self, name: str, by: str, now: datetime | None = None) -> Plan:
        """Accept the plan's proposal: one step up (refused if the plan proposes none)."""
        plan = self.plan(name, now)
        if plan.proposal is None:
            why = "; ".join(plan.notes) or "already at the top step"
            raise FlowError(f"no raise proposed for {name}: {why}")
        user = self._user(name)
        step = plan.step + 1

        def job(store: Store) -> None:
            store.set_plan_step(user["id"], step, by)
            store.audit(by, "plan step raised", {"user": name, "step": step})

        await self.writer.run(job)
        return self.plan(name, now)
