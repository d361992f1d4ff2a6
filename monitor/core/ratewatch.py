"""How fast the tilt sensor really sends, and whether impact detection can work at that rate.

Impact detection (SPEC 6, ``motion.impact``) looks for a free fall of at least 80 ms and a
peak that lasts two samples; it needs at least 50 samples a second. A WitMotion sensor runs at
10 Hz until told otherwise, and a unit may ignore the command, so the station does not trust
what it asked for: it measures the rate over windows of station time while the sensor streams
and says so when the rate is too low. Pure: time and the sample count come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

IMPACT_MIN_RATE_HZ = 50.0
"""Below this rate impact detection cannot see a fall (the SPEC's 80 ms free fall)."""
COUNTING_SLACK = 0.95
"""A sensor at 50 Hz counted over one window may show 149 samples (a window's edges fall
between samples, and its clock is not the station's): 5 % below the minimum still passes."""
WINDOW_S = 3.0
"""Station seconds per measurement (the first window starts with the first sample after a
connect, so the time spent connecting and setting the rate does not count)."""


SILENCE_S = 1.5
"""A gap between samples longer than this is silence, not a slow rate (a sensor at 1 Hz still
counts; ``tilt.signal_lost`` takes over at 2 s)."""


@dataclass(slots=True)
class RateWatch:
    """The tilt sample rate, measured over consecutive windows of ``window_s``."""

    min_rate_hz: float = IMPACT_MIN_RATE_HZ
    window_s: float = WINDOW_S
    rate_hz: float | None = None
    """The rate over the last complete window (None: not measured since the last connect)."""
    _start_t: float | None = None
    _start_samples: int = 0
    _armed: bool = False
    _link_samples: int = 0
    _seen_samples: int = 0
    _seen_t: float = 0.0

    def link(self, connected: bool, samples: int) -> None:
        """The sensor's link went up (measure afresh from its first sample) or down."""
        self._armed = connected
        self._link_samples = samples
        self._start_t = None
        self.rate_hz = None

    def update(self, t: float, samples: int) -> float | None:
        """Time is ``t`` and ``samples`` have arrived in all; the measured rate, if any.

        A window in which the sensor fell silent for more than ``SILENCE_S`` measures the
        silence, not the sensor (that is ``tilt.signal_lost``'s job): it is dropped, and the
        measurement starts again with the next sample."""
        if samples > self._seen_samples:
            self._seen_samples, self._seen_t = samples, t
        elif self._start_t is not None and t - self._seen_t > SILENCE_S:
            self._start_t = None
            self._link_samples = samples
        if self._start_t is None:
            if self._armed and samples > self._link_samples:
                self._start_t, self._start_samples = t, samples
            return self.rate_hz
        span = t - self._start_t
        if span >= self.window_s - 1e-9:  # ticks land on a 0.1 s grid of floats
            self.rate_hz = (samples - self._start_samples) / span
            self._start_t, self._start_samples = t, samples
        return self.rate_hz

    def problem(self) -> str | None:
        """What to tell the user when the measured rate is too low for impact detection."""
        if self.rate_hz is None or self.rate_hz >= self.min_rate_hz * COUNTING_SLACK:
            return None
        return f"impact detection unavailable: sensor at {self.rate_hz:.0f} Hz"
