"""Driving the real dashboard from outside, for the browser tests and ``spotter bench
dashboard``: a simulated station (``spotter run --sim ... --json``) as a subprocess whose
alarm events are timestamped as they arrive on its stdout, scenario files written on the
fly, and Debian's headless Chromium through Playwright.

Nothing here imports the station: it is driven only through its command line, its HTTP API
and its pages, as a user's browser would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: Playwright cannot download its own browser here."""
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
PHONE_WIDTH, PHONE_HEIGHT = 390, 844
"""The phone the dashboard is designed for first."""
SIM_STORE = "sim.db"
"""The store a simulated run keeps in its data folder."""
_PAIR_URL = re.compile(r"Dashboard: (\S+/pair\?token=\S+)")
_REPO = Path(__file__).resolve().parents[2]


class HarnessError(RuntimeError):
    """The station or the browser could not be brought up; the message says what to do."""


@dataclass(frozen=True)
class Line:
    """One alarm event the daemon printed, with the wall-clock time it arrived here."""

    at: float
    """``time.time()`` when the line was read from the daemon's stdout."""
    event: dict[str, Any]


def scenario_toml(
    name: str,
    *,
    duration_s: float,
    theta: Sequence[tuple[float, float]],
    hr: Sequence[tuple[float, float]] = ((0.0, 70.0),),
    profile: Mapping[str, Any] | None = None,
    tilt_rate_hz: float = 20.0,
) -> str:
    """A scenario (see docs/scenarios.md) with a tilt sensor and a strap, as TOML text."""

    def points(curve: Sequence[tuple[float, float]]) -> str:
        return "[" + ", ".join(f"[{t:g}, {v:g}]" for t, v in curve) + "]"

    prof = dict(profile or {"base": "beginner"})
    inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in prof.items())
    return (
        f'name = "{name}"\n'
        f"duration_s = {duration_s:g}\n"
        f"profile = {{ {inline} }}\n"
        f"theta = {points(theta)}\n"
        f"hr = {points(hr)}\n\n"
        "[sensors.tilt]\n"
        'kind = "spotter_tilt"\n'
        f"rate_hz = {tilt_rate_hz:g}\n"
        "battery_percent = 90\n\n"
        "[sensors.hr]\n"
        'kind = "heart_rate"\n'
        "battery_percent = 80\n"
    )


def swing_theta(
    duration_s: float, *, lead_in_s: float, period_s: float, low_deg: float, high_deg: float
) -> list[tuple[float, float]]:
    """Theta that lies flat for ``lead_in_s``, then swings between two angles every period:
    each swing above the angle limit raises an alarm and clears it again."""
    curve = [(0.0, 0.0), (lead_in_s - 1.0, 0.0), (lead_in_s, low_deg)]
    t = lead_in_s
    quarter = period_s / 4  # up, stay up, down, stay down: gentle enough for motion.too_fast
    while t + period_s <= duration_s:
        curve += [
            (t + quarter, high_deg),
            (t + quarter * 2, high_deg),
            (t + quarter * 3, low_deg),
            (t + period_s, low_deg),
        ]
        t += period_s
    curve.append((duration_s, low_deg))
    return curve


class SimDaemon:
    """``spotter run --sim SCENARIO --json`` in a subprocess, with its own data folder.

    Alarm events are read from stdout as the daemon commits them, each stamped with its
    arrival time; the pairing URL is read from its log on stderr.
    """

    def __init__(
        self,
        scenario: Path,
        data_dir: Path,
        *,
        speed: float = 1.0,
        port: int = 0,
        python: str = sys.executable,
        stay: bool = False,
        python_args: Sequence[str] = (),
    ) -> None:
        """``python_args`` go between the interpreter and ``-m monitor.cli.main`` (e.g.
        ``-m cProfile -o FILE`` to profile the daemon)."""
        self.scenario = scenario
        self.python_args = tuple(python_args)
        self.stay = stay
        self.data_dir = data_dir
        self.speed = speed
        self.port = port
        self.python = python
        self.url: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Condition()
        self._lines: list[Line] = []
        self._stderr: list[str] = []

    @property
    def store_path(self) -> Path:
        """The simulated run's store."""
        return self.data_dir / SIM_STORE

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self.url is None:
            raise HarnessError("the daemon is not serving yet")
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTTER_")}
        config = self.data_dir / "spotter.toml"
        if not config.exists():
            config.write_text("# the browser tests' station: defaults only\n", encoding="utf-8")
        env["SPOTTER_CONFIG"] = str(config)
        env["SPOTTER_STATION__DATA_DIR"] = str(self.data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout_s: float = 30.0) -> str:
        """Start the daemon and wait until its dashboard serves; returns the pairing URL."""
        if self._proc is not None:
            raise HarnessError("already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.url = None
        command = [self.python, *self.python_args, "-m", "monitor.cli.main"]
        command += ["run", "--sim", str(self.scenario)]
        command += ["--json", "--speed", f"{self.speed:g}", "--port", str(self.port)]
        command += ["--stay"] if self.stay else []
        self._proc = subprocess.Popen(
            command,
            cwd=_REPO,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(self._proc.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self._proc.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        url = self._wait_url(time.monotonic() + timeout_s)
        if url is None:
            why = "exited" if self._proc.poll() is not None else "did not serve in time"
            self.stop()
            raise HarnessError(
                f"spotter run {why} ({' '.join(command)}); its log:\n" + self.stderr()
            )
        self.port = int(urlsplit(url).port or 0)
        return url

    def _wait_url(self, deadline: float) -> str | None:
        """The pairing URL once the daemon logs it; None if it exits or time runs out."""
        with self._lock:
            while self.url is None:
                left = deadline - time.monotonic()
                if left <= 0 or self._proc is None or self._proc.poll() is not None:
                    break
                self._lock.wait(min(left, 0.1))
            return self.url

    def _read_stdout(self, stream: Iterable[str]) -> None:
        for raw in stream:
            arrived = time.time()
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and "id" in event and "event" in event:
                with self._lock:
                    self._lines.append(Line(arrived, event))
                    self._lock.notify_all()

    def _read_stderr(self, stream: Iterable[str]) -> None:
        for raw in stream:
            with self._lock:
                self._stderr.append(raw)
                found = _PAIR_URL.search(raw)
                if found and self.url is None:
                    self.url = found.group(1)
                self._lock.notify_all()

    def stderr(self) -> str:
        """What the daemon logged so far."""
        with self._lock:
            return "".join(self._stderr)

    def lines(self) -> list[Line]:
        """Every alarm event printed so far, in order."""
        with self._lock:
            return list(self._lines)

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout_s: float, count: int = 1
    ) -> Line:
        """The ``count``-th printed event that matches (waiting for it); raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                found = [line for line in self._lines if match(line.event)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"not {count} matching alarm event(s) within {timeout_s:g} s; printed: "
                        f"{[(x.event['id'], x.event['event']) for x in self._lines]}"
                    )
                self._lock.wait(min(left, 0.1))

    def wait_event(self, alarm: str, event: str = "raised", timeout_s: float = 30.0) -> Line:
        """The first printed event of ``alarm`` of kind ``event``."""
        return self.wait_for(lambda e: e["id"] == alarm and e["event"] == event, timeout_s)

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def wait_exit(self, timeout_s: float) -> int:
        """Wait for the daemon to end by itself (the scenario is over); returns its status."""
        if self._proc is None:
            raise HarnessError("not started")
        code = self._proc.wait(timeout_s)
        self._reap()
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int | None:
        """Stop the daemon (SIGTERM: it shuts down as under systemd); returns its status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        self._reap()
        return proc.returncode

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        for thread in self._threads:
            thread.join(5.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        self._proc = None
        self._threads = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- the browser ---------------------------------------------------------------------------


def launch_chromium(playwright: Playwright, home: Path | None = None) -> Browser:
    """Debian's headless Chromium through Playwright; a clear error when it is missing.
    ``home``: its HOME, whose ``.pki/nssdb`` holds the CAs it trusts besides the system's."""
    if not CHROMIUM.exists():
        raise HarnessError(
            f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); "
            "Playwright cannot download a browser here"
        )
    env: dict[str, str | float | bool] | None = None
    if home is not None:
        env = {**os.environ, "HOME": str(home)}
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), env=env
    )


def open_dashboard(
    browser: Browser,
    pairing_url: str,
    *,
    scale: float = 1.0,
    timeout_s: float = 15.0,
    errors: list[str] | None = None,
    stamp_arrivals: bool = False,
) -> tuple[BrowserContext, Page]:
    """A new phone-sized browser context paired through ``pairing_url``, on the live view,
    once its stream is up. Uncaught errors in the page are appended to ``errors``.
    ``stamp_arrivals``: the page also notes when each alarm event arrived from the stream,
    before the page's own handler runs (``arrivals``)."""
    phone: ViewportSize = {"width": PHONE_WIDTH, "height": PHONE_HEIGHT}
    context = browser.new_context(viewport=phone, device_scale_factor=scale)
    if stamp_arrivals:
        context.add_init_script(ARRIVALS_JS)
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(f"{pairing_url}: {exc}"))
    page.goto(pairing_url, timeout=timeout_s * 1000)
    page.wait_for_selector("body[data-ready='true'][data-link='up']", timeout=timeout_s * 1000)
    return context, page


def more_pairings(page: Page, base_url: str, count: int, role: str = "viewer") -> list[str]:
    """One-time pairing URLs for other devices, asked for by an owner's page."""
    csrf = page.evaluate("window.spotter.me.csrf")
    urls = []
    for i in range(count):
        response = page.request.post(
            f"{base_url}/api/pairings",
            headers={"X-CSRF-Token": csrf},
            data={"role": role, "name": f"{role}-{i + 1}"},
        )
        if not response.ok:
            raise HarnessError(f"POST /api/pairings: {response.status} {response.text()}")
        urls.append(str(response.json()["url"]))
    return urls


ARRIVALS_JS = """(() => {
  const arrived = (window.__spotterArrived = {});
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, listener, options) {
    if (type !== 'alarm' || typeof listener !== 'function') {
      return add.call(this, type, listener, options);
    }
    const stamped = function (e) {
      if (!(e.lastEventId in arrived)) arrived[e.lastEventId] = Date.now();
      return listener.call(this, e);
    };
    return add.call(this, type, stamped, options);
  };
})();"""
"""Wraps the page's ``alarm`` listener: the time (``Date.now()``, the clock the page stamps
``atMs`` with) each event's id first arrived, before the page handles it."""


def arrivals(page: Page) -> dict[int, float]:
    """When each alarm event (by seq) arrived from the stream (``open_dashboard``'s
    ``stamp_arrivals``), in ms since the epoch."""
    stamped: dict[str, float] = page.evaluate("window.__spotterArrived || {}")
    return {int(seq): float(ms) for seq, ms in stamped.items() if seq.isdigit()}


EVENT_LOG_JS = """els => els.map(e => ({
    seq: Number(e.dataset.seq), id: e.dataset.id, event: e.dataset.event,
    priority: e.dataset.priority, at: e.dataset.at, shown_ms: Number(e.dataset.atMs)}))"""


def event_log(page: Page) -> list[dict[str, Any]]:
    """The page's alarm event log, in its order: seq, id, event, priority, the commit time
    the station stamped (``at``) and when the page put it in the DOM (``shown_ms``)."""
    result: list[dict[str, Any]] = page.eval_on_selector_all("#event-log > li", EVENT_LOG_JS)
    return result
