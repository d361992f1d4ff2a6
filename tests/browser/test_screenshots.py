"""Screenshots for the README, taken from the real thing on a phone-sized screen (390 x 844,
2x): the live view, a high-priority alarm, and one session's chart with its alarm markers.
They are saved in test-artifacts/ (not committed); test_pages adds the guided start, the
summary, history and progress, and settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from monitor.bench.harness import SimDaemon
from tests.browser.rig import ARTIFACTS, wait_for_js

pytestmark = pytest.mark.browser

HOLD = "inversion.hold_limit"


@pytest.mark.timeout(90)
def test_screenshots_of_live_view_alarm_and_session(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    hold_scenario: Path,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    daemon = station(hold_scenario)
    _, page = dashboard(daemon.url, scale=2)

    wait_for_js(page, "document.querySelector('#phase').textContent === 'inverted'")
    page.wait_for_timeout(1200)  # a little of the charts
    page.screenshot(path=ARTIFACTS / "live.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    # The big numbers turn upside down, to be read while hanging head-down.
    page.click("#flip")
    assert page.get_attribute("#flip", "aria-pressed") == "true"
    assert "matrix(-1" in page.eval_on_selector("#big", "e => getComputedStyle(e).transform")
    page.screenshot(path=ARTIFACTS / "live-flipped.png")
    page.click("#flip")

    daemon.wait_event(HOLD, "escalated", timeout_s=40)
    page.wait_for_selector(f"#alarm-list [data-alarm='{HOLD}'][data-priority='high']")
    page.wait_for_timeout(600)  # past the flash of a new high alarm
    page.screenshot(path=ARTIFACTS / "alarm.png")

    page.click("nav [data-nav='history']")
    page.click(".session-item")
    page.wait_for_selector("#session-chart canvas")
    page.screenshot(path=ARTIFACTS / "session.png")
    page.locator("#session-chart").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "session-chart.png")

    for name in ("live", "live-flipped", "alarm", "session", "session-chart"):
        shot = ARTIFACTS / f"{name}.png"
        assert shot.stat().st_size > 10_000, shot
