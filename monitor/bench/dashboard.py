"""``spotter bench dashboard``: how long an alarm event takes from the daemon's commit to an
element in the page's DOM, with 1 and with 20 phones connected.

A simulated station swings theta over the angle limit again and again (an alarm raised,
cleared and resolved each swing) while headless Chromium pages, each paired as its own
device, show it. Each event carries the store's commit time (``at``, stamped by the daemon);
each page stamps the moment it put the event in its log. Both clocks are this machine's.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.bench.harness import (
    SimDaemon,
    arrivals,
    event_log,
    launch_chromium,
    more_pairings,
    open_dashboard,
    scenario_toml,
    swing_theta,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

SWING_PROFILE = {
    "base": "beginner",
    "angle_delay_s": 0.2,
    "max_hold_s": 600,
    "max_session_inverted_s": 600,
}
"""Beginner limits (30°), an angle alarm 0.2 s over the limit, no hold alarm to speak of."""
LEAD_IN_S = 3.0
EXTRA_S = 600.0
"""The swings go on this long past ``duration_s``, so a slow start never leaves too few."""
HANG_GUARD_S = 90.0
"""How long to wait for an event before the run fails as hung (a guard, not a measure)."""


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (``p`` in 0-100) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _resolved(event: dict[str, Any]) -> bool:
    return bool(event["id"] == "angle.over_limit" and event["event"] == "resolved")


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def _run(
    browser: Browser,
    folder: Path,
    clients: int,
    duration_s: float,
    speed: float,
    period_s: float,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """One run with ``clients`` pages (``profile_to``: the daemon under cProfile, its stats
    written there when it stops)."""
    scenario = folder / "swing.toml"
    folder.mkdir(parents=True)
    # The swings go on past duration_s: however long the pages took to open on a busy machine,
    # as many swings are measured once they are live (the daemon is stopped after them).
    played_s = duration_s + EXTRA_S
    theta = swing_theta(played_s, lead_in_s=LEAD_IN_S, period_s=period_s, low_deg=15, high_deg=40)
    scenario.write_text(
        scenario_toml("bench-swing", duration_s=played_s, theta=theta, profile=SWING_PROFILE),
        encoding="utf-8",
    )
    contexts: list[BrowserContext] = []
    wrap = ["-m", "cProfile", "-o", str(profile_to)] if profile_to is not None else []
    with SimDaemon(scenario, folder / "data", speed=speed, python_args=wrap) as daemon:
        owner_context, owner = open_dashboard(browser, daemon.start(), stamp_arrivals=True)
        contexts.append(owner_context)
        pages = [owner]
        for url in more_pairings(owner, daemon.base_url, clients - 1):
            context, page = open_dashboard(browser, url, stamp_arrivals=True)
            contexts.append(context)
            pages.append(page)
        # Every page is live: the events from here on are pushed to them, and measured. They
        # are chosen by what happened (this many swings resolved), never by how much wall time
        # passed: a busy machine runs the same events, only later.
        seen = daemon.lines()
        swings = max(1, int((duration_s - LEAD_IN_S) // period_s) - 1)
        last = daemon.wait_for(
            _resolved,
            timeout_s=duration_s / speed + HANG_GUARD_S,
            count=sum(1 for line in seen if _resolved(line.event)) + swings,
        )
        printed = daemon.lines()
        last_seq = printed.index(last) + 1
        for page in pages:  # each page has shown it (or the guard says it never did)
            page.wait_for_selector(
                f"#event-log li[data-seq='{last_seq}']",
                state="attached",
                timeout=HANG_GUARD_S * 1000,
            )
        logs = [event_log(page) for page in pages]
        arrived = [arrivals(page) for page in pages]
    for context in contexts:
        context.close()

    # The k-th event the daemon printed is the store's k-th (a new store for every run).
    return _figures(logs, arrived, list(range(len(seen) + 1, last_seq + 1)), clients)


def _figures(
    logs: list[list[dict[str, Any]]],
    arrived: list[dict[int, float]],
    expected: list[int],
    clients: int,
) -> dict[str, Any]:
    """From every page's event log (and when each event arrived in the page): the latency
    from each ``expected`` event's commit to its showing on each page, split into committed ->
    arrived and arrived -> shown, and how many never showed."""
    committed: dict[int, float] = {}
    for log in logs:
        for entry in log:
            committed[entry["seq"]] = _ms(entry["at"])
    latencies: list[float] = []
    to_page: list[float] = []  # committed -> arrived in the page (daemon, network, dispatch)
    in_page: list[float] = []  # arrived -> in the DOM (the page's own work)
    missing = 0
    for log, came in zip(logs, arrived, strict=True):
        shown = {entry["seq"]: float(entry["shown_ms"]) for entry in log}
        for seq in expected:
            if seq in shown and seq in committed:
                latencies.append(shown[seq] - committed[seq])
                if seq in came:
                    to_page.append(came[seq] - committed[seq])
                    in_page.append(shown[seq] - came[seq])
            else:
                missing += 1
    result: dict[str, Any] = {
        "clients": clients,
        "events": len(expected),
        "samples": len(latencies),
        "missing": missing,
    }
    if latencies:
        result |= {
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1),
            "mean_ms": round(sum(latencies) / len(latencies), 1),
        }
    if to_page:
        result["split_ms"] = {
            "committed_to_page_p50": round(percentile(to_page, 50), 1),
            "committed_to_page_p99": round(percentile(to_page, 99), 1),
            "page_to_dom_p50": round(percentile(in_page, 50), 1),
            "page_to_dom_p99": round(percentile(in_page, 99), 1),
        }
    return result


def dashboard_profile(clients: int, duration_s: float, period_s: float = 4.0) -> dict[str, Any]:
    """Where the alarm -> DOM time goes with ``clients`` pages: one more run with the daemon
    under cProfile (its figures are not the benchmark's: the profiler slows the daemon), the
    split of each event's time between the daemon and the network (committed -> arrived in the
    page) and the page (arrived -> in the DOM), and the daemon's functions by own time."""
    import pstats

    from playwright.sync_api import sync_playwright

    from monitor.bench.profiling import part, profile, top_functions

    with tempfile.TemporaryDirectory(prefix="spotter-bench-") as tmp, sync_playwright() as pw:
        browser = launch_chromium(pw)
        out = Path(tmp) / "daemon.prof"
        try:
            run = _run(browser, Path(tmp) / "run", clients, duration_s, 1.0, period_s, out)
        finally:
            browser.close()
        top = top_functions(pstats.Stats(str(out))) if out.exists() else []
    split = run.get("split_ms", {})
    words = {
        "committed_to_page": "committed -> arrived in the page (daemon, network)",
        "page_to_dom": "arrived in the page -> in its DOM (the page)",
    }
    breakdown = [
        part(f"{words[name.rsplit('_', 1)[0]]}, {name.rsplit('_', 1)[1]}", value, "ms")
        for name, value in split.items()
    ]
    if "p99_ms" in run:
        breakdown.append(part("committed -> DOM p99 (profiled run)", run["p99_ms"], "ms"))
    return profile(
        "cProfile + page stamps",
        f"the daemon's event loop (main thread) with {clients} page(s), {duration_s:g} s of "
        "swings, profiler on; each event split at its arrival in the page",
        top=top,
        breakdown=breakdown,
    )


def bench_dashboard(
    clients: Sequence[int] = (1, 20),
    *,
    duration_s: float = 60.0,
    speed: float = 1.0,
    period_s: float = 4.0,
) -> dict[str, Any]:
    """Alarm event (committed by the daemon) to DOM latency, p50 and p99, for each number of
    connected pages. Needs Debian's Chromium at /usr/bin/chromium and the built front end."""
    from playwright.sync_api import sync_playwright

    if any(n < 1 for n in clients):
        raise ValueError("every run needs at least one client")
    if duration_s < LEAD_IN_S + 2 * period_s:
        raise ValueError(f"duration_s must be at least {LEAD_IN_S + 2 * period_s:g} s")
    runs = []
    with tempfile.TemporaryDirectory(prefix="spotter-bench-") as tmp, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for i, n in enumerate(clients):
                runs.append(_run(browser, Path(tmp) / f"run{i}", n, duration_s, speed, period_s))
        finally:
            browser.close()
    return {
        "benchmark": "dashboard",
        "measures": "alarm event committed by the daemon -> element in each page's DOM",
        "unit": "ms",
        "scenario": {
            "theta": f"swings 15-40 deg over the 30 deg limit every {period_s:g} s",
            "duration_s": duration_s,
            "speed": speed,
        },
        "cpus": os.cpu_count(),
        "runs": runs,
    }
