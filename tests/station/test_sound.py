"""The station's alarm sound: bursts counted in rendered WAV files, acknowledge, silence,
the high-priority floor, prompts, and the audio device check. No real audio, no sleeps."""

from __future__ import annotations

import logging
import queue
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from monitor.core.alarms import RESOUND_AFTER_S, Alarm, AlarmEvent, EventKind, Latch, Priority
from monitor.core.engine import SafetyCore
from monitor.core.session import Phase
from monitor.core.station_view import AlarmView, CoreViews
from monitor.core.trace import InputKind
from monitor.settings import HIGH_VOLUME_FLOOR, SoundConfig
from monitor.sinks.audio import (
    FULL_SCALE,
    RATE_HZ,
    SHAPES,
    AplayOutput,
    Clip,
    Samples,
    Speaker,
    SpeechError,
    WavTimeline,
    audio_device_problem,
    enqueue,
    espeak_ng,
    read_wav,
    render_burst,
    to_pcm,
)
from monitor.sinks.sound import (
    Burst,
    Hush,
    Phrase,
    SoundPlanner,
    SoundSink,
    Speak,
)
from tests.core.rig import ack, hr_stream, make_core, press, ramp, steady, tilt_stream
from tests.station.drive import drive, hold, publish

pytestmark = pytest.mark.timeout(30)

LOW, MEDIUM, HIGH = Priority.LOW, Priority.MEDIUM, Priority.HIGH
QUIET = SoundConfig(voice=False)
FRAME = 110  # samples: 5 ms
THRESHOLD = 1000  # of 32767: the silence between pulses is exact zeros


# -- analysing the samples ---------------------------------------------------------------


def pulses(path: Path) -> list[tuple[float, float]]:
    """(start, end) of every pulse: the 5 ms peak envelope above a threshold."""
    samples, rate = read_wav(path)
    assert rate == RATE_HZ
    n = FRAME
    frames = len(samples) // n
    env = np.abs(samples[: frames * n].astype(np.int32)).reshape(frames, n).max(axis=1)
    on = np.concatenate(([0], (env > THRESHOLD).astype(np.int8), [0]))
    edges = np.diff(on)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(s * n / rate, e * n / rate) for s, e in zip(starts, ends, strict=True)]


def bursts(found: list[tuple[float, float]], gap_s: float = 0.8) -> list[list[float]]:
    """Pulse onsets grouped into bursts: a gap longer than ``gap_s`` starts a new one."""
    groups: list[list[float]] = []
    last_end = -1e9
    for start, end in found:
        if start - last_end > gap_s:
            groups.append([])
        groups[-1].append(start)
        last_end = end
    return groups


def peak(path: Path) -> int:
    samples, _ = read_wav(path)
    return int(np.max(np.abs(samples.astype(np.int32)))) if len(samples) else 0


def tone(text: str) -> Samples:
    """A fake speech synthesiser: 0.6 s of 300 Hz, whatever the text."""
    t = np.arange(round(0.6 * RATE_HZ)) / RATE_HZ
    return to_pcm(np.sin(2 * np.pi * 300 * t), 1.0)


def to_file(
    core: SafetyCore, path: Path, config: SoundConfig = QUIET, speaker: Speaker | None = None
) -> tuple[SoundSink, WavTimeline]:
    timeline = WavTimeline(path)
    sink = SoundSink(CoreViews(core), config, "home", output=timeline, speaker=speaker)
    return sink, timeline


def said(timeline: WavTimeline, phrase: Phrase) -> list[float]:
    key = f"prompt.{phrase.name.lower()}"
    return [round(p.start_s, 2) for p in timeline.placed if p.key == key]


# -- bursts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "count"), [(HIGH, 10), (MEDIUM, 3), (LOW, 1)], ids=["high", "medium", "low"]
)
def test_each_priority_sounds_its_pulse_count_and_repeats(
    tmp_path: Path, priority: Priority, count: int
) -> None:
    core = make_core()
    every = SHAPES[priority].every_s
    sink, _ = to_file(core, tmp_path / "out.wav")
    hold(core, [sink], {"hr.high": (priority, 130.0, 120.0)}, 0.0, 2 * every + 1)
    sink.close()

    found = pulses(tmp_path / "out.wav")
    groups = bursts(found)
    assert [len(g) for g in groups] == [count] * 3
    assert [round(g[0], 2) for g in groups] == [0.0, every, 2 * every]
    widths = {round(end - start, 2) for start, end in found}
    assert all(abs(w - SHAPES[priority].pulse_s) <= 0.02 for w in widths)


def test_high_burst_has_the_iec_rhythm(tmp_path: Path) -> None:
    core = make_core()
    sink, _ = to_file(core, tmp_path / "out.wav")
    hold(core, [sink], {"motion.impact": (HIGH, 3.5, 3.0)}, 0.0, 1.0)
    sink.close()

    onsets = np.array([s for s, _ in pulses(tmp_path / "out.wav")])
    # 3 + 2, a pause, 3 + 2: td 125 ms, ts 75 ms, 3rd-4th pulse 2 ts + td apart, 0.45 s pause.
    expected = [0.2, 0.2, 0.4, 0.2, 0.575, 0.2, 0.2, 0.4, 0.2]
    assert np.diff(onsets).tolist() == pytest.approx(expected, abs=0.006)


def test_the_most_urgent_sounding_alarm_decides(tmp_path: Path) -> None:
    core = make_core()
    sink, timeline = to_file(core, tmp_path / "out.wav")
    low = {"sensor.battery_low": (LOW, 10.0, 15.0)}
    medium = low | {"hr.high": (MEDIUM, 130.0, 120.0)}
    high = medium | {"motion.impact": (HIGH, 3.5, 3.0)}
    hold(core, [sink], low, 0.0, 3.0)
    hold(core, [sink], medium, 3.0, 5.0)
    hold(core, [sink], high, 5.0, 12.0)
    publish([sink], core.alarms.acknowledge(12.0, "motion.impact"))
    hold(core, [sink], high, 12.0, 30.0)
    sink.close()

    groups = bursts(pulses(tmp_path / "out.wav"))
    assert [len(g) for g in groups] == [1, 3, 10, 10, 3, 3]
    assert [round(g[0], 1) for g in groups] == [0.0, 3.0, 5.0, 11.0, 17.0, 27.0]
    assert [p.key for p in timeline.placed][:3] == ["burst.low", "burst.medium", "burst.high"]


def test_a_high_burst_cuts_a_lower_sound_short(tmp_path: Path) -> None:
    core = make_core()
    sink, timeline = to_file(core, tmp_path / "out.wav")
    medium = {"hr.high": (MEDIUM, 130.0, 120.0)}
    hold(core, [sink], medium, 0.0, 0.5)
    hold(core, [sink], medium | {"motion.impact": (HIGH, 3.5, 3.0)}, 0.5, 1.0)
    sink.close()

    first, second = timeline.placed
    assert (first.key, first.start_s, first.end_s) == ("burst.medium", 0.0, 0.5)
    assert (second.key, second.start_s) == ("burst.high", 0.5)


# -- acknowledge and silence -------------------------------------------------------------


def test_acknowledge_stops_the_sound_until_the_alarm_sounds_again_120_s_later(
    tmp_path: Path,
) -> None:
    core = make_core()
    sink, timeline = to_file(core, tmp_path / "out.wav")
    events = drive(
        core,
        [sink],
        [press(0.0, InputKind.SESSION_START), ack(20.0, "hr.high")],
        tilt_stream(steady(0.0), until=160, hz=10),
        hr_stream(steady(130), until=160),
        until=160.0,
    )
    sink.close()

    raised = next(e.t for e in events if e.id == "hr.high" and e.event.value == "raised")
    groups = bursts(pulses(tmp_path / "out.wav"))
    starts = [round(g[0], 1) for g in groups]
    again = 20.0 + RESOUND_AFTER_S
    assert starts == [raised, again, again + 10, again + 20]
    assert [len(g) for g in groups] == [3, 3, 3, 3]
    assert [p.key for p in timeline.placed] == ["burst.medium"] * 4


def test_silence_pauses_listed_alarms_for_120_s_and_a_new_alarm_breaks_through(
    tmp_path: Path,
) -> None:
    core = make_core()
    sink, _ = to_file(core, tmp_path / "out.wav")
    first = {"hr.high": (MEDIUM, 130.0, 120.0)}
    both = first | {"tilt.signal_lost": (MEDIUM, 3.0, 2.0)}
    hold(core, [sink], first, 0.0, 5.0)
    publish([sink], core.alarms.silence(5.0))
    hold(core, [sink], first, 5.0, 60.0)
    hold(core, [sink], both, 60.0, 100.0)  # new during the silence: it sounds
    hold(core, [sink], first, 100.0, 140.0)  # it resolved; the first is still silenced
    sink.close()

    starts = [round(g[0], 1) for g in bursts(pulses(tmp_path / "out.wav"))]
    assert starts == [0.0, 60.0, 70.0, 80.0, 90.0, 125.0, 135.0]


def test_the_planner_follows_sounding_exactly() -> None:
    """Acknowledged and silenced alarms are simply absent from ``sounding(t)``."""
    planner = SoundPlanner(voice=False)
    a = Alarm("hr.high", (MEDIUM, 130.0, 120.0), Latch.NO, 0.0)
    assert planner.plan(0.0, [AlarmView.of(a, "")]) == [Burst(0.0, MEDIUM, "hr.high")]
    assert planner.plan(5.0, [AlarmView.of(a, "")]) == []
    assert planner.plan(6.0, []) == [Hush(6.0)]
    assert planner.plan(7.0, []) == []
    assert planner.plan(8.0, [AlarmView.of(a, "")]) == [
        Burst(8.0, MEDIUM, "hr.high")
    ]  # sounds again at once
    a.priority = HIGH
    assert planner.plan(9.0, [AlarmView.of(a, "")]) == [
        Burst(9.0, HIGH, "hr.high")
    ]  # escalated: at once


# -- high alarms cannot be configured away -----------------------------------------------


def test_the_sound_file_setting_writes_a_timeline(tmp_path: Path) -> None:
    core = make_core()
    sink = SoundSink(CoreViews(core), SoundConfig(voice=False, file=tmp_path / "sound.wav"), "home")
    assert isinstance(sink.output, WavTimeline)
    hold(core, [sink], {"hr.high": (MEDIUM, 130.0, 120.0)}, 0.0, 12.0)
    sink.close()
    assert [len(g) for g in bursts(pulses(tmp_path / "sound.wav"))] == [3, 3]


@pytest.mark.parametrize("floor", [0.0, 0.2, HIGH_VOLUME_FLOOR - 0.01, 1.5])
def test_min_high_volume_cannot_go_below_the_floor(floor: float) -> None:
    with pytest.raises(ValidationError, match="cannot be turned down"):
        SoundConfig(min_high_volume=floor)


def test_disabled_sound_and_zero_volume_still_sound_high_alarms(tmp_path: Path) -> None:
    config = SoundConfig(enabled=False, volume=0.0, voice=True)
    assert config.volume_of(HIGH) >= HIGH_VOLUME_FLOOR
    core = make_core()
    sink, timeline = to_file(core, tmp_path / "out.wav", config)
    hold(core, [sink], {"hr.high": (MEDIUM, 130.0, 120.0)}, 0.0, 20.0)
    assert timeline.placed == []
    hold(core, [sink], {"hr.high": (HIGH, 160.0, 150.0)}, 20.0, 30.0)
    sink.close()

    groups = bursts(pulses(tmp_path / "out.wav"))
    assert [len(g) for g in groups] == [10, 10]
    assert peak(tmp_path / "out.wav") >= HIGH_VOLUME_FLOOR * FULL_SCALE * 32767 * 0.99
    assert sink.prompts == {}


def test_high_bursts_play_at_least_at_min_high_volume() -> None:
    config = SoundConfig(volume=0.1, min_high_volume=0.6)
    high = render_burst(HIGH, config.volume_of(HIGH))
    medium = render_burst(MEDIUM, config.volume_of(MEDIUM))
    assert np.max(np.abs(high.astype(np.int32))) == pytest.approx(0.6 * FULL_SCALE * 32767, 1)
    assert np.max(np.abs(medium.astype(np.int32))) == pytest.approx(0.1 * FULL_SCALE * 32767, 1)


# -- prompts -----------------------------------------------------------------------------


def test_fifteen_seconds_left_is_said_once_per_inversion(tmp_path: Path) -> None:
    core = make_core("beginner", hr=False)  # max_hold_s 60, max_angle_deg 30
    theta = ramp(
        (0, 0), (4, 0), (8, 25), (50, 25), (54, 0),  # about 48 s inverted: warned at 45 s
        (150, 0), (154, 25), (212, 25), (216, 0),  # about 62 s: warned, then the hold limit
        (310, 0), (314, 25), (330, 25), (334, 0),  # about 20 s: too short to be warned
    )  # fmt: skip
    sink, timeline = to_file(core, tmp_path / "out.wav", SoundConfig(), speaker=tone)
    events = drive(core, [sink], tilt_stream(theta, until=340, hz=10), until=340.0)
    sink.close()

    starts = [c.t for c in core.drain_phase_changes() if c.new is Phase.INVERTED]
    assert len(starts) == 3
    assert said(timeline, Phrase.FIFTEEN_LEFT) == pytest.approx([s + 45 for s in starts[:2]])
    assert [(e.id, e.event.value) for e in events][:1] == [("inversion.hold_limit", "raised")]
    after_burst = events[0].t + SHAPES[MEDIUM].duration_s  # the prompt waits for the burst
    assert said(timeline, Phrase.COME_UP) == pytest.approx([after_burst], abs=0.01)
    assert events[0].t == pytest.approx(starts[1] + 60, abs=0.2)


def test_raised_alarms_say_their_prompt_once(tmp_path: Path) -> None:
    core = make_core()
    sink, timeline = to_file(core, tmp_path / "out.wav", SoundConfig(), speaker=tone)
    wants = {
        "inversion.hold_limit": (MEDIUM, 61.0, 60.0),
        "motion.too_fast": (LOW, -40.0, 30.0),  # same phrase within 10 s: said once
        "tilt.signal_lost": (MEDIUM, 3.0, 2.0),
        "hr.signal_lost": (LOW, 5.0, 5.0),
    }
    hold(core, [sink], wants, 0.0, 30.0, inverted=True)
    sink.close()

    spoken = [cue for cue in sink.recent if isinstance(cue, Speak)]
    assert sorted(cue.phrase.name for cue in spoken) == ["COME_UP", "HR_LOST", "TILT_LOST"]
    keys = [p.key for p in timeline.placed]
    assert keys[0] == "burst.medium"
    assert sorted(keys[1:4]) == ["prompt.come_up", "prompt.hr_lost", "prompt.tilt_lost"]
    assert sink.problem is None


def test_no_prompt_for_an_alarm_raised_into_an_acknowledge_or_with_voice_off() -> None:
    planner = SoundPlanner(voice=True)
    raised = AlarmEvent(0.0, "tilt.signal_lost", MEDIUM, EventKind.RAISED, 3.0, 2.0, "")
    planner.note([raised])
    assert planner.plan(0.1, []) == []  # acknowledged before the tick: not sounding, not said
    muted = SoundPlanner(voice=False)
    muted.note([raised])
    alarm = Alarm("tilt.signal_lost", (MEDIUM, 3.0, 2.0), Latch.NO, 0.0)
    assert [type(c) for c in muted.plan(0.1, [AlarmView.of(alarm, "")])] == [Burst]


def test_without_espeak_ng_prompts_are_skipped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def missing(text: str) -> Samples:
        return espeak_ng(text, executable=str(tmp_path / "no-espeak-ng"))

    core = make_core()
    timeline = WavTimeline(tmp_path / "out.wav")
    with caplog.at_level(logging.WARNING, logger="monitor.sinks.sound"):
        sink = SoundSink(CoreViews(core), SoundConfig(), "home", output=timeline, speaker=missing)
        hold(core, [sink], {"tilt.signal_lost": (MEDIUM, 3.0, 2.0)}, 0.0, 5.0)
    sink.close()

    assert sink.problem is not None
    assert sink.problem.startswith("spoken prompts off: espeak-ng failed")
    assert sink.prompts_skipped == 1
    assert [p.key for p in timeline.placed] == ["burst.medium"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "station home: sound: spoken prompts off" in warnings[0].getMessage()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_ng_speaks_a_prompt_when_installed() -> None:
    samples = espeak_ng(Phrase.COME_UP.value)
    assert 0.3 < len(samples) / RATE_HZ < 5.0
    assert np.max(np.abs(samples.astype(np.int32))) > THRESHOLD


def test_espeak_ng_not_on_the_path_is_a_speech_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("monitor.sinks.audio.shutil.which", lambda name: None)
    with pytest.raises(SpeechError, match="espeak-ng not found"):
        espeak_ng("Come up slowly.")


# -- the audio device and the player -----------------------------------------------------

CARDS = """**** List of PLAYBACK Hardware Devices ****
card 0: Headphones [bcm2835 Headphones], device 0: bcm2835 Headphones [bcm2835 Headphones]
  Subdevices: 8/8
"""
NO_CARDS = "aplay: device_list:274: no soundcards found...\n"


def fake_snd(root: Path, *names: str) -> Path:
    snd = root / "snd"
    snd.mkdir()
    for name in names:
        (snd / name).touch()
    return snd


def test_audio_device_problem_reads_dev_snd_and_aplay_listing() -> None:
    ok = ["controlC0", "pcmC0D0p", "timer"]
    assert audio_device_problem(ok, CARDS) is None
    assert audio_device_problem(None, CARDS) == "no audio device: /dev/snd does not exist"
    assert audio_device_problem(["controlC0", "pcmC0D0c", "timer"], CARDS) == (
        "no audio device: /dev/snd has no playback device"
    )
    assert audio_device_problem(ok, NO_CARDS) == "no audio device: aplay -l lists no sound card"
    assert audio_device_problem(ok, "") == "no audio device: aplay -l lists no sound card"


def test_no_audio_device_is_a_station_problem_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listing = [NO_CARDS]
    snd = fake_snd(tmp_path, "controlC0", "pcmC0D0p")
    output = AplayOutput(
        snd_dir=snd, list_cards=lambda exe: listing[0], which=lambda name: f"/usr/bin/{name}"
    )
    core = make_core()
    with caplog.at_level(logging.INFO, logger="monitor.sinks.sound"):
        sink = SoundSink(CoreViews(core), QUIET, "home", output=output)
        hold(core, [sink], {"motion.impact": (HIGH, 3.5, 3.0)}, 0.0, 20.0)
        assert sink.problem == "no audio device: aplay -l lists no sound card"
        assert output.skipped == 4  # bursts at 0, 6, 12 and 18 s could not play
        listing[0] = CARDS  # a speaker is plugged in: the worker looks every 30 s, or now:
        assert output.probe() is None
        hold(core, [sink], {"motion.impact": (HIGH, 3.5, 3.0)}, 20.0, 20.5)
    sink.close()

    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", "station home: sound: no audio device: aplay -l lists no sound card"),
        ("INFO", "station home: sound works again"),
    ]


def test_a_missing_dev_snd_or_player_is_found_without_running_anything(tmp_path: Path) -> None:
    no_snd = AplayOutput(
        snd_dir=tmp_path / "snd", list_cards=lambda exe: CARDS, which=lambda name: name
    )
    assert no_snd.problem == f"no audio device: {tmp_path / 'snd'} does not exist"
    no_aplay = AplayOutput(which=lambda name: None)
    assert no_aplay.problem == "no audio player: aplay not found (install alsa-utils)"
    other = AplayOutput(["paplay"], which=lambda name: f"/usr/bin/{name}")
    assert other.problem is None
    for output in (no_snd, no_aplay, other):
        output.close()


class FakeProcess:
    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.samples, _ = read_wav(Path(args[-1]))
        self.ended = threading.Event()
        self.terminated = False

    def wait(self) -> tuple[int, str]:
        assert self.ended.wait(20)
        return (-15 if self.terminated else 0), ""

    def terminate(self) -> None:
        self.terminated = True
        self.ended.set()


class FakePlayer:
    def __init__(self) -> None:
        self.started: queue.Queue[FakeProcess] = queue.Queue()

    def __call__(self, args: list[str]) -> FakeProcess:
        process = FakeProcess(args)
        self.started.put(process)
        return process

    def next(self) -> FakeProcess:
        return self.started.get(timeout=10)


def clip(priority: Priority) -> Clip:
    return Clip(f"burst.{priority.label}", render_burst(priority, 0.5), priority is HIGH)


def test_a_busy_player_does_not_pile_up_and_a_high_burst_cuts_in(tmp_path: Path) -> None:
    player = FakePlayer()
    output = AplayOutput(
        device="plughw:1,0",
        snd_dir=fake_snd(tmp_path, "pcmC1D0p"),
        list_cards=lambda exe: CARDS,
        which=lambda name: f"/usr/bin/{name}",
        spawn=player,
    )
    prompt = Clip("prompt.come_up", tone("Come up slowly."))
    output.play(0.0, clip(MEDIUM))
    first = player.next()
    assert first.args[:4] == ["aplay", "-q", "-D", "plughw:1,0"]
    assert np.array_equal(first.samples, clip(MEDIUM).samples)
    for t in (1.0, 1.1, 1.2):
        output.play(t, clip(LOW))  # the same clip waiting is not queued again
    output.play(2.0, prompt)
    output.play(3.0, clip(MEDIUM))  # a third waiting clip: the oldest (low) is dropped
    assert output.dropped == 1
    output.play(4.0, clip(HIGH))  # cuts the medium burst short and goes first
    assert first.ended.wait(10)
    assert first.terminated
    second = player.next()
    assert second.args[-1].endswith("burst.high.wav")
    second.ended.set()
    third = player.next()
    assert third.args[-1].endswith("burst.medium.wav")  # the prompt was dropped for the high
    third.ended.set()
    output.close()
    assert output.dropped == 2
    assert output.played == 3
    assert output.problem is None
    assert player.started.empty()


def test_a_failing_player_is_a_problem(tmp_path: Path) -> None:
    class Failing(FakeProcess):
        def wait(self) -> tuple[int, str]:
            return 1, "aplay: main:831: audio open error: No such file or directory"

    spawned: queue.Queue[str] = queue.Queue()

    def spawn(args: list[str]) -> FakeProcess:
        spawned.put(args[-1])
        return Failing(args)

    output = AplayOutput(
        snd_dir=fake_snd(tmp_path, "pcmC0D0p"),
        list_cards=lambda exe: CARDS,
        which=lambda name: name,
        spawn=spawn,
    )
    output.play(0.0, clip(LOW))
    output.play(0.0, clip(MEDIUM))
    assert spawned.get(timeout=10).endswith("burst.low.wav")
    assert spawned.get(timeout=10).endswith("burst.medium.wav")  # the low one has failed by now
    assert output.problem == (
        "sound player failed: aplay exited 1: aplay: main:831: audio open error: "
        "No such file or directory"
    )
    output.close()


def test_enqueue_keeps_urgent_clips_first_and_drops_the_oldest_other() -> None:
    pending: list[Clip] = []
    assert enqueue(pending, clip(LOW), 2) == []
    assert enqueue(pending, clip(LOW), 2) == []
    assert enqueue(pending, clip(MEDIUM), 2) == []
    dropped = enqueue(pending, clip(HIGH), 2)
    assert [c.key for c in dropped] == ["burst.low"]
    assert [c.key for c in pending] == ["burst.high", "burst.medium"]
