"""Alarm tones, speech and the ways to play them: the sound sink's audio layer.

Pure: :data:`SHAPES` and :func:`render_burst` synthesise the IEC 60601-1-8 style bursts with
numpy; :func:`enqueue` is the rule that keeps a busy player from piling up. I/O: WAV files
(standard library ``wave``), speech through ``espeak-ng``, and two outputs: :class:`AplayOutput`
plays through ALSA ``aplay`` (or another command) in a worker thread, :class:`WavTimeline`
writes everything it would play into one continuous WAV file.

Tone bursts (IEC 60601-1-8 Table 3 ranges in brackets):

============  ======  ===========  ============  ================================  ===========
priority      pulses  pulse td     spacing ts    burst                             repeat every
============  ======  ===========  ============  ================================  ===========
high (red)    10      125 ms       75 ms         3+2, 0.45 s pause, 3+2: 2.70 s    6 s
              (10)    (75-200)     (50-125)      (3rd-4th: 2ts+td; pause 0.35-1.3)  (2.5-15 s)
medium        3       200 ms       200 ms        1.00 s                            10 s
              (3)     (125-250)    (125-250)                                        (2.5-30 s)
low (cyan)    1       200 ms       --            0.20 s                            30 s
              (1-2)   (125-250)                                                     (> 15 s)
============  ======  ===========  ============  ================================  ===========

Each pulse is a 523 Hz fundamental (C5; IEC: 150-1000 Hz) with four harmonics, all five
components between 300 and 4000 Hz and within 15 dB of the fundamental, and raised-cosine
rise and fall over 15 % of the pulse (IEC: 10-20 %). The high burst repeats every 6 s, so the
gap after it (3.3 s) stays above the standard's 2.5 s minimum and leaves room for a spoken
prompt before the next burst. Output: 16-bit mono PCM at 22.05 kHz, espeak-ng's own format.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from numpy.typing import NDArray

from monitor.core.alarms import Priority

Samples = NDArray[np.int16]
"""Mono 16-bit PCM at :data:`RATE_HZ`."""

RATE_HZ = 22050
TONE_HZ = 523.25
HARMONICS = (1.0, 0.6, 0.45, 0.3, 0.2)
"""Amplitude of the fundamental and its 2nd-5th harmonics (0.2 is -14 dB)."""
RAMP = 0.15
"""Rise and fall time as a share of the pulse."""
FULL_SCALE = 0.9
"""Peak at volume 1, as a share of int16 full scale: a little headroom against clipping."""


# -- bursts (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BurstShape:
    """One priority's burst: pulse onsets within the burst, pulse length, repeat interval."""

    onsets_s: tuple[float, ...]
    pulse_s: float
    every_s: float

    @property
    def duration_s(self) -> float:
        """From the first pulse's onset to the last pulse's end."""
        return self.onsets_s[-1] + self.pulse_s


def _high_onsets(td: float, ts: float, pause: float) -> tuple[float, ...]:
    group = (0.0, td + ts, 2 * (td + ts), 3 * (td + ts) + ts + td, 4 * (td + ts) + ts + td)
    second = group[-1] + td + pause
    return tuple(round(x, 6) for x in (*group, *(second + x for x in group)))


SHAPES: dict[Priority, BurstShape] = {
    Priority.HIGH: BurstShape(_high_onsets(0.125, 0.075, 0.45), 0.125, 6.0),
    Priority.MEDIUM: BurstShape((0.0, 0.4, 0.8), 0.2, 10.0),
    Priority.LOW: BurstShape((0.0,), 0.2, 30.0),
}


def _pulse(duration_s: float, rate_hz: int) -> NDArray[np.float64]:
    n = round(duration_s * rate_hz)
    t = np.arange(n) / rate_hz
    tone = sum(a * np.sin(2 * np.pi * (k + 1) * TONE_HZ * t) for k, a in enumerate(HARMONICS))
    tone = np.asarray(tone, dtype=np.float64)
    tone /= np.max(np.abs(tone))
    ramp_n = max(1, round(n * RAMP))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp_n) / ramp_n)
    tone[:ramp_n] *= ramp
    tone[n - ramp_n :] *= ramp[::-1]
    return tone


def to_pcm(signal: NDArray[np.float64], volume: float) -> Samples:
    """A float signal in -1..1 as 16-bit samples at ``volume``."""
    scaled = np.clip(signal, -1.0, 1.0) * (volume * FULL_SCALE * 32767)
    return np.round(scaled).astype(np.int16)


def render_burst(priority: Priority, volume: float, rate_hz: int = RATE_HZ) -> Samples:
    """One burst of ``priority`` (10, 3 or 1 pulses), as :data:`SHAPES` describes it."""
    shape = SHAPES[priority]
    pulse = _pulse(shape.pulse_s, rate_hz)
    out = np.zeros(round(shape.duration_s * rate_hz) + 1, dtype=np.float64)
    for onset in shape.onsets_s:
        i = round(onset * rate_hz)
        out[i : i + len(pulse)] += pulse
    return to_pcm(out, volume)


def write_wav(target: str | Path | BinaryIO, samples: Samples, rate_hz: int = RATE_HZ) -> None:
    """Mono 16-bit WAV."""
    with wave.open(target if not isinstance(target, Path) else str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(samples.astype("<i2").tobytes())


def read_wav(source: str | Path | BinaryIO) -> tuple[Samples, int]:
    """Samples of a 16-bit WAV (the first channel) and its rate."""
    with wave.open(source if not isinstance(source, Path) else str(source), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"not 16-bit PCM: {w.getsampwidth() * 8}-bit")
        channels, rate = w.getnchannels(), w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data[::channels].astype(np.int16), rate


def resample(samples: Samples, rate_hz: int, to_hz: int = RATE_HZ) -> Samples:
    """Linear resampling (speech only; good enough for a voice prompt)."""
    if rate_hz == to_hz or len(samples) == 0:
        return samples
    n = round(len(samples) * to_hz / rate_hz)
    x = np.arange(n) * (rate_hz / to_hz)
    curve: NDArray[np.float64] = np.interp(x, np.arange(len(samples)), samples)
    return np.round(curve).astype(np.int16)


# -- clips and the no-pile-up rule (pure) ------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Clip:
    """Something to play. An ``urgent`` clip (a high burst) never waits behind another."""

    key: str
    samples: Samples
    urgent: bool = False

    @property
    def duration_s(self) -> float:
        """Length at :data:`RATE_HZ`."""
        return len(self.samples) / RATE_HZ


def enqueue(pending: list[Clip], clip: Clip, limit: int) -> list[Clip]:
    """Add ``clip`` to a player's waiting list in place; return the clips dropped.

    A clip already waiting is not added twice; urgent clips go before the others; beyond
    ``limit`` the oldest non-urgent clip is dropped (an urgent one only if all are urgent).
    """
    if any(p.key == clip.key for p in pending):
        return []
    at = sum(1 for p in pending if p.urgent) if clip.urgent else len(pending)
    pending.insert(at, clip)
    dropped: list[Clip] = []
    while len(pending) > limit:
        victim = next((p for p in pending if not p.urgent), pending[0])
        pending.remove(victim)
        dropped.append(victim)
    return dropped


# -- speech ------------------------------------------------------------------------------


class SpeechError(RuntimeError):
    """A prompt could not be synthesised; says why."""


Speaker = Callable[[str], Samples]
"""Text to samples at :data:`RATE_HZ`; raises :class:`SpeechError`."""


def espeak_ng(text: str, executable: str | None = None, timeout_s: float = 10.0) -> Samples:
    """``espeak-ng -w FILE.wav`` (a calm 150 words a minute), read back and resampled.

    espeak-ng exits 0 even when it fails, so success is judged by the file it wrote.
    """
    exe = executable or shutil.which("espeak-ng")
    if exe is None:
        raise SpeechError("espeak-ng not found")
    with tempfile.TemporaryDirectory(prefix="spotter-voice-") as folder:
        path = Path(folder) / "prompt.wav"
        try:
            done = subprocess.run(
                [exe, "-v", "en", "-s", "150", "-w", str(path), text],
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpeechError(f"espeak-ng failed: {exc}") from None
        try:
            samples, rate = read_wav(path)
        except (OSError, EOFError, wave.Error, ValueError) as exc:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            why = said[-1] if said else str(exc)
            raise SpeechError(f"espeak-ng wrote no audio: {why}") from None
    if len(samples) == 0:
        raise SpeechError("espeak-ng wrote an empty file")
    return resample(samples, rate)


# -- outputs -----------------------------------------------------------------------------


class SoundOutput(Protocol):
    """Where clips go. Every method returns at once."""

    @property
    def problem(self) -> str | None:
        """Why the output cannot sound, or None when it can."""

    def play(self, t: float, clip: Clip) -> None:
        """Start ``clip`` (station time ``t``) as soon as the rule of :func:`enqueue` allows."""

    def stop(self, t: float) -> None:
        """Stop what is playing and drop what waits."""

    def close(self) -> None:
        """Release everything."""


PLAYBACK_NODE = re.compile(r"pcmC\d+D\d+p")
CARD_LINE = re.compile(r"^card \d+:", re.MULTILINE)


def audio_device_problem(
    snd_entries: Sequence[str] | None, cards_listing: str, snd_dir: str = "/dev/snd"
) -> str | None:
    """Why ALSA has nowhere to play, from ``/dev/snd``'s entries and ``aplay -l``'s output.

    ``snd_entries`` is None when ``snd_dir`` does not exist. Exit codes say nothing here:
    ``aplay -l`` exits 0 when it finds no sound card.
    """
    if snd_entries is None:
        return f"no audio device: {snd_dir} does not exist"
    if not any(PLAYBACK_NODE.fullmatch(name) for name in snd_entries):
        return f"no audio device: {snd_dir} has no playback device"
    if "no soundcards found" in cards_listing.lower() or not CARD_LINE.search(cards_listing):
        return "no audio device: aplay -l lists no sound card"
    return None


class Playing(Protocol):
    """A running player process."""

    def wait(self) -> tuple[int, str]:
        """Block until it ends; its exit status and the last line it wrote to stderr."""

    def terminate(self) -> None:
        """Ask it to stop."""


class _Process:
    def __init__(self, args: list[str]) -> None:
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def wait(self) -> tuple[int, str]:
        _, err = self._proc.communicate()
        lines = err.decode(errors="replace").strip().splitlines()
        return self._proc.returncode, lines[-1] if lines else ""

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._proc.terminate()


def _list_cards(exe: str) -> str:
    try:
        done = subprocess.run([exe, "-l"], capture_output=True, timeout=5.0, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"aplay -l failed: {exc}"
    return (done.stdout + done.stderr).decode(errors="replace")


def _snd_entries(snd_dir: Path) -> list[str] | None:
    try:
        return sorted(p.name for p in snd_dir.iterdir())
    except OSError:
        return None


class AplayOutput:
    """Plays clips through ``aplay`` (or another command) in one worker thread.

    ``play`` only queues: a high burst cuts a lower sound short, others wait in a list of at
    most ``pending_limit`` (see :func:`enqueue`), so a busy player never piles up. The device
    is checked from ``/dev/snd`` and ``aplay -l`` output at start (other commands: only that
    they exist) and again every ``reprobe_s`` while it is missing, so a speaker plugged in
    later is used. ``which``, ``list_cards``, ``snd_dir`` and ``spawn`` are for tests.
    """

    def __init__(
        self,
        command: Sequence[str] = ("aplay", "-q"),
        device: str | None = None,
        *,
        snd_dir: Path = Path("/dev/snd"),
        list_cards: Callable[[str], str] = _list_cards,
        which: Callable[[str], str | None] = shutil.which,
        spawn: Callable[[list[str]], Playing] = _Process,
        pending_limit: int = 2,
        reprobe_s: float = 30.0,
    ) -> None:
        if not command:
            raise ValueError("the sound command is empty")
        self.command = list(command)
        self.is_aplay = Path(self.command[0]).name == "aplay"
        self.device = device
        self._snd_dir, self._list_cards, self._which = snd_dir, list_cards, which
        self._spawn = spawn
        self.pending_limit = pending_limit
        self.reprobe_s = reprobe_s
        self.played = 0
        self.dropped = 0
        self.skipped = 0
        """Clips not played because there was no device."""
        self._cond = threading.Condition()
        self._pending: list[Clip] = []
        self._playing: Clip | None = None
        self._proc: Playing | None = None
        self._cut = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._files: dict[str, Path] = {}
        self._folder: Path | None = None
        self._error: str | None = None
        self._device_problem = self._probe()
        if self._device_problem is not None:
            with self._cond:
                self._start()  # look again every reprobe_s: a speaker may be plugged in later

    # -- the safety loop's side: never blocks --------------------------------------------

    @property
    def problem(self) -> str | None:
        """No device, no player, or the player failing."""
        return self._device_problem or self._error

    def play(self, t: float, clip: Clip) -> None:
        """Queue ``clip``; a high burst stops a lower sound that is playing."""
        with self._cond:
            if self._device_problem is not None:
                self.skipped += 1
                return
            self._start()
            self.dropped += len(enqueue(self._pending, clip, self.pending_limit))
            playing = self._playing
            if clip.urgent and playing is not None and not playing.urgent:
                self._cut_current()
            self._cond.notify_all()

    def stop(self, t: float) -> None:
        """Drop what waits and stop what plays."""
        with self._cond:
            self._pending.clear()
            if self._playing is not None:
                self._cut_current()

    def close(self) -> None:
        """Stop playing, end the worker and remove the clip files."""
        with self._cond:
            self._closing = True
            self._pending.clear()
            if self._playing is not None:
                self._cut_current()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10.0)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _cut_current(self) -> None:
        self._cut = True
        if self._proc is not None:
            self._proc.terminate()

    def _start(self) -> None:
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(target=self._run, name="sound-player", daemon=True)
            self._thread.start()

    # -- the worker ----------------------------------------------------------------------

    def probe(self) -> str | None:
        """Look for the player and the device again (blocks: ``aplay -l``); the new problem."""
        problem = self._probe()
        with self._cond:
            self._device_problem = problem
        return problem

    def _probe(self) -> str | None:
        exe = self._which(self.command[0])
        if exe is None:
            hint = " (install alsa-utils)" if self.is_aplay else ""
            return f"no audio player: {self.command[0]} not found{hint}"
        if not self.is_aplay:
            return None
        snd = self._snd_dir
        return audio_device_problem(_snd_entries(snd), self._list_cards(exe), str(snd))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and self._device_problem is None and not self._pending:
                    self._cond.wait()
                if self._device_problem is not None and not self._closing:
                    self._cond.wait(self.reprobe_s)
                if self._closing:
                    return
                clip = None
                if self._device_problem is None and self._pending:
                    clip = self._pending.pop(0)
                    self._playing, self._cut = clip, False
            if clip is not None:
                self._play(clip)
            elif self._device_problem is not None:
                self.probe()

    def _play(self, clip: Clip) -> None:
        args = [*self.command]
        if self.is_aplay and self.device is not None:
            args += ["-D", self.device]
        try:
            args.append(str(self._file_for(clip)))
            proc = self._spawn(args)
        except OSError as exc:
            with self._cond:
                self._playing = None
                self._error = f"sound player failed: {exc}"
            return
        with self._cond:
            self._proc = proc
            if self._cut:
                proc.terminate()
        status, said = proc.wait()
        with self._cond:
            cut = self._cut
            self._proc = self._playing = None
            if status == 0 or cut:
                self.played += 1
                self._error = None
            else:
                detail = f": {said}" if said else ""
                self._error = f"sound player failed: {self.command[0]} exited {status}{detail}"

    def _file_for(self, clip: Clip) -> Path:
        path = self._files.get(clip.key)
        if path is None:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="spotter-sound-"))
            path = self._folder / f"{clip.key}.wav"
            write_wav(path, clip.samples)
            self._files[clip.key] = path
        return path


@dataclass(slots=True)
class Placed:
    """A clip on the timeline, in station seconds (``end_s`` shortened when it was cut)."""

    key: str
    start_s: float
    end_s: float


@dataclass(slots=True)
class _Held:
    """The last clip placed: kept in memory until the next one, so it can still be cut."""

    clip: Clip
    start: int
    samples: Samples
    placed: Placed

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


class WavTimeline:
    """Writes every clip into one continuous WAV file at its station time (``--sound-file``).

    It behaves like the player: a high burst cuts a lower sound short; any other clip starts
    when the one before ends, and is dropped if that is more than ``max_lag_s`` late. Silence
    between clips is written as zeros, so a long quiet run makes a long file.
    """

    def __init__(
        self, target: str | Path | BinaryIO, *, origin_s: float = 0.0, max_lag_s: float = 5.0
    ) -> None:
        # Open until close(): the file grows with every clip.
        self._wav = wave.open(  # noqa: SIM115
            target if not isinstance(target, Path) else str(target), "wb"
        )
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(RATE_HZ)
        self.origin_s = origin_s
        self.max_lag_s = max_lag_s
        self.placed: list[Placed] = []
        self.dropped = 0
        self._written = 0
        self._held: _Held | None = None
        self._closed = False

    @property
    def problem(self) -> str | None:
        """A file can always be written (an unwritable one fails at construction)."""
        return None

    def _at(self, t: float) -> int:
        return max(0, round((t - self.origin_s) * RATE_HZ))

    def play(self, t: float, clip: Clip) -> None:
        """Place ``clip`` at ``t`` (or after the clip before it)."""
        start = self._at(t)
        held = self._held
        if held is not None and start < held.end:
            if clip.urgent and not held.clip.urgent:
                self._cut(start)
            elif held.end - start > self.max_lag_s * RATE_HZ:
                self.dropped += 1
                return
            else:
                start = held.end
        self._flush()
        begin = self.origin_s + start / RATE_HZ
        placed = Placed(clip.key, begin, begin + clip.duration_s)
        self.placed.append(placed)
        self._held = _Held(clip, start, clip.samples, placed)

    def stop(self, t: float) -> None:
        """Cut the clip that is playing at ``t``."""
        self._cut(self._at(t))

    def _cut(self, at: int) -> None:
        held = self._held
        if held is not None and at < held.end:
            keep = max(0, at - held.start)
            held.samples = held.samples[:keep]
            held.placed.end_s = held.placed.start_s + keep / RATE_HZ

    def _flush(self) -> None:
        if self._held is None:
            return
        start, samples = self._held.start, self._held.samples
        zeros = np.zeros(min(max(0, start - self._written), RATE_HZ * 60), dtype=np.int16)
        while self._written < start:
            n = min(len(zeros), start - self._written)
            self._wav.writeframes(zeros[:n].tobytes())
            self._written += n
        self._wav.writeframes(samples.astype("<i2").tobytes())
        self._written += len(samples)
        self._held = None

    def close(self) -> None:
        """Write the last clip and finish the file."""
        if not self._closed:
            self._closed = True
            self._flush()
            self._wav.close()
