"""Real-browser tests: Debian's headless Chromium (through Playwright) against the real
station daemon (``spotter run --sim ... --json``) in a subprocess, phone-sized.

Nothing is skipped: a missing /usr/bin/chromium or an unbuilt front end fails with what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from monitor.bench.harness import (
    CHROMIUM,
    SimDaemon,
    launch_chromium,
    open_dashboard,
    scenario_toml,
    swing_theta,
)
from tests.browser.rig import HANG_GUARD_S, HOLD_PROFILE, STATIC


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test (tests run in parallel workers)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get update && apt-get install -y chromium)",
            pytrace=False,
        )
    if not (STATIC / "index.html").exists() or not (STATIC / "app.js").exists():
        pytest.fail(
            f"the dashboard front end is not built in {STATIC}: "
            "cd dashboard && npm ci && npm run build",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def dashboard(browser: Browser) -> Iterator[Callable[..., tuple[BrowserContext, Page]]]:
    """Open paired phone-sized pages: dashboard(pairing_url, scale=1). The test fails if any
    page threw an uncaught error. Every wait in them is a hang guard (HANG_GUARD_S)."""
    errors: list[str] = []

    def open_page(url: str, **kwargs: Any) -> tuple[BrowserContext, Page]:
        context, page = open_dashboard(
            browser, url, errors=errors, timeout_s=HANG_GUARD_S, **kwargs
        )
        context.set_default_timeout(HANG_GUARD_S * 1000)
        return context, page

    yield open_page
    assert not errors, f"uncaught errors in the dashboard: {errors}"


@pytest.fixture
def scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a scenario TOML into the test's folder: scenario(name, **scenario_toml args)."""

    def write(name: str, **kwargs: Any) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(scenario_toml(name, **kwargs), encoding="utf-8")
        return path

    return write


@pytest.fixture
def hold_scenario(scenario: Callable[..., Path]) -> Path:
    """Flat for 8 s, then held at 25° (under the 30° limit) far past a 5 s hold limit."""
    return scenario(
        "browser-hold",
        duration_s=600,
        theta=[(0, 0), (8, 0), (10, 25), (600, 25)],
        hr=[(0, 68), (600, 76)],
        profile=HOLD_PROFILE,
    )


@pytest.fixture
def flat_scenario(scenario: Callable[..., Path]) -> Path:
    """Someone lying flat: no alarm unless a person asks for one."""
    return scenario("browser-flat", duration_s=600, theta=[(0, 0), (600, 0)])


@pytest.fixture
def swing_scenario(scenario: Callable[..., Path]) -> Path:
    """Theta swinging over the 30° limit every 6 s: angle.over_limit raised, cleared and
    resolved again and again (3 events a swing)."""
    return scenario(
        "browser-swing",
        duration_s=300,
        theta=swing_theta(300, lead_in_s=6, period_s=6, low_deg=15, high_deg=40),
        profile={
            "base": "beginner",
            "angle_delay_s": 0.2,
            "max_hold_s": 600,
            "max_session_inverted_s": 600,
        },
    )


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Callable[..., SimDaemon]]:
    """Start simulated stations: station(scenario, speed=2, port=0, data_dir=...) -> a
    serving SimDaemon (its pairing URL in ``.url``). All are stopped after the test."""
    started: list[SimDaemon] = []

    def start(
        scenario: Path, *, speed: float = 2.0, port: int = 0, data_dir: Path | None = None
    ) -> SimDaemon:
        daemon = SimDaemon(scenario, data_dir or tmp_path / "data", speed=speed, port=port)
        started.append(daemon)
        daemon.start()
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
