"""The stream's guarantees in a real browser: a station that goes away shows CONNECTION
LOST within 4 s, and once it is back the page holds every alarm event once, in order, as
the store has them, including those committed while the page could not listen."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Route

from dashboard.harness import SimDaemon
from tests.browser.rig import page_events, stored_events, wait_until_in_step

pytestmark = pytest.mark.browser

HOLD = "inversion.hold_limit"


@pytest.mark.timeout(120)
def test_connection_lost_then_catch_up_without_gaps_or_duplicates(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    hold_scenario: Path,
    tmp_path: Path,
) -> None:
    first = station(hold_scenario, data_dir=tmp_path / "data")
    _, page = dashboard(first.url)
    page.click("#unlock-sound")  # a tap: the page may beep now
    first.wait_event(HOLD, "raised", timeout_s=40)
    wait_until_in_step(page, first)

    stopped_at = time.monotonic()
    assert first.stop() is not None  # SIGTERM, as systemd stops the station
    left_ms = max(0.0, 4.0 - (time.monotonic() - stopped_at)) * 1000
    page.wait_for_selector("#lost", state="visible", timeout=left_ms)
    assert "CONNECTION LOST" in page.inner_text("#lost")
    assert page.get_attribute("body", "data-link") == "lost"
    page.wait_for_selector("body[data-sound='lost']", timeout=2000)
    page.wait_for_function("window.spotter.sound.bursts.lost >= 1", timeout=3000)

    # The station comes back on the same port with the same store (the page's login lives in
    # it). The page is kept off the stream until the new run has committed alarm events, so
    # it can only get them by catching up from its last seq.
    def refuse(route: Route) -> None:
        route.abort()

    page.route("**/api/stream*", refuse)
    second = station(hold_scenario, port=first.port, data_dir=tmp_path / "data")
    second.wait_event(HOLD, "raised", timeout_s=40)
    assert page.is_visible("#lost")
    before = {e["seq"] for e in page_events(page)}
    missed = [e for e in stored_events(second) if e["seq"] not in before]
    assert missed, "the new run committed events the page has not seen yet"

    page.unroute("**/api/stream*", refuse)
    page.wait_for_selector("#lost", state="hidden", timeout=5000)
    wait_until_in_step(page, second)
    seqs = [e["seq"] for e in page_events(page)]
    assert seqs == sorted(set(seqs)), "every event once, in order"
    assert page.evaluate("window.spotter.stream.log.duplicates") == 0
    page.wait_for_selector(f"#alarm-list [data-alarm='{HOLD}']", timeout=3000)
