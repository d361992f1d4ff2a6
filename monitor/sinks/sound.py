"""The alarm sound at the station (SPEC section 7, after IEC 60601-1-8).

Pure core: :class:`SoundPlanner` decides, at each tick of the safety loop, which tone burst or
spoken prompt should start now, from the alarms the station's read model lists as sounding
(:meth:`~monitor.core.station_view.StationView.sounding`, as ``AlarmManager.sounding``) and the
inversion timer. It obeys acknowledge and silence exactly as the manager does, because it
only ever looks at ``sounding(t)``: an acknowledged alarm is quiet until it sounds again
120 s later, a silenced one until its silence ends, and a new alarm breaks through.

Shell: :class:`SoundSink`, the station sink; the tones, speech and players are in
:mod:`monitor.sinks.audio` (pulse timings documented there).

High-priority bursts cannot be configured away: ``enabled = false`` silences medium and low
bursts and the prompts only, and high bursts play at ``max(volume, min_high_volume)`` where
``min_high_volume`` may not be set below :data:`HIGH_VOLUME_FLOOR`.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.core.alarms import AlarmEvent, EventKind, Priority
from monitor.core.sink import SinkBase
from monitor.core.station_view import AlarmView, ViewSource
from monitor.settings import SoundConfig
from monitor.sinks.audio import (
    SHAPES,
    AplayOutput,
    Clip,
    SoundOutput,
    Speaker,
    SpeechError,
    WavTimeline,
    espeak_ng,
    render_burst,
)

log = logging.getLogger(__name__)

EPS_S = 1e-6


# -- configuration -----------------------------------------------------------------------


# -- prompts -----------------------------------------------------------------------------


class Phrase(enum.StrEnum):
    """What the station says: short, calm, one instruction or one fact."""

    COME_UP = "Come up slowly."
    FIFTEEN_LEFT = "Fifteen seconds left."
    TILT_LOST = "Tilt sensor lost."
    HR_LOST = "Heart-rate strap lost."


PHRASE_OF: dict[str, Phrase] = {
    "motion.too_fast": Phrase.COME_UP,
    "inversion.hold_limit": Phrase.COME_UP,
    "session.total_limit": Phrase.COME_UP,
    "user.symptom": Phrase.COME_UP,
    "inversion.not_returning": Phrase.COME_UP,
    "tilt.signal_lost": Phrase.TILT_LOST,
    "hr.signal_lost": Phrase.HR_LOST,
}
"""The prompt spoken when one of these alarms is raised (and sounds)."""
LEFT_WARNING_S = 15.0
"""``Fifteen seconds left`` is said this long before ``max_hold_s``, once per inversion."""
PROMPT_GAP_S = 10.0
"""The same phrase is not repeated within this time (motion.too_fast can come and go)."""


# -- planning (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Burst:
    """Start a tone burst of ``priority`` (the most urgent sounding alarm is ``alarm_id``)."""

    t: float
    priority: Priority
    alarm_id: str


@dataclass(frozen=True, slots=True)
class Speak:
    """Say ``phrase``."""

    t: float
    phrase: Phrase
    alarm_id: str | None


@dataclass(frozen=True, slots=True)
class Hush:
    """Nothing sounds any more (acknowledged, silenced or resolved): stop what is playing."""

    t: float


Cue = Burst | Speak | Hush


class SoundPlanner:
    """What the station should start sounding at each tick; time arrives with every call.

    Bursts: the most urgent sounding alarm's burst starts at once when an alarm starts
    sounding (raised, escalated, sounding again after an acknowledge or a silence) and then
    repeats at its priority's interval. Prompts: the phrase of a raised alarm that sounds, and
    ``Fifteen seconds left`` once per inversion. ``high_only`` keeps only high alarms (sound
    disabled); ``voice`` False drops the prompts.
    """

    def __init__(self, *, voice: bool = True, high_only: bool = False) -> None:
        self.voice = voice
        self.high_only = high_only
        self._next_burst = -math.inf
        self._top: Priority | None = None
        self._was_sounding: set[str] = set()
        self._raised: list[str] = []
        self._said_at: dict[Phrase, float] = {}
        self._warned_inversion: float | None = None

    def note(self, events: Iterable[AlarmEvent]) -> None:
        """Remember raised alarms that have a prompt; it is said at the next :meth:`plan`."""
        self._raised += [e.id for e in events if e.event is EventKind.RAISED and e.id in PHRASE_OF]

    def plan(
        self,
        t: float,
        sounding: Sequence[AlarmView],
        inversion_started_at: float | None = None,
        max_hold_s: float = math.inf,
    ) -> list[Cue]:
        """The cues to start at ``t``; ``sounding`` is ``StationView.sounding(t)``."""
        if self.high_only:
            sounding = [a for a in sounding if a.priority is Priority.HIGH]
        cues: list[Cue] = []
        ids = {a.id for a in sounding}
        if sounding:
            top = min(sounding, key=lambda a: (-a.priority, a.raised_at))
            fresh = any(
                a.id not in self._was_sounding and a.priority >= top.priority for a in sounding
            )
            if (
                fresh
                or self._top is None
                or top.priority > self._top
                or t >= self._next_burst - EPS_S
            ):
                cues.append(Burst(t, top.priority, top.id))
                self._next_burst = t + SHAPES[top.priority].every_s
            self._top = top.priority
        elif self._was_sounding:
            cues.append(Hush(t))
            self._top = None
        self._was_sounding = ids
        raised, self._raised = self._raised, []
        if not self.voice:
            return cues
        for alarm_id in raised:
            if alarm_id in ids:
                self._say(t, PHRASE_OF[alarm_id], alarm_id, cues)
        start = inversion_started_at
        if start is not None and start != self._warned_inversion and max_hold_s > LEFT_WARNING_S:
            hold_s = t - start
            if max_hold_s - LEFT_WARNING_S - EPS_S <= hold_s < max_hold_s:
                self._warned_inversion = start
                self._say(t, Phrase.FIFTEEN_LEFT, None, cues)
        return cues

    def _say(self, t: float, phrase: Phrase, alarm_id: str | None, cues: list[Cue]) -> None:
        if t - self._said_at.get(phrase, -math.inf) >= PROMPT_GAP_S - EPS_S:
            self._said_at[phrase] = t
            cues.append(Speak(t, phrase, alarm_id))


# -- the sink ----------------------------------------------------------------------------


class SoundSink(SinkBase):
    """The station's alarm sound: a :class:`SoundPlanner` driving a :class:`SoundOutput`.

    ``tick`` (after every core step) plans and hands clips to the output, which never blocks.
    Bursts and prompts are synthesised once, here, before the safety loop starts. Problems
    (no audio device, no espeak-ng) are in :attr:`problem` for status views and are logged
    once at WARNING when they appear.
    """

    at_once = True
    """The station's own sound: acts on an alarm at once, never waits for the disk."""

    def __init__(
        self,
        source: ViewSource,
        config: SoundConfig,
        station: str,
        *,
        output: SoundOutput | None = None,
        speaker: Speaker | None = espeak_ng,
    ) -> None:
        self.source = source
        """The station whose read model the sound follows."""
        self.config = config
        self.station = station
        voice = config.voice and config.enabled
        self.planner = SoundPlanner(voice=voice, high_only=not config.enabled)
        self.bursts = {
            p: Clip(f"burst.{p.label}", render_burst(p, config.volume_of(p)), p is Priority.HIGH)
            for p in Priority
        }
        self.prompts: dict[Phrase, Clip] = {}
        self.voice_problem: str | None = None
        if voice:
            self._render_prompts(speaker)
        self.output: SoundOutput = output if output is not None else default_output(config)
        self.recent: deque[Cue] = deque(maxlen=32)
        self.prompts_skipped = 0
        self._reported: str | None = None
        self._report()

    def _render_prompts(self, speaker: Speaker | None) -> None:
        if speaker is None:
            self.voice_problem = "spoken prompts off: no speech synthesiser"
            return
        for phrase in Phrase:
            try:
                samples = speaker(phrase.value)
            except SpeechError as exc:
                self.voice_problem = f"spoken prompts off: {exc}"
                return
            scaled = np.round(samples.astype(np.float64) * self.config.volume)
            self.prompts[phrase] = Clip(f"prompt.{phrase.name.lower()}", scaled.astype(np.int16))

    @property
    def problem(self) -> str | None:
        """What the station should show about its sound, or None when all is well."""
        problems = [p for p in (self.output.problem, self.voice_problem) if p]
        return "; ".join(problems) or None

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        """Note raised alarms for their prompts; the sound itself follows at the next tick."""
        self.planner.note(events)

    def tick(self, t: float) -> None:
        """Start whatever should sound at ``t``."""
        view = self.source.view()
        cues = self.planner.plan(
            t, view.sounding(t), view.inversion_started_at, view.profile.max_hold_s
        )
        for cue in cues:
            self.recent.append(cue)
            if isinstance(cue, Burst):
                self.output.play(t, self.bursts[cue.priority])
            elif isinstance(cue, Speak):
                clip = self.prompts.get(cue.phrase)
                if clip is None:
                    self.prompts_skipped += 1
                else:
                    self.output.play(t, clip)
            else:
                self.output.stop(t)
        self._report()

    def _report(self) -> None:
        problem = self.problem
        if problem != self._reported:
            if problem is not None:
                log.warning("station %s: sound: %s", self.station, problem)
            else:
                log.info("station %s: sound works again", self.station)
            self._reported = problem

    def close(self) -> None:
        """Close the output."""
        self.output.close()


def default_output(config: SoundConfig) -> SoundOutput:
    """The timeline file if ``config.file`` is set, else the player."""
    if config.file is not None:
        return WavTimeline(config.file.expanduser())
    return AplayOutput(config.command, config.device)
